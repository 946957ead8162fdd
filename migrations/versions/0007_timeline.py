"""An index for reading a customer's changes newest first (the timeline).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 18:35:51.960343
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("domain_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_domain_event_subject_time",
            ["workspace_id", "subject_type", "subject_id", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("domain_event", schema=None) as batch_op:
        batch_op.drop_index("ix_domain_event_subject_time")
