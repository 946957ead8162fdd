"""Applying shop events exactly once, and reading orders."""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy import Select, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.context import Context
from app.core.errors import AppError, Conflict, ValidationFailed
from app.core.ids import uuid7
from app.core.schemas import InputModel, validate_input
from app.db.locks import lock_names
from app.db.pagination import Page, PageRequest
from app.domain.commerce import schemas
from app.domain.commerce.entities import InboundEvent, Order, OrderLine
from app.domain.commerce.metrics import metrics_of_orders, refresh_metrics
from app.domain.commerce.repository import (
    FAILED,
    WAITING,
    InboundEventRepository,
    OrderRepository,
)
from app.domain.customer.service import CustomerService, Reference, Resolution
from app.domain.outbox.service import EventRecorder, PendingEvent, changes_between
from app.domain.outbox.touches import EVENTS, touch_customers

MAX_AHEAD = timedelta(days=1)
RESOLVE_ATTEMPTS = 3
APPLIED = "applied"
PROCESSING = "processing"

Loc = tuple[str | int, ...]


class IngestStatus(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    ERROR = "error"


@dataclass(slots=True)
class IngestResult:
    index: int
    status: IngestStatus
    event_id: str | None = None
    customer_id: UUID | None = None
    order_id: UUID | None = None
    error: AppError | None = None


@dataclass(slots=True)
class _Parsed:
    index: int
    event: schemas.EventIn
    order: schemas.OrderIn | None = None
    refund: schemas.RefundIn | None = None
    cancel: schemas.OrderReference | None = None

    @property
    def order_ref(self) -> str | None:
        for payload in (self.order, self.refund, self.cancel):
            if payload is not None:
                return payload.order_id
        return None


@dataclass
class _Batch:
    """What one call works on: orders by shop id, and the events' outcomes."""

    orders: dict[str, Order]
    waiting: dict[str, list[tuple[InboundEvent | _Parsed, UUID | None]]]
    # Each order touched, with its view before this call (as first recorded, for new ones).
    changed_orders: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    created: set[UUID] = field(default_factory=set)
    # Orders changed after their view before this call was taken; the others need no new view.
    mutated: set[UUID] = field(default_factory=set)
    customers: set[UUID] = field(default_factory=set)
    # Customers created by this call, whose figures come from the orders in hand.
    new_customers: set[UUID] = field(default_factory=set)
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)


def _validated(model: type[InputModel], raw: Any, loc: Loc) -> Any:
    try:
        return validate_input(model, raw)
    except ValidationError as error:
        raise ValidationFailed.from_errors(error.errors(), loc) from error


def _parse(index: int, raw: Any, loc: Loc) -> _Parsed:
    event: schemas.EventIn = _validated(schemas.EventIn, raw, loc)
    if event.occurred_at > utcnow() + MAX_AHEAD:
        raise ValidationFailed.at((*loc, "occurred_at"), "That is more than a day ahead.")
    parsed = _Parsed(index, event)
    order_loc = (*loc, "order")
    kind = event.type
    if kind == schemas.KnownEventType.ORDER_COMPLETED:
        parsed.order = _validated(schemas.OrderIn, event.order, order_loc)
    elif kind == schemas.KnownEventType.ORDER_REFUNDED:
        parsed.refund = _validated(schemas.RefundIn, event.order, order_loc)
    elif kind == schemas.KnownEventType.ORDER_CANCELLED:
        parsed.cancel = _validated(schemas.OrderReference, event.order, order_loc)
    elif event.order is not None:
        raise ValidationFailed.at(order_loc, f"A {kind} event carries no order.")
    return parsed


def _reference(event: schemas.EventIn) -> Reference:
    who = event.customer
    return Reference(
        source=who.source,
        external_id=who.external_id,
        email=who.email,
        phone=who.phone,
        family_name=who.family_name,
        given_name=who.given_name,
    )


