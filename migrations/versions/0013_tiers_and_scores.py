"""Loyalty tiers, lead scoring rules, score thresholds; tier and score on customers.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23 21:03:03.061112
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scoring_rule",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column(
            "filter",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("half_life_days", sa.Integer(), nullable=True),
        sa.Column(
            "depends_on",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_scoring_rule_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_scoring_rule")),
    )
    with op.batch_alter_table("scoring_rule", schema=None) as batch_op:
        batch_op.create_index(
            "ix_scoring_rule_created", ["workspace_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_scoring_rule_name", ["workspace_id", "name"], unique=True)

    op.create_table(
        "standing_settings",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column(
            "score_thresholds",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("swept_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_standing_settings_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_standing_settings")),
    )
    with op.batch_alter_table("standing_settings", schema=None) as batch_op:
        batch_op.create_index("ix_standing_settings_swept", ["swept_at"], unique=False)

    op.create_table(
        "tier",
        sa.Column("key", sa.String(length=50), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column(
            "filter",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "depends_on",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_tier_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_tier")),
    )
    with op.batch_alter_table("tier", schema=None) as batch_op:
        batch_op.create_index("ix_tier_key", ["workspace_id", "key"], unique=True)
        batch_op.create_index("ix_tier_rank", ["workspace_id", "rank"], unique=True)

    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tier", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("tier_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("score", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch_op.add_column(
            sa.Column(
                "score_breakdown",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'[]'"),
            )
        )
        batch_op.create_index("ix_customer_score", ["workspace_id", "score", "id"], unique=False)
        batch_op.create_index("ix_customer_tier", ["workspace_id", "tier", "id"], unique=False)
    # Existing rows start at 0 and no rules; new rows get their values from the application.
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.alter_column("score", server_default=None)
        batch_op.alter_column("score_breakdown", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_tier")
        batch_op.drop_index("ix_customer_score")
        batch_op.drop_column("score_breakdown")
        batch_op.drop_column("score")
        batch_op.drop_column("tier_since")
        batch_op.drop_column("tier")

    with op.batch_alter_table("tier", schema=None) as batch_op:
        batch_op.drop_index("ix_tier_rank")
        batch_op.drop_index("ix_tier_key")

    op.drop_table("tier")
    with op.batch_alter_table("standing_settings", schema=None) as batch_op:
        batch_op.drop_index("ix_standing_settings_swept")

    op.drop_table("standing_settings")
    with op.batch_alter_table("scoring_rule", schema=None) as batch_op:
        batch_op.drop_index("ix_scoring_rule_name")
        batch_op.drop_index("ix_scoring_rule_created")

    op.drop_table("scoring_rule")
