"""Tiers, scores and segment membership follow every committed change of customers, whoever
made it.

Services record domain events; the outbox notes which customers they touched. Just before the
unit of work commits, the tiers, scores and dynamic segments those changes can affect are
re-evaluated for those customers, inside the same transaction: a customer is never left in a
tier or segment their committed data no longer matches, and `customer.tier_changed`,
`customer.score_changed`, `segment.entered` / `segment.exited` commit with the change.
Tiers and scores go first, so segments that name them see the new values.
"""

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_session
from sqlalchemy.orm import Session
from sqlalchemy.util import await_only

from app.domain.outbox.touches import CUSTOMER, Touched, forget_touched, take_touched
from app.domain.segment.membership import Membership
from app.domain.segment.standing import Standing
from app.domain.segment.standing_repository import FollowerRepository


def _follow_before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint's release: the enclosing commit follows everything at once
    touched = take_touched(session)
    proxy = async_session(session)
    if not touched or proxy is None:
        return
    for entry in touched:
        # The commit runs inside SQLAlchemy's async bridge, so the async evaluation can be
        # awaited from this synchronous hook on the same connection and transaction.
        await_only(_follow(proxy, entry))


async def _follow(session: AsyncSession, entry: Touched) -> None:
    defined = await FollowerRepository(session, entry.context.workspace_id).defined()
    customers = {customer_id: set(kinds) for customer_id, kinds in entry.customers.items()}
    if defined.tiers or defined.scoring_rules:
        for customer_id in await Standing(session, entry.context).follow(customers):
            customers[customer_id].add(CUSTOMER)  # a new tier or score changes the customer
    if defined.dynamic_segments:
        await Membership(session, entry.context).follow(customers)


def _forget(session: Session) -> None:
    forget_touched(session)


def install() -> None:
    """Makes every session of the process keep segments current (idempotent)."""
    if not event.contains(Session, "before_commit", _follow_before_commit):
        event.listen(Session, "before_commit", _follow_before_commit)
        event.listen(Session, "after_rollback", _forget)
