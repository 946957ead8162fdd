"""Which customers a unit of work changed, and in what respect, noted as events are recorded.

Whatever is derived from customers (segment membership) reads this before the unit commits, so
it follows every change without each service having to remember to ask.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.core.context import Context

CUSTOMER = "customer"
ORDERS = "orders"
INTERACTIONS = "interactions"
EVENTS = "events"
EVERYTHING = frozenset({CUSTOMER, ORDERS, INTERACTIONS, EVENTS})

_TOUCHED = "kokyaku.touched_customers"
# What an event says changed about its customer. A new or merged customer changes in every
# respect: a filter such as "has no orders" may match them now.
_BY_TYPE: Mapping[str, frozenset[str]] = {
    "customer.created": EVERYTHING,
    "customer.merged": EVERYTHING,
    "customer.updated": frozenset({CUSTOMER}),
}
_BY_PREFIX: Mapping[str, frozenset[str]] = {
    # An order changes the customer's metrics and arrived as a shop event.
    "order": frozenset({ORDERS, CUSTOMER, EVENTS}),
    "interaction": frozenset({INTERACTIONS}),
    "task": frozenset({INTERACTIONS}),
}


@dataclass
class Touched:
    """The customers of one workspace changed in this unit of work, with what changed."""

    context: Context
    customers: dict[UUID, set[str]] = field(default_factory=dict)


def touch_customers(
    session: AsyncSession | Session,
    context: Context,
    customer_ids: Iterable[UUID],
    kinds: Iterable[str],
) -> None:
    touched: dict[UUID, Touched] = session.info.setdefault(_TOUCHED, {})
    entry = touched.setdefault(context.workspace_id, Touched(context))
    kinds = frozenset(kinds)
    for customer_id in customer_ids:
        entry.customers.setdefault(customer_id, set()).update(kinds)


def touch_by_event(
    session: AsyncSession | Session,
    context: Context,
    event_type: str,
    subject_type: str,
    subject_id: UUID,
    data: Mapping[str, Any],
) -> None:
    kinds = _BY_TYPE.get(event_type)
    if kinds is None:
        kinds = _BY_PREFIX.get(event_type.partition(".")[0])
    if kinds is None:
        return
    if subject_type == "customer":
        customer_id: Any = subject_id
    else:
        customer_id = data.get("customer_id")
    if customer_id is not None:
        touch_customers(session, context, [UUID(str(customer_id))], kinds)


def take_touched(session: AsyncSession | Session) -> list[Touched]:
    """What was touched so far, forgotten here: the caller handles it."""
    touched: dict[UUID, Touched] = session.info.pop(_TOUCHED, {})
    return list(touched.values())


def forget_touched(session: AsyncSession | Session) -> None:
    session.info.pop(_TOUCHED, None)
