"""Queries for inbound events, orders and the purchase metrics derived from them."""

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any, ClassVar, cast
from uuid import UUID

from sqlalchemy import CompoundSelect, Table, func, literal_column, or_, select, union_all, update
from sqlalchemy.orm import InstrumentedAttribute

from app.db.bulk import insert_rows, update_rows
from app.db.dialect import insert_new, json_without_key
from app.db.repository import WORKSPACE, WorkspaceRepository, many
from app.domain.commerce.entities import InboundEvent, Order, OrderLine
from app.domain.customer.entities import Customer

WAITING = "waiting"
FAILED = "failed"
# Orders that count in a customer's figures.
COUNTED_STATUSES = ("completed", "partially_refunded")

# Statements of the event path, built once (see WORKSPACE).
_CUSTOMER_IDS = many("customer_ids")
_ORDERS_BY_SHOP_ID = select(Order).where(
    Order.workspace_id == WORKSPACE, Order.order_id.in_(many("shop_ids"))
)
_EVENTS_BY_ID = select(InboundEvent).where(
    InboundEvent.workspace_id == WORKSPACE, InboundEvent.event_id.in_(many("event_ids"))
)
_WAITING_HERE = (InboundEvent.workspace_id == WORKSPACE, InboundEvent.status == WAITING)
_ORDER = "order"
_REFERENCED: CompoundSelect[Any] = union_all(
    select(literal_column(f"'{_ORDER}'").label("kind"), Order.order_id.label("ref")).where(
        Order.workspace_id == WORKSPACE, Order.order_id.in_(many("refs"))
    ),
    select(literal_column(f"'{WAITING}'"), InboundEvent.order_ref).where(
        *_WAITING_HERE, InboundEvent.order_ref.in_(many("refs"))
    ),
)
_WAITING_FOR_ORDERS = (
    select(InboundEvent)
    .where(*_WAITING_HERE, InboundEvent.order_ref.in_(many("order_refs")))
    .order_by(InboundEvent.occurred_at, InboundEvent.received_at)
)
_COUNTED_ORDERS_OF_CUSTOMERS = (
    Order.workspace_id == WORKSPACE,
    Order.customer_id.in_(_CUSTOMER_IDS),
    Order.status.in_(COUNTED_STATUSES),
)
_LOCK_CUSTOMERS = (
    select(Customer.id)
    .where(Customer.workspace_id == WORKSPACE, Customer.id.in_(_CUSTOMER_IDS))
    .order_by(Customer.id)
    .with_for_update()
)
_ORDER_FIGURES = (
    select(
        Order.customer_id,
        Order.currency,
        Order.channel,
        func.count(),
        func.sum(Order.total - Order.refunded_total),
        func.min(Order.occurred_at),
        func.max(Order.occurred_at),
    )
    .where(*_COUNTED_ORDERS_OF_CUSTOMERS)
    .group_by(Order.customer_id, Order.currency, Order.channel)
)
# The customers' orders lead and their lines follow (an outer join, which SQLite does not
# reorder, and no condition on the lines): with an inner join SQLite starts from the
# workspace's lines by category, all of them, for one customer's order.
_CATEGORY_QUANTITIES = (
    select(
        Order.customer_id,
        OrderLine.category,
        func.sum(OrderLine.quantity - OrderLine.refunded_quantity),
    )
    .select_from(Order)
    .outerjoin(
        OrderLine,
        (OrderLine.workspace_id == Order.workspace_id) & (OrderLine.order_id == Order.id),
    )
    .where(*_COUNTED_ORDERS_OF_CUSTOMERS)
    .group_by(Order.customer_id, OrderLine.category)
)