class IngestService:
    """Applies shop events: each event id once, orders with their lines, refunds and
    cancellations in any order of arrival, customer metrics in the same transaction."""

    def __init__(self, session: AsyncSession, context: Context) -> None:
        self.session = session
        self.context = context
        dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
        self.inbound = InboundEventRepository(session, context.workspace_id, dialect)
        self.orders = OrderRepository(session, context.workspace_id)
        self.customers = CustomerService(session, context)
        self.events = EventRecorder(session, context)

    async def ingest(self, items: Sequence[Any], *, batch: bool) -> list[IngestResult]:
        results: dict[int, IngestResult] = {}
        parsed: list[_Parsed] = []
        first_of: dict[str, int] = {}
        for index, raw in enumerate(items):
            loc: Loc = ("body", "items", index) if batch else ("body",)
            try:
                event = _parse(index, raw, loc)
            except AppError as error:
                results[index] = IngestResult(index, IngestStatus.ERROR, error=error)
                continue
            if event.event.event_id in first_of:  # a copy within this batch
                results[index] = IngestResult(
                    index, IngestStatus.DUPLICATE, event_id=event.event.event_id
                )
                continue
            first_of[event.event.event_id] = index
            parsed.append(event)

        # Events for the same customer apply one after another, in the order the feed shows.
        await lock_names(self.session, self._customer_names(parsed))
        claimed = await self.inbound.claim(
            [
                {
                    "event_id": item.event.event_id,
                    "id": uuid7(),
                    "type": item.event.type,
                    "status": PROCESSING,
                    "occurred_at": item.event.occurred_at,
                    "order_ref": item.order_ref,
                    "payload": item.event.model_dump(mode="json"),
                }
                for item in parsed
            ]
        )
        seen = await self.inbound.seen(
            [item.event.event_id for item in parsed if item.event.event_id not in claimed]
        )
        fresh = [item for item in parsed if item.event.event_id in claimed]
        for item in parsed:
            if item.event.event_id in seen:
                earlier = seen[item.event.event_id]
                results[item.index] = IngestResult(
                    item.index,
                    IngestStatus.DUPLICATE,
                    event_id=earlier.event_id,
                    customer_id=earlier.customer_id,
                    order_id=earlier.order_id,
                )
        if fresh:
            await self._apply(fresh, results)
        for index, result in results.items():
            if result.status is IngestStatus.DUPLICATE and result.customer_id is None:
                first = results.get(first_of.get(result.event_id or "", -1))
                if first is not None and first.status is not IngestStatus.ERROR:
                    result.customer_id, result.order_id = first.customer_id, first.order_id
                    results[index] = result
        return [results[index] for index in range(len(items))]

    def _customer_names(self, parsed: list[_Parsed]) -> Iterator[str]:
        """A lock name for each way the events name their customers: two events naming one
        customer the same way wait for each other before either takes a transaction id."""
        workspace = self.context.workspace_id
        for item in parsed:
            who = item.event.customer
            if who.external_id is not None:
                yield f"customer:{workspace}:{who.source}:{who.external_id}"
            if who.email is not None:
                yield f"customer:{workspace}:email:{who.email}"
            if who.phone is not None:
                yield f"customer:{workspace}:phone:{who.phone}"

    async def _apply(self, fresh: list[_Parsed], results: dict[int, IngestResult]) -> None:
        work = await self._apply_orders(fresh, results)
        await self.session.flush()
        await self.inbound.release(work.failed)
        await self.inbound.record_outcomes(list(work.outcomes.values()))
        touch_customers(
            self.session,
            self.context,
            {
                outcome["customer_id"]
                for outcome in work.outcomes.values()
                if outcome.get("customer_id")
            },
            [EVENTS],
        )
        await self._record_order_events(work)
        await refresh_metrics(
            self.session, self.context.workspace_id, work.customers - work.new_customers
        )

    async def _apply_orders(self, fresh: list[_Parsed], results: dict[int, IngestResult]) -> _Batch:
        """Resolves the customers and applies the events to the orders. A concurrent request
        creating the same new customer makes an attempt wait for it and fail; the next attempt
        then finds that customer. An attempt that creates nobody cannot fail so and needs no
        savepoint."""
        references = [_reference(item.event) for item in fresh]
        for attempt in range(RESOLVE_ATTEMPTS):
            resolution = await self.customers.resolve(references)
            outcomes: dict[int, IngestResult] = {}
            try:
                if resolution.created:
                    async with self.session.begin_nested():
                        work = await self._attempt(fresh, resolution, outcomes)
                else:
                    work = await self._attempt(fresh, resolution, outcomes)
            except Conflict as conflict:
                if not isinstance(conflict.__cause__, IntegrityError):
                    raise
                if attempt == RESOLVE_ATTEMPTS - 1:
                    raise
                continue
            results.update(outcomes)
            return work
        raise AssertionError("unreachable")

    async def _attempt(
        self, fresh: list[_Parsed], resolution: Resolution, results: dict[int, IngestResult]
    ) -> _Batch:
        refs = {item.order_ref for item in fresh if item.order_ref is not None}
        recorded, awaited = await self.orders.referenced(refs)
        work = _Batch(
            orders=await self.orders.by_shop_ids(recorded),
            waiting={},
            new_customers={customer.id for customer in resolution.created},
        )
        for stored in await self.inbound.waiting_for(awaited):
            work.waiting.setdefault(stored.order_ref or "", []).append((stored, stored.customer_id))
        for item, customer_id in zip(fresh, resolution.customer_ids, strict=True):
            event_id = item.event.event_id
            try:
                order_id = await self._apply_one(item, customer_id, work)
            except AppError as error:
                work.failed.add(event_id)
                results[item.index] = IngestResult(item.index, IngestStatus.ERROR, error=error)
                continue
            results[item.index] = IngestResult(
                item.index,
                IngestStatus.ACCEPTED,
                event_id=event_id,
                customer_id=customer_id,
                order_id=order_id,
            )
            status = work.outcomes.get(event_id, {}).get("status", APPLIED)
            work.outcomes[event_id] = {
                "event_id": event_id,
                "status": status,
                "customer_id": customer_id,
                "order_id": order_id,
            }
        # A new customer's orders are all in this batch: it is written once, with its figures.
        created = {customer.id: customer for customer in resolution.created}
        for figures in metrics_of_orders(work.new_customers, work.orders.values()):
            customer = created[figures.pop("id")]
            for name, value in figures.items():
                setattr(customer, name, value)
        await self.customers.create_resolved(resolution.created)
        return work

    async def _apply_one(self, item: _Parsed, customer_id: UUID, work: _Batch) -> UUID | None:
        event = item.event
        loc: Loc = ("body", "order")
        if item.order is not None:
            if item.order.order_id in work.orders:
                existing = work.orders[item.order.order_id]
                raise Conflict(
                    f"Order {item.order.order_id} is recorded already.", order_id=str(existing.id)
                )
            order = self._new_order(item.order, customer_id, event.occurred_at)
            work.orders[order.order_id] = order
            work.changed_orders[order.id] = schemas.Order.snapshot(order)
            work.created.add(order.id)
            work.customers.add(customer_id)
            for waiting, _ in sorted(work.waiting.pop(order.order_id, []), key=_waiting_order):
                self._apply_waiting(waiting, order, work)
            return order.id
        reference = item.order_ref
        if reference is None:
            return None  # page views, carts, identifications and custom events are only kept
        target = work.orders.get(reference)
        if target is None:
            work.waiting.setdefault(reference, []).append((item, customer_id))
            work.outcomes[event.event_id] = {"status": WAITING}
            return None
        self._change_order(target, item, work, loc)
        work.customers.add(target.customer_id or customer_id)
        return target.id

    def _new_order(self, data: schemas.OrderIn, customer_id: UUID, occurred_at: datetime) -> Order:
        lines = [line.model_dump() | {"refunded_quantity": 0} for line in data.lines]
        subtotal = sum(line.quantity * line.unit_price for line in data.lines)
        total = data.total if data.total is not None else subtotal - data.discount + data.tax
        now = utcnow()
        order = Order(
            id=uuid7(),
            created_at=now,
            updated_at=now,
            version=1,
            order_id=data.order_id,
            customer_id=customer_id,
            currency=data.currency,
            channel=data.channel,
            store_id=data.store_id,
            lines=lines,
            discount=data.discount,
            tax=data.tax,
            total=max(total, 0),
            refunded_total=0,
            status="completed",
            occurred_at=occurred_at,
        )
        self.orders.add(order)
        return order

    def _apply_waiting(self, waiting: InboundEvent | _Parsed, order: Order, work: _Batch) -> None:
        """A refund or cancellation that came before its order, applied now."""
        if isinstance(waiting, _Parsed):
            event_id, parsed = waiting.event.event_id, waiting
        else:
            event_id = waiting.event_id
            parsed = _parse(0, waiting.payload, ("payload",))
        try:
            self._change_order(order, parsed, work, ("body", "order"))
            outcome = APPLIED
        except AppError:
            outcome = FAILED  # e.g. a refund larger than the order it finally met
        customer_id = waiting.customer_id if isinstance(waiting, InboundEvent) else None
        current = work.outcomes.get(event_id, {})
        work.outcomes[event_id] = {
            "event_id": event_id,
            "status": outcome,
            "customer_id": current.get("customer_id", customer_id),
            "order_id": order.id,
        }

    def _change_order(self, order: Order, item: _Parsed, work: _Batch, loc: Loc) -> None:
        before = work.changed_orders.get(order.id) or schemas.Order.snapshot(order)
        if item.cancel is not None:
            if order.status != "cancelled":
                order.status = "cancelled"
                order.cancelled_at = item.event.occurred_at
        elif item.refund is not None:
            _refund(order, item.refund, loc)
        work.changed_orders.setdefault(order.id, before)
        work.mutated.add(order.id)

    async def _record_order_events(self, work: _Batch) -> None:
        """Order lines as rows, refunded quantities, and the orders' domain events."""
        by_id = {order.id: order for order in work.orders.values()}
        new_lines: list[dict[str, Any]] = []
        refunded: list[dict[str, Any]] = []
        pending: list[PendingEvent] = []
        await self.session.flush()
        for order_id, before in work.changed_orders.items():
            order = by_id[order_id]
            after = schemas.Order.snapshot(order) if order_id in work.mutated else before
            if order_id in work.created:
                new_lines += [
                    {"order_id": order.id, "line_no": number, **_line_columns(line)}
                    for number, line in enumerate(order.lines)
                ]
                pending.append(PendingEvent("order.completed", "order", order.id, before))
            else:
                refunded += [
                    {"order_id": order.id, "line_no": number, **line}
                    for number, line in enumerate(order.lines)
                    if line["refunded_quantity"] != before["lines"][number]["refunded_quantity"]
                ]
            diff = changes_between(before, after)
            if "refunded_total" in diff:
                pending.append(PendingEvent("order.refunded", "order", order.id, after, diff))
            if diff.get("status", {}).get("new") == "cancelled":
                pending.append(PendingEvent("order.cancelled", "order", order.id, after, diff))
        await self.session.flush()
        await self.orders.add_lines(new_lines)
        await self.orders.set_refunded_quantities(refunded)
        await self.events.record_many(pending)

    # Reading orders

    async def get_order(self, order_id: UUID) -> Order:
        return await self.orders.require(order_id)

    async def orders_page(self, page: PageRequest, query: "OrderQuery") -> Page[Order]:
        return await self.orders.page(_filtered(self.orders.select(), query), page)


