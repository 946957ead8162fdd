"""Insights: cohort figures kept by the worker; each counted order's neighbours among its
customer's orders; covering indexes for the period reports.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-24 00:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTED = "status IN ('completed', 'partially_refunded')"
NEIGHBOURS = ("customer_previous_at", "customer_next_at")
# The same customer's previous and next counted order of every counted order.
NEIGHBOURS_SQL = """
UPDATE "order" SET customer_previous_at = n.previous_at, customer_next_at = n.next_at
FROM (
    SELECT workspace_id, id,
           lag(occurred_at) OVER customer_orders AS previous_at,
           lead(occurred_at) OVER customer_orders AS next_at
    FROM "order"
    WHERE customer_id IS NOT NULL AND status IN ('completed', 'partially_refunded')
    WINDOW customer_orders AS (PARTITION BY workspace_id, customer_id ORDER BY occurred_at, id)
) AS n
WHERE "order".workspace_id = n.workspace_id AND "order".id = n.id
"""


def _workspace_key(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"],
        ["workspace.id"],
        name=op.f(f"fk_{table}_workspace_id_workspace"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    with op.batch_alter_table("insight_model") as batch:
        batch.add_column(
            sa.Column("cohorts_computed_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "insight_cohort_size",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        _workspace_key("insight_cohort_size"),
        sa.PrimaryKeyConstraint("workspace_id", "first_day", name=op.f("pk_insight_cohort_size")),
    )
    op.create_table(
        "insight_cohort_activity",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("months", sa.SmallInteger(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.BigInteger(), nullable=False),
        _workspace_key("insight_cohort_activity"),
        sa.PrimaryKeyConstraint(
            "workspace_id",
            "months",
            "first_day",
            "period",
            "currency",
            name=op.f("pk_insight_cohort_activity"),
        ),
    )
    with op.batch_alter_table("order") as batch:
        for column in NEIGHBOURS:
            batch.add_column(sa.Column(column, sa.DateTime(timezone=True), nullable=True))
    op.execute(NEIGHBOURS_SQL)
    op.create_index(
        "ix_order_counted",
        "order",
        ["workspace_id", "occurred_at"],
        unique=False,
        postgresql_include=["customer_id", "currency", "total", "refunded_total", *NEIGHBOURS],
        postgresql_where=sa.text(COUNTED),
        sqlite_where=sa.text(COUNTED),
    )
    op.create_index(
        "ix_customer_purchases",
        "customer",
        ["workspace_id", "first_order_at"],
        unique=False,
        postgresql_include=["spent_currency", "order_count", "total_spent", "predicted_ltv_12m"],
    )


def downgrade() -> None:
    op.drop_index("ix_customer_purchases", table_name="customer")
    op.drop_index("ix_order_counted", table_name="order")
    with op.batch_alter_table("order") as batch:
        for column in reversed(NEIGHBOURS):
            batch.drop_column(column)
    op.drop_table("insight_cohort_activity")
    op.drop_table("insight_cohort_size")
    with op.batch_alter_table("insight_model") as batch:
        batch.drop_column("cohorts_computed_at")
