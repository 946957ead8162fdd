"""Workflows, their versions and runs; domain events record the workflow run that caused them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23 20:44:56.664799
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workflow",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("trigger_type", sa.String(length=100), nullable=False),
        sa.Column(
            "trigger",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column(
            "conditions",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column(
            "actions",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assignments", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_workflow_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_workflow")),
    )
    with op.batch_alter_table("workflow", schema=None) as batch_op:
        batch_op.create_index(
            "ix_workflow_created", ["workspace_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_workflow_schedule_due",
            ["next_run_at"],
            unique=False,
            sqlite_where=sa.text("enabled AND next_run_at IS NOT NULL"),
            postgresql_where=sa.text("enabled AND next_run_at IS NOT NULL"),
        )
        batch_op.create_index(
            "ix_workflow_trigger", ["workspace_id", "trigger_type", "enabled"], unique=False
        )

    op.create_table(
        "workflow_run",
        sa.Column("workflow_id", sa.Uuid(), nullable=False),
        sa.Column("workflow_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("subject_type", sa.String(length=20), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column(
            "event",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "steps",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "workflow_id"],
            ["workflow.workspace_id", "workflow.id"],
            name="fk_workflow_run_workflow",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_workflow_run_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_workflow_run")),
    )
    with op.batch_alter_table("workflow_run", schema=None) as batch_op:
        batch_op.create_index(
            "ix_workflow_run_due",
            ["next_attempt_at"],
            unique=False,
            sqlite_where=sa.text("status IN ('pending', 'running', 'waiting')"),
            postgresql_where=sa.text("status IN ('pending', 'running', 'waiting')"),
        )
        batch_op.create_index(
            "ix_workflow_run_event", ["workspace_id", "workflow_id", "event_id"], unique=True
        )
        batch_op.create_index(
            "ix_workflow_run_workflow",
            ["workspace_id", "workflow_id", "created_at", "id"],
            unique=False,
        )

    op.create_table(
        "workflow_version",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("workflow_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "trigger",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column(
            "conditions",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column(
            "actions",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "workflow_id"],
            ["workflow.workspace_id", "workflow.id"],
            name="fk_workflow_version_workflow",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_workflow_version_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id", "workflow_id", "version", name=op.f("pk_workflow_version")
        ),
    )
    with op.batch_alter_table("domain_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("workflow_run_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("workflow_depth", sa.SmallInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("domain_event", schema=None) as batch_op:
        batch_op.drop_column("workflow_depth")
        batch_op.drop_column("workflow_run_id")

    op.drop_table("workflow_version")
    with op.batch_alter_table("workflow_run", schema=None) as batch_op:
        batch_op.drop_index("ix_workflow_run_workflow")
        batch_op.drop_index("ix_workflow_run_event")
        batch_op.drop_index(
            "ix_workflow_run_due",
            sqlite_where=sa.text("status IN ('pending', 'running', 'waiting')"),
            postgresql_where=sa.text("status IN ('pending', 'running', 'waiting')"),
        )

    op.drop_table("workflow_run")
    with op.batch_alter_table("workflow", schema=None) as batch_op:
        batch_op.drop_index("ix_workflow_trigger")
        batch_op.drop_index(
            "ix_workflow_schedule_due",
            sqlite_where=sa.text("enabled AND next_run_at IS NOT NULL"),
            postgresql_where=sa.text("enabled AND next_run_at IS NOT NULL"),
        )
        batch_op.drop_index("ix_workflow_created")

    op.drop_table("workflow")