def _store_neighbours() -> Any:
    """The UPDATE of `MetricsRepository.store_neighbours`, built once."""
    in_time = (Order.occurred_at, Order.id)
    neighbours = (
        select(
            Order.id.label("id"),
            Order.customer_previous_at.label("stored_previous_at"),
            Order.customer_next_at.label("stored_next_at"),
            func.lag(Order.occurred_at)
            .over(partition_by=Order.customer_id, order_by=in_time)
            .label("previous_at"),
            func.lead(Order.occurred_at)
            .over(partition_by=Order.customer_id, order_by=in_time)
            .label("next_at"),
        )
        .where(*_COUNTED_ORDERS_OF_CUSTOMERS)
        .subquery()
    )
    # Compared here, on the rows the window read, so unchanged orders are not looked up again.
    changed = (
        select(neighbours)
        .where(
            or_(
                neighbours.c.stored_previous_at.is_distinct_from(neighbours.c.previous_at),
                neighbours.c.stored_next_at.is_distinct_from(neighbours.c.next_at),
            )
        )
        .subquery()
    )
    return (
        update(Order)
        .where(Order.workspace_id == WORKSPACE, Order.id == changed.c.id)
        .values(
            customer_previous_at=changed.c.previous_at,
            customer_next_at=changed.c.next_at,
            # Derived, not a change of the order: its version and times stay.
            updated_at=Order.updated_at,
        )
        .execution_options(synchronize_session=False)
    )


_STORE_NEIGHBOURS = _store_neighbours()


@cache
def _claim(dialect: str) -> Any:
    return insert_new(InboundEvent, dialect).returning(InboundEvent.event_id)


class OrderRepository(WorkspaceRepository[Order]):
    entity = Order
    noun = "order"
    sortable: ClassVar[Mapping[str, InstrumentedAttribute[Any]]] = {
        "occurred_at": Order.occurred_at,
        "updated_at": Order.updated_at,
    }

    async def referenced(self, shop_ids: Collection[str]) -> tuple[set[str], set[str]]:
        """Which of these shop order ids are recorded orders, and which have refunds or
        cancellations waiting for them, in one query: most events name a new order, so the
        two loads that follow usually have nothing to read."""
        if not shop_ids:
            return set(), set()
        orders: set[str] = set()
        waiting: set[str] = set()
        result = await self.session.execute(
            _REFERENCED, {"workspace": self.workspace_id, "refs": list(shop_ids)}
        )
        for kind, ref in result.all():
            (orders if kind == _ORDER else waiting).add(ref)
        return orders, waiting

    async def by_shop_ids(self, shop_ids: Collection[str]) -> dict[str, Order]:
        if not shop_ids:
            return {}
        result = await self.session.execute(
            _ORDERS_BY_SHOP_ID, {"workspace": self.workspace_id, "shop_ids": list(shop_ids)}
        )
        return {order.order_id: order for order in result.scalars()}

    async def add_lines(self, rows: Sequence[dict[str, Any]]) -> None:
        await insert_rows(
            self.session,
            cast(Table, OrderLine.__table__),
            [{"workspace_id": self.workspace_id, **row} for row in rows],
        )

    async def set_refunded_quantities(self, rows: Sequence[dict[str, Any]]) -> None:
        """Sets `refunded_quantity` of (order id, line number) pairs, in one statement."""
        await update_rows(
            self.session,
            cast(Table, OrderLine.__table__),
            ("workspace_id", "order_id", "line_no"),
            [
                {
                    "workspace_id": self.workspace_id,
                    "order_id": row["order_id"],
                    "line_no": row["line_no"],
                    "refunded_quantity": row["refunded_quantity"],
                }
                for row in rows
            ],
        )

    async def move_customer(self, from_id: UUID, to_id: UUID | None) -> None:
        await self.session.execute(
            update(Order)
            .where(Order.workspace_id == self.workspace_id, Order.customer_id == from_id)
            .values(customer_id=to_id)
            .execution_options(synchronize_session=False)
        )