def _waiting_order(entry: tuple[InboundEvent | _Parsed, UUID | None]) -> datetime:
    waiting = entry[0]
    return waiting.occurred_at if isinstance(waiting, InboundEvent) else waiting.event.occurred_at


def _line_columns(line: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "sku": line["sku"],
        "name": line.get("name"),
        "category": line.get("category"),
        "quantity": line["quantity"],
        "unit_price": line["unit_price"],
        "refunded_quantity": line.get("refunded_quantity", 0),
    }


def _refund(order: Order, refund: schemas.RefundIn, loc: Loc) -> None:
    """Applies a refund by lines (unit price × quantity) or by amount, never beyond the order."""
    if order.status == "cancelled":
        raise ValidationFailed.at((*loc, "order_id"), "The order is cancelled.")
    amount = 0
    if refund.lines is not None:
        lines = [dict(line) for line in order.lines]
        for index, requested in enumerate(refund.lines):
            remaining = requested.quantity
            for line in lines:
                if line["sku"] != requested.sku or remaining == 0:
                    continue
                taken = min(remaining, line["quantity"] - line["refunded_quantity"])
                line["refunded_quantity"] += taken
                amount += taken * line["unit_price"]
                remaining -= taken
            if remaining:
                raise ValidationFailed.at(
                    (*loc, "lines", index, "quantity"),
                    f"Only {requested.quantity - remaining} of {requested.sku} are left to refund.",
                )
    else:
        lines, amount = order.lines, refund.amount or 0
    if order.refunded_total + amount > order.total:
        raise ValidationFailed.at(
            (*loc, "amount" if refund.amount is not None else "lines"),
            f"Only {order.total - order.refunded_total} {order.currency} are left to refund.",
        )
    order.lines = lines
    order.refunded_total += amount
    order.status = "refunded" if order.refunded_total >= order.total else "partially_refunded"


@dataclass(frozen=True, slots=True)
class OrderQuery:
    customer_id: UUID | None = None
    channel: str | None = None
    status: str | None = None
    sku: str | None = None
    occurred_after: datetime | None = None
    occurred_before: datetime | None = None


def _filtered(stmt: Select[Order], query: OrderQuery) -> Select[Order]:
    if query.customer_id is not None:
        stmt = stmt.where(Order.customer_id == query.customer_id)
    if query.channel is not None:
        stmt = stmt.where(Order.channel == query.channel)
    if query.status is not None:
        stmt = stmt.where(Order.status == query.status)
    if query.occurred_after is not None:
        stmt = stmt.where(Order.occurred_at >= query.occurred_after)
    if query.occurred_before is not None:
        stmt = stmt.where(Order.occurred_at < query.occurred_before)
    if query.sku is not None:
        stmt = stmt.where(
            exists(
                select(OrderLine.line_no).where(
                    OrderLine.workspace_id == Order.workspace_id,
                    OrderLine.order_id == Order.id,
                    OrderLine.sku == query.sku,
                )
            )
        )
    return stmt
