"""Segment membership follows every committed change of customers, whoever made it.

Services record domain events; the outbox notes which customers they touched. Just before the
unit of work commits, the dynamic segments those changes can affect are re-evaluated for those
customers, inside the same transaction: a customer is never left in a segment their committed
data no longer matches, and `segment.entered` / `segment.exited` commit with the change.
"""

from sqlalchemy import event
from sqlalchemy.ext.asyncio import async_session
from sqlalchemy.orm import Session
from sqlalchemy.util import await_only

from app.domain.outbox.touches import forget_touched, take_touched
from app.domain.segment.membership import Membership


def _follow_before_commit(session: Session) -> None:
    touched = take_touched(session)
    proxy = async_session(session)
    if not touched or proxy is None:
        return
    for entry in touched:
        # The commit runs inside SQLAlchemy's async bridge, so the async evaluation can be
        # awaited from this synchronous hook on the same connection and transaction.
        await_only(Membership(proxy, entry.context).follow(entry.customers))


def _forget(session: Session) -> None:
    forget_touched(session)


def install() -> None:
    """Makes every session of the process keep segments current (idempotent)."""
    if not event.contains(Session, "before_commit", _follow_before_commit):
        event.listen(Session, "before_commit", _follow_before_commit)
        event.listen(Session, "after_rollback", _forget)
