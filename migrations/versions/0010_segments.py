"""Segments, their members, membership history and daily sizes.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 20:46:22.942688
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "segment",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column(
            "filter",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "depends_on",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("swept_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_segment_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_segment")),
    )
    with op.batch_alter_table("segment", schema=None) as batch_op:
        batch_op.create_index(
            "ix_segment_created", ["workspace_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_segment_name", ["workspace_id", "name"], unique=True)
        batch_op.create_index("ix_segment_status", ["status", "swept_at"], unique=False)

    op.create_table(
        "segment_membership_change",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("segment_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("change", sa.String(length=10), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "segment_id"],
            ["segment.workspace_id", "segment.id"],
            name="fk_segment_membership_change_segment",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_segment_membership_change")),
    )
    with op.batch_alter_table("segment_membership_change", schema=None) as batch_op:
        batch_op.create_index(
            "ix_segment_membership_change_customer",
            ["workspace_id", "customer_id", "occurred_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_segment_membership_change_segment",
            ["workspace_id", "segment_id", "occurred_at"],
            unique=False,
        )

    op.create_table(
        "segment_size",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("segment_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "segment_id"],
            ["segment.workspace_id", "segment.id"],
            name="fk_segment_size_segment",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "segment_id", "day", name=op.f("pk_segment_size")),
    )
    op.create_table(
        "segment_member",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("segment_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "customer_id"],
            ["customer.workspace_id", "customer.id"],
            name="fk_segment_member_customer",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "segment_id"],
            ["segment.workspace_id", "segment.id"],
            name="fk_segment_member_segment",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id", "segment_id", "customer_id", name=op.f("pk_segment_member")
        ),
    )
    with op.batch_alter_table("segment_member", schema=None) as batch_op:
        batch_op.create_index(
            "ix_segment_member_customer", ["workspace_id", "customer_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("segment_member", schema=None) as batch_op:
        batch_op.drop_index("ix_segment_member_customer")

    op.drop_table("segment_member")
    op.drop_table("segment_size")
    with op.batch_alter_table("segment_membership_change", schema=None) as batch_op:
        batch_op.drop_index("ix_segment_membership_change_segment")
        batch_op.drop_index("ix_segment_membership_change_customer")

    op.drop_table("segment_membership_change")
    with op.batch_alter_table("segment", schema=None) as batch_op:
        batch_op.drop_index("ix_segment_status")
        batch_op.drop_index("ix_segment_name")
        batch_op.drop_index("ix_segment_created")

    op.drop_table("segment")
