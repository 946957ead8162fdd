"""Telling other processes that events were committed (PostgreSQL NOTIFY).

A transaction that wrote domain events sends a notification on the outbox channel as part of its
commit; PostgreSQL delivers it only if the commit succeeds. Dispatchers listening on the channel
wake at once instead of at their next poll.
"""

from sqlalchemy import event, text
from sqlalchemy.orm import Session

CHANNEL = "kokyaku_outbox"
_WROTE_EVENTS = "kokyaku.wrote_events"


def mark_events_written(session: Session) -> None:
    session.info[_WROTE_EVENTS] = True


@event.listens_for(Session, "before_commit")
def _notify_on_commit(session: Session) -> None:
    if not session.info.pop(_WROTE_EVENTS, False):
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(_WROTE_EVENTS, None)
