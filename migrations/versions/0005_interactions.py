"""Interactions: notes, calls, emails, meetings, support requests, surveys and tasks.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 18:26:17.194998
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "interaction",
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=True),
        sa.Column("deal_id", sa.Uuid(), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("channel", sa.String(length=50), nullable=True),
        sa.Column("direction", sa.String(length=10), nullable=True),
        sa.Column("subject", sa.String(length=500), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assignee_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("priority", sa.String(length=10), nullable=True),
        sa.Column("nps_score", sa.Integer(), nullable=True),
        sa.Column(
            "answers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "assignee_id"],
            ["user.workspace_id", "user.id"],
            name="fk_interaction_assignee",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "company_id"],
            ["company.workspace_id", "company.id"],
            name="fk_interaction_company",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "customer_id"],
            ["customer.workspace_id", "customer.id"],
            name="fk_interaction_customer",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "owner_id"],
            ["user.workspace_id", "user.id"],
            name="fk_interaction_owner",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_interaction_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_interaction")),
    )
    with op.batch_alter_table("interaction", schema=None) as batch_op:
        batch_op.create_index(
            "ix_interaction_created", ["workspace_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_interaction_customer",
            ["workspace_id", "customer_id", "occurred_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_interaction_due",
            ["due_at"],
            unique=False,
            sqlite_where=sa.text("status = 'open' AND due_notified_at IS NULL"),
            postgresql_where=sa.text("status = 'open' AND due_notified_at IS NULL"),
        )
        batch_op.create_index(
            "ix_interaction_tasks",
            ["workspace_id", "assignee_id", "status", "due_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_interaction_type", ["workspace_id", "type", "occurred_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("interaction", schema=None) as batch_op:
        batch_op.drop_index("ix_interaction_type")
        batch_op.drop_index("ix_interaction_tasks")
        batch_op.drop_index(
            "ix_interaction_due",
            sqlite_where=sa.text("status = 'open' AND due_notified_at IS NULL"),
            postgresql_where=sa.text("status = 'open' AND due_notified_at IS NULL"),
        )
        batch_op.drop_index("ix_interaction_customer")
        batch_op.drop_index("ix_interaction_created")

    op.drop_table("interaction")
