"""Domain events take their transaction id from the database, so inserts batch.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 18:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    default = "txid_current()" if op.get_bind().dialect.name == "postgresql" else "0"
    with op.batch_alter_table("domain_event") as batch_op:
        batch_op.alter_column(
            "transaction_id", existing_type=sa.BigInteger(), server_default=sa.text(default)
        )


def downgrade() -> None:
    with op.batch_alter_table("domain_event") as batch_op:
        batch_op.alter_column("transaction_id", existing_type=sa.BigInteger(), server_default=None)
