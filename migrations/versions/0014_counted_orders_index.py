"""An index of each customer's purchases (completed or partly refunded orders) for behaviour
filters: counts, sums and "none within" read it alone.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-24 00:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COUNTED = "status IN ('completed', 'partially_refunded')"


def upgrade() -> None:
    with op.batch_alter_table("order", schema=None) as batch_op:
        batch_op.create_index(
            "ix_order_counted_by_customer",
            ["workspace_id", "customer_id", "occurred_at"],
            unique=False,
            postgresql_include=["total", "refunded_total"],
            sqlite_where=sa.text(_COUNTED),
            postgresql_where=sa.text(_COUNTED),
        )


def downgrade() -> None:
    with op.batch_alter_table("order", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_order_counted_by_customer",
            sqlite_where=sa.text(_COUNTED),
            postgresql_where=sa.text(_COUNTED),
        )
