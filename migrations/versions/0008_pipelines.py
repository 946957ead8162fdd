"""Pipelines, stages, deals, deal contacts and stage history.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 18:46:24.075040
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pipeline",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_pipeline_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_pipeline")),
    )
    with op.batch_alter_table("pipeline", schema=None) as batch_op:
        batch_op.create_index("ix_pipeline_name", ["workspace_id", "name"], unique=True)

    op.create_table(
        "stage",
        sa.Column("pipeline_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("probability", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("rotting_days", sa.Integer(), nullable=True),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "pipeline_id"],
            ["pipeline.workspace_id", "pipeline.id"],
            name="fk_stage_pipeline",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_stage_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_stage")),
    )
    with op.batch_alter_table("stage", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stage_pipeline", ["workspace_id", "pipeline_id", "position"], unique=False
        )

    op.create_table(
        "deal",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("pipeline_id", sa.Uuid(), nullable=False),
        sa.Column("stage_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("company_id", sa.Uuid(), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("expected_close_date", sa.Date(), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=True),
        sa.Column("lost_reason", sa.String(length=500), nullable=True),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("stage_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "company_id"],
            ["company.workspace_id", "company.id"],
            name="fk_deal_company",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "customer_id"],
            ["customer.workspace_id", "customer.id"],
            name="fk_deal_customer",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "owner_id"], ["user.workspace_id", "user.id"], name="fk_deal_owner"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "pipeline_id"],
            ["pipeline.workspace_id", "pipeline.id"],
            name="fk_deal_pipeline",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "stage_id"], ["stage.workspace_id", "stage.id"], name="fk_deal_stage"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_deal_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_deal")),
    )
    with op.batch_alter_table("deal", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deal_board", ["workspace_id", "stage_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_deal_company", ["workspace_id", "company_id"], unique=False)
        batch_op.create_index("ix_deal_created", ["workspace_id", "created_at", "id"], unique=False)
        batch_op.create_index("ix_deal_customer", ["workspace_id", "customer_id"], unique=False)
        batch_op.create_index("ix_deal_owner", ["workspace_id", "owner_id"], unique=False)
        batch_op.create_index(
            "ix_deal_pipeline_close",
            ["workspace_id", "pipeline_id", "expected_close_date"],
            unique=False,
        )

    op.create_table(
        "deal_contact",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("deal_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=50), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id", "customer_id"],
            ["customer.workspace_id", "customer.id"],
            name="fk_deal_contact_customer",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "deal_id"],
            ["deal.workspace_id", "deal.id"],
            name="fk_deal_contact_deal",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id", "deal_id", "customer_id", name=op.f("pk_deal_contact")
        ),
    )
    with op.batch_alter_table("deal_contact", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deal_contact_customer", ["workspace_id", "customer_id"], unique=False
        )

    op.create_table(
        "deal_stage_change",
        sa.Column("deal_id", sa.Uuid(), nullable=False),
        sa.Column("pipeline_id", sa.Uuid(), nullable=False),
        sa.Column("from_stage_id", sa.Uuid(), nullable=True),
        sa.Column("to_stage_id", sa.Uuid(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(length=100), nullable=True),
        sa.Column("seconds_in_previous_stage", sa.BigInteger(), nullable=True),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "deal_id"],
            ["deal.workspace_id", "deal.id"],
            name="fk_deal_stage_change_deal",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_deal_stage_change_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_deal_stage_change")),
    )
    with op.batch_alter_table("deal_stage_change", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deal_stage_change_deal", ["workspace_id", "deal_id", "changed_at"], unique=False
        )
        batch_op.create_index(
            "ix_deal_stage_change_pipeline",
            ["workspace_id", "pipeline_id", "changed_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("deal_stage_change", schema=None) as batch_op:
        batch_op.drop_index("ix_deal_stage_change_pipeline")
        batch_op.drop_index("ix_deal_stage_change_deal")

    op.drop_table("deal_stage_change")
    with op.batch_alter_table("deal_contact", schema=None) as batch_op:
        batch_op.drop_index("ix_deal_contact_customer")

    op.drop_table("deal_contact")
    with op.batch_alter_table("deal", schema=None) as batch_op:
        batch_op.drop_index("ix_deal_pipeline_close")
        batch_op.drop_index("ix_deal_owner")
        batch_op.drop_index("ix_deal_customer")
        batch_op.drop_index("ix_deal_created")
        batch_op.drop_index("ix_deal_company")
        batch_op.drop_index("ix_deal_board")

    op.drop_table("deal")
    with op.batch_alter_table("stage", schema=None) as batch_op:
        batch_op.drop_index("ix_stage_pipeline")

    op.drop_table("stage")
    with op.batch_alter_table("pipeline", schema=None) as batch_op:
        batch_op.drop_index("ix_pipeline_name")

    op.drop_table("pipeline")
