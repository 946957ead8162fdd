"""Insights: RFM scores, churn risk and LTV predictions on customers; the per-workspace model.

Revision ID: 0012
Revises: 0009
Create Date: 2026-11-23 20:55:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _customer_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("rfm_recency", sa.SmallInteger(), nullable=True),
        sa.Column("rfm_frequency", sa.SmallInteger(), nullable=True),
        sa.Column("rfm_monetary", sa.SmallInteger(), nullable=True),
        sa.Column("rfm_group", sa.String(length=30), nullable=True),
        sa.Column("churn_risk", sa.Boolean(), nullable=True),
        sa.Column("predicted_ltv_12m", sa.BigInteger(), nullable=True),
        sa.Column("probability_alive", sa.Float(), nullable=True),
        sa.Column("insights_computed_at", sa.DateTime(timezone=True), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("customer") as batch:
        for column in _customer_columns():
            batch.add_column(column)
    op.create_index(
        "ix_customer_rfm",
        "customer",
        [
            "workspace_id",
            "rfm_recency",
            "rfm_frequency",
            "rfm_monetary",
            "spent_currency",
            "total_spent",
        ],
        unique=False,
    )
    op.create_table(
        "insight_model",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("customers_scored", sa.Integer(), nullable=False),
        sa.Column("churn_interval_days", sa.Float(), nullable=True),
        sa.Column(
            "bgnbd",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "gamma_gamma",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_insight_model_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_insight_model")),
    )


def downgrade() -> None:
    op.drop_table("insight_model")
    op.drop_index("ix_customer_rfm", table_name="customer")
    with op.batch_alter_table("customer") as batch:
        for column in reversed(_customer_columns()):
            batch.drop_column(column.name)
