"""Stage history indexes for the funnel: each deal's moves in a pipeline (covered on
PostgreSQL), and the time spent in each stage in order.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-24 00:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deal_stage_change", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deal_stage_change_deal_reach",
            ["workspace_id", "pipeline_id", "deal_id"],
            unique=False,
            postgresql_include=["to_stage_id"],
        )
        batch_op.create_index(
            "ix_deal_stage_change_time_in_stage",
            ["workspace_id", "pipeline_id", "from_stage_id", "seconds_in_previous_stage"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("deal_stage_change", schema=None) as batch_op:
        batch_op.drop_index("ix_deal_stage_change_time_in_stage")
        batch_op.drop_index("ix_deal_stage_change_deal_reach")
