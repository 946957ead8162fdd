"""Keeping dynamic segments in line with their filters, and announcing who entered or left.

Three paths lead here. A unit of work that changed customers re-evaluates, before it commits,
the segments those changes can affect, for those customers alone. The worker fills a new segment
(silently: nobody entered because something happened), recomputes one whose filter changed
(announcing the difference), and sweeps the dynamic segments that drift now and then (a
customer silently leaves "bought within 30 days" as time passes). Static segments change by API.
All of them end in `apply`, where the membership rows decide what really changed.
"""

from collections import defaultdict
from collections.abc import Collection, Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.context import Context
from app.domain.customer import schemas as customer_schemas
from app.domain.customer.entities import Customer
from app.domain.customer.repository import CustomerRepository
from app.domain.customer.service import CustomerService
from app.domain.outbox.service import EventRecorder, PendingEvent
from app.domain.outbox.touches import CUSTOMER, EVERYTHING
from app.domain.segment.entities import Segment
from app.domain.segment.repository import (
    ENTERED,
    EXITED,
    MemberRepository,
    SegmentRepository,
)
from app.filters.compiler import compile_filter
from app.filters.fields import FieldRegistry

CHUNK = 500
# Compiled segment filters by segment, version and field registry, oldest first.
COMPILED_KEPT = 4096
_COMPILED: dict[tuple[Hashable, ...], ColumnElement[bool]] = {}
SEGMENTS = "segments"
_BEHAVIOURS = frozenset(EVERYTHING - {CUSTOMER})
_RELATIVE_OPS = frozenset({"within_last", "not_within_last"})
# Values that change with no event touching the customer: scores the insights worker
# recomputes, the company's fields, other segments' members (swept themselves), and custom
# fields, whose definitions may change.
_KEPT_ELSEWHERE = frozenset(
    {
        SEGMENTS,
        "metrics.churn_risk",
        "metrics.predicted_ltv",
        "metrics.probability_alive",
        "metrics.insights_computed_at",
    }
)
_KEPT_ELSEWHERE_PREFIXES = ("metrics.rfm.", "company.", "attributes.")