class InboundEventRepository:
    def __init__(self, session: Any, workspace_id: UUID, dialect: str) -> None:
        self.session = session
        self.workspace_id = workspace_id
        self.dialect = dialect

    async def claim(self, rows: Sequence[dict[str, Any]]) -> set[str]:
        """Inserts the events whose ids are new; returns those ids. The others were seen."""
        if not rows:
            return set()
        values = [{"workspace_id": self.workspace_id, **row} for row in rows]
        result = await self.session.execute(_claim(self.dialect), values)
        return set(result.scalars())

    async def seen(self, event_ids: Collection[str]) -> dict[str, InboundEvent]:
        if not event_ids:
            return {}
        result = await self.session.execute(
            _EVENTS_BY_ID, {"workspace": self.workspace_id, "event_ids": list(event_ids)}
        )
        return {event.event_id: event for event in result.scalars()}

    async def waiting_for(self, order_refs: Collection[str]) -> list[InboundEvent]:
        """Refunds and cancellations that arrived before their order, oldest first."""
        if not order_refs:
            return []
        result = await self.session.execute(
            _WAITING_FOR_ORDERS,
            {"workspace": self.workspace_id, "order_refs": list(order_refs)},
        )
        return list(result.scalars())

    async def record_outcomes(self, rows: Sequence[dict[str, Any]]) -> None:
        """Sets status, customer and order of claimed events, in one statement."""
        await update_rows(
            self.session,
            cast(Table, InboundEvent.__table__),
            ("workspace_id", "event_id"),
            [
                {
                    "workspace_id": self.workspace_id,
                    "event_id": row["event_id"],
                    "status": row["status"],
                    "customer_id": row["customer_id"],
                    "order_id": row["order_id"],
                }
                for row in rows
            ],
        )

    async def release(self, event_ids: Collection[str]) -> None:
        """Forgets claims of events that failed, so the shop may send them again."""
        if event_ids:
            table = cast(Table, InboundEvent.__table__)
            await self.session.execute(
                table.delete().where(
                    table.c.workspace_id == self.workspace_id, table.c.event_id.in_(event_ids)
                )
            )

    async def forget_customer(self, customer_id: UUID) -> None:
        """Removes who an event was about from what the shop sent (erasure)."""
        await self.session.execute(
            update(InboundEvent)
            .where(
                InboundEvent.workspace_id == self.workspace_id,
                InboundEvent.customer_id == customer_id,
            )
            .values(payload=json_without_key(InboundEvent.payload, "customer", self.dialect))
        )

    async def move_customer(self, from_id: UUID, to_id: UUID | None) -> None:
        await self.session.execute(
            update(InboundEvent)
            .where(
                InboundEvent.workspace_id == self.workspace_id,
                InboundEvent.customer_id == from_id,
            )
            .values(customer_id=to_id)
        )


class MetricsRepository:
    """Purchase metrics of customers, derived from their orders by SQL aggregates."""

    def __init__(self, session: Any, workspace_id: UUID) -> None:
        self.session = session
        self.workspace_id = workspace_id

    def _of(self, customer_ids: Collection[UUID]) -> dict[str, Any]:
        return {"workspace": self.workspace_id, "customer_ids": list(customer_ids)}

    async def lock(self, customer_ids: Collection[UUID]) -> None:
        """Waits for other transactions changing these customers' figures, in a fixed order so
        that two of them never wait for each other. SQLite runs one writer at a time anyway."""
        if self.session.bind is not None and self.session.bind.dialect.name == "postgresql":
            await self.session.execute(_LOCK_CUSTOMERS, self._of(customer_ids))

    async def order_figures(
        self, customer_ids: Collection[UUID]
    ) -> list[tuple[UUID, str, str, int, int, datetime, datetime]]:
        """(customer, currency, channel, orders, net spent, first, last) per customer, currency
        and channel: one query serves the figures by currency and the counts by channel."""
        result = await self.session.execute(_ORDER_FIGURES, self._of(customer_ids))
        return [tuple(row) for row in result.all()]

    async def store_neighbours(self, customer_ids: Collection[UUID]) -> None:
        """Sets each counted order's `customer_previous_at` and `customer_next_at` from these
        customers' counted orders; only the rows whose neighbours changed are written."""
        await self.session.execute(_STORE_NEIGHBOURS, self._of(customer_ids))

    async def category_quantities(
        self, customer_ids: Collection[UUID]
    ) -> list[tuple[UUID, str, int]]:
        """Quantities bought per customer and category."""
        result = await self.session.execute(_CATEGORY_QUANTITIES, self._of(customer_ids))
        return [
            (customer_id, category, quantity)
            for customer_id, category, quantity in result.all()
            if category is not None
        ]

    async def store(self, rows: Sequence[dict[str, Any]]) -> None:
        """Writes metrics columns of customers; not a change of the record, so no new version."""
        await update_rows(
            self.session,
            cast(Table, Customer.__table__),
            ("workspace_id", "id"),
            [{"workspace_id": self.workspace_id, **row} for row in rows],
        )
