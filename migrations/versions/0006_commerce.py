"""Inbound shop events, orders and their lines, and customer purchase metrics.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 18:31:13.542278
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_event",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("order_ref", sa.String(length=200), nullable=True),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("workspace_id", "event_id", name=op.f("pk_inbound_event")),
    )
    with op.batch_alter_table("inbound_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inbound_event_customer",
            ["workspace_id", "customer_id", "occurred_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_inbound_event_type", ["workspace_id", "type", "occurred_at"], unique=False
        )
        batch_op.create_index(
            "ix_inbound_event_waiting",
            ["workspace_id", "order_ref"],
            unique=False,
            sqlite_where=sa.text("status = 'waiting'"),
            postgresql_where=sa.text("status = 'waiting'"),
        )

    op.create_table(
        "order",
        sa.Column("order_id", sa.String(length=200), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("channel", sa.String(length=50), nullable=False),
        sa.Column("store_id", sa.String(length=100), nullable=True),
        sa.Column(
            "lines",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("discount", sa.Integer(), nullable=False),
        sa.Column("tax", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("refunded_total", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_order_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_order")),
    )
    with op.batch_alter_table("order", schema=None) as batch_op:
        batch_op.create_index(
            "ix_order_channel", ["workspace_id", "channel", "occurred_at"], unique=False
        )
        batch_op.create_index(
            "ix_order_created", ["workspace_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_order_customer", ["workspace_id", "customer_id", "occurred_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_order_occurred", ["workspace_id", "occurred_at", "id"], unique=False
        )
        batch_op.create_index("ix_order_shop_id", ["workspace_id", "order_id"], unique=True)

    op.create_table(
        "order_line",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("category", sa.String(length=100), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Integer(), nullable=False),
        sa.Column("refunded_quantity", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "order_id"],
            ["order.workspace_id", "order.id"],
            name="fk_order_line_order",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "order_id", "line_no", name=op.f("pk_order_line")),
    )
    with op.batch_alter_table("order_line", schema=None) as batch_op:
        batch_op.create_index("ix_order_line_category", ["workspace_id", "category"], unique=False)
        batch_op.create_index("ix_order_line_sku", ["workspace_id", "sku"], unique=False)

    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("order_count", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch_op.add_column(
            sa.Column("total_spent", sa.BigInteger(), nullable=False, server_default=sa.text("0"))
        )
        batch_op.add_column(sa.Column("spent_currency", sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column("first_order_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_order_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column(
                "average_order_value", sa.BigInteger(), nullable=False, server_default=sa.text("0")
            )
        )
        batch_op.add_column(sa.Column("average_days_between_orders", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("favourite_category", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("favourite_channel", sa.String(length=50), nullable=True))
    # Existing customers start at zero; new rows get their values from the application.
    with op.batch_alter_table("customer", schema=None) as batch_op:
        for column in ("order_count", "total_spent", "average_order_value"):
            batch_op.alter_column(column, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_column("favourite_channel")
        batch_op.drop_column("favourite_category")
        batch_op.drop_column("average_days_between_orders")
        batch_op.drop_column("average_order_value")
        batch_op.drop_column("last_order_at")
        batch_op.drop_column("first_order_at")
        batch_op.drop_column("spent_currency")
        batch_op.drop_column("total_spent")
        batch_op.drop_column("order_count")

    with op.batch_alter_table("order_line", schema=None) as batch_op:
        batch_op.drop_index("ix_order_line_sku")
        batch_op.drop_index("ix_order_line_category")

    op.drop_table("order_line")
    with op.batch_alter_table("order", schema=None) as batch_op:
        batch_op.drop_index("ix_order_shop_id")
        batch_op.drop_index("ix_order_occurred")
        batch_op.drop_index("ix_order_customer")
        batch_op.drop_index("ix_order_created")
        batch_op.drop_index("ix_order_channel")

    op.drop_table("order")
    with op.batch_alter_table("inbound_event", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_inbound_event_waiting",
            sqlite_where=sa.text("status = 'waiting'"),
            postgresql_where=sa.text("status = 'waiting'"),
        )
        batch_op.drop_index("ix_inbound_event_type")
        batch_op.drop_index("ix_inbound_event_customer")

    op.drop_table("inbound_event")