def depends_on(raw_filter: Any) -> list[str]:
    """What a (valid) filter reads: `orders`, `interactions`, `events` for behaviours,
    `segments` for membership of other segments, and `customer` for everything else."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if not isinstance(node, dict):
            return
        for group in ("all", "any"):
            for child in node.get(group, []):
                walk(child)
        if "not" in node:
            walk(node["not"])
        name = node.get("field")
        if isinstance(name, str):
            found.add(name if name in _BEHAVIOURS or name == SEGMENTS else CUSTOMER)

    walk(raw_filter)
    return sorted(found)


def drifts(raw_filter: Any) -> bool:
    """Whether the filter's matches can change while no event touches the customer: a period
    relative to now (time passes), or a value kept elsewhere. Only the periodic sweep catches
    those; every other filter is followed live, change by change, and the sweep passes it by."""

    def walk(node: Any) -> bool:
        if not isinstance(node, dict):
            return False
        if node.get("op") in _RELATIVE_OPS:
            return True
        name = node.get("field")
        if isinstance(name, str) and (
            name in _KEPT_ELSEWHERE or name.startswith(_KEPT_ELSEWHERE_PREFIXES)
        ):
            return True
        children = [*node.get("all", []), *node.get("any", []), node.get("not"), node.get("where")]
        return any(walk(child) for child in children)

    return walk(raw_filter)


@dataclass(frozen=True, slots=True)
class Changes:
    entering: Mapping[UUID, Collection[UUID]]  # segment id -> customer ids
    leaving: Mapping[UUID, Collection[UUID]]


class Membership:
    def __init__(self, session: AsyncSession, context: Context) -> None:
        self.session = session
        self.context = context
        workspace_id = context.workspace_id
        bind = session.bind
        self.dialect = bind.dialect.name if bind is not None else "sqlite"
        self.segments = SegmentRepository(session, workspace_id)
        self.members = MemberRepository(session, workspace_id, self.dialect)
        self.customers = CustomerRepository(session, workspace_id)
        self.customer_service = CustomerService(session, context)
        self.events = EventRecorder(session, context)
        self._fields: FieldRegistry | None = None

    async def condition(
        self, segment: Segment, *, whole_workspace: bool = False
    ) -> ColumnElement[bool]:
        """The segment's filter as SQL, for a few customers or for `whole_workspace` at once;
        the workspace's field registry is read once per unit, and a filter compiled once per
        version of the segment and of the registry (its relative times read the clock when
        the statement runs)."""
        if self._fields is None:
            self._fields = await self.customer_service.filter_fields()
        key = (segment.id, segment.version, whole_workspace, self._fields.fingerprint)
        condition = _COMPILED.get(key)
        if condition is None:
            condition = compile_filter(
                segment.filter,
                self._fields,
                now=utcnow,
                path=("filter",),
                whole_workspace=self.context.workspace_id if whole_workspace else None,
            )
            if len(_COMPILED) >= COMPILED_KEPT:
                del _COMPILED[next(iter(_COMPILED))]  # the oldest compiled
            _COMPILED[key] = condition
        return condition

    async def follow(self, touched: Mapping[UUID, Collection[str]]) -> None:
        """Re-evaluates, for the touched customers, each dynamic segment that reads what changed."""
        segments = [
            segment
            for segment in await self.segments.dynamic()
            if any(set(segment.depends_on) & set(kinds) for kinds in touched.values())
        ]
        if not segments:
            return
        conditions = {segment.id: await self.condition(segment) for segment in segments}
        ids = sorted(touched)
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            # Locked in id order: a concurrent unit changing the same customer waits, then
            # sees this one's members, so each change is announced once.
            customers = await self.customers.get_many(chunk, lock=True)
            # Only what a customer's changes can affect is re-evaluated (and so compared).
            relevant = {
                (segment.id, customer_id)
                for segment in segments
                for customer_id in customers
                if set(segment.depends_on) & set(touched[customer_id])
            }
            if not relevant:
                continue
            matching = await self.members.matching(conditions, list(customers)) & relevant
            current = await self.members.current(list(conditions), list(customers)) & relevant
            await self.apply(
                {segment.id: segment for segment in segments},
                _changes(matching - current, current - matching),
                customers,
            )

    async def apply(
        self,
        segments: Mapping[UUID, Segment],
        changes: Changes,
        customers: Mapping[UUID, Customer] | None = None,
        *,
        announce: bool = True,
    ) -> tuple[int, int]:
        """Writes the members and the counts, and unless told not to `announce` (a segment's
        first filling), the history and the events; (entered, left)."""
        now = utcnow()
        history: list[dict[str, Any]] = []
        announced: list[tuple[str, UUID, UUID]] = []
        deltas: dict[UUID, int] = defaultdict(int)
        for segment_id, customer_ids in changes.entering.items():
            for customer_id in await self.members.add(segment_id, customer_ids, now):
                announced.append((ENTERED, segment_id, customer_id))
                deltas[segment_id] += 1
        for segment_id, customer_ids in changes.leaving.items():
            for customer_id in await self.members.remove(segment_id, customer_ids):
                announced.append((EXITED, segment_id, customer_id))
                deltas[segment_id] -= 1
        if not announced:
            return 0, 0
        await self.segments.adjust_counts(deltas)
        entered = sum(1 for change, _, _ in announced if change == ENTERED)
        if not announce:
            return entered, len(announced) - entered
        history = [
            {
                "segment_id": segment_id,
                "customer_id": customer_id,
                "change": change,
                "occurred_at": now,
            }
            for change, segment_id, customer_id in announced
        ]
        await self.members.record_changes(history)
        known = dict(customers or {})
        missing = {customer_id for _, _, customer_id in announced} - set(known)
        known.update(await self.customers.get_many(missing))
        snapshots = {
            customer_id: customer_schemas.Customer.snapshot(customer)
            for customer_id, customer in known.items()
        }
        await self.events.record_many(
            [
                PendingEvent(
                    f"segment.{change}",
                    "customer",
                    customer_id,
                    {
                        "segment": _segment_summary(segments[segment_id]),
                        "customer": snapshots[customer_id],
                    },
                )
                for change, segment_id, customer_id in announced
                if customer_id in snapshots
            ]
        )
        return entered, len(announced) - entered

    async def recompute(self, segment: Segment, *, announce: bool) -> tuple[int, int]:
        """Brings the whole segment in line with its filter: the customers it matches that
        are not members are inserted, the members it no longer matches deleted. The rows
        those statements really changed are the ones announced (unless `announce` is false:
        a segment's first filling), so the database does the walking, not this process.
        """
        condition = await self.condition(segment, whole_workspace=True)
        now = utcnow()
        entered, left = await self.members.bring_in_line(segment.id, condition, now)
        deltas = {segment.id: len(entered) - len(left)}
        await self.segments.adjust_counts(deltas)
        if announce:
            for change, customer_ids in ((ENTERED, entered), (EXITED, left)):
                for start in range(0, len(customer_ids), CHUNK):
                    await self._announce(segment, change, customer_ids[start : start + CHUNK], now)
        return len(entered), len(left)

    async def _announce(
        self, segment: Segment, change: str, customer_ids: list[UUID], at: datetime
    ) -> None:
        await self.members.record_changes(
            [
                {
                    "segment_id": segment.id,
                    "customer_id": customer_id,
                    "change": change,
                    "occurred_at": at,
                }
                for customer_id in customer_ids
            ]
        )
        customers = await self.customers.get_many(customer_ids)
        await self.events.record_many(
            [
                PendingEvent(
                    f"segment.{change}",
                    "customer",
                    customer.id,
                    {
                        "segment": _segment_summary(segment),
                        "customer": customer_schemas.Customer.snapshot(customer),
                    },
                )
                for customer in customers.values()
            ]
        )


def _changes(entering: set[tuple[UUID, UUID]], leaving: set[tuple[UUID, UUID]]) -> Changes:
    def by_segment(pairs: set[tuple[UUID, UUID]]) -> dict[UUID, list[UUID]]:
        grouped: dict[UUID, list[UUID]] = defaultdict(list)
        for segment_id, customer_id in sorted(pairs):
            grouped[segment_id].append(customer_id)
        return grouped

    return Changes(entering=by_segment(entering), leaving=by_segment(leaving))


def _segment_summary(segment: Segment) -> dict[str, Any]:
    return {"id": str(segment.id), "name": segment.name, "kind": segment.kind}
