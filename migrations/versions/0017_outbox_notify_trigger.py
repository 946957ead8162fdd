"""A commit that wrote domain events notifies the outbox channel from a trigger (PostgreSQL).

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-24 06:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no NOTIFY; its dispatcher runs in the writing process
    op.execute(
        """
        CREATE FUNCTION kokyaku_notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('kokyaku_outbox', '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER domain_event_notify_outbox AFTER INSERT ON domain_event "
        "FOR EACH STATEMENT EXECUTE FUNCTION kokyaku_notify_outbox()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER domain_event_notify_outbox ON domain_event")
    op.execute("DROP FUNCTION kokyaku_notify_outbox()")
