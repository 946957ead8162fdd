"""A customer's whole story, newest first: interactions, orders, shop events, deal stage
moves, segments entered and left, and changes.

One keyset over every kind: each source contributes its newest rows after the cursor (served by
its (workspace, customer, time) index), the union keeps the page, and each kind's rows are then
read by id, so a page costs a handful of queries however long the history.
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Select, literal, select, tuple_, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.context import Context
from app.core.cursors import CURSOR_LOC, cursor_value, decode_cursor, encode_cursor
from app.core.errors import ValidationFailed
from app.db.pagination import PageRequest
from app.domain.commerce.entities import InboundEvent, Order
from app.domain.company.repository import CompanyRepository
from app.domain.customer.repository import CustomerRepository
from app.domain.interaction.entities import Interaction
from app.domain.outbox.entities import DomainEvent
from app.domain.pipeline.entities import Deal, DealStageChange
from app.domain.segment.entities import Segment, SegmentMembershipChange

CURSOR_KIND = "timeline"
_ORDER_PLACED = "order.completed"  # shown as the order itself


class EntryKind(StrEnum):
    INTERACTION = "interaction"
    ORDER = "order"
    EVENT = "event"
    DEAL = "deal"
    SEGMENT = "segment"
    CHANGE = "change"


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    kind: EntryKind
    id: UUID
    type: str
    occurred_at: datetime
    data: dict[str, Any]


COMPANY_KINDS = (EntryKind.INTERACTION, EntryKind.DEAL, EntryKind.CHANGE)


@dataclass(frozen=True, slots=True)
class _Scope:
    """Whose story: a customer (with those merged into it), or a company."""

    customers: Sequence[UUID] = ()
    company: UUID | None = None


@dataclass(frozen=True, slots=True)
class TimelinePage:
    entries: list[TimelineEntry]
    next_cursor: str | None


class TimelineService:
    def __init__(self, session: AsyncSession, context: Context) -> None:
        self.session = session
        self.workspace_id = context.workspace_id
        self.customers = CustomerRepository(session, context.workspace_id)

    async def page(
        self, customer_id: UUID, request: PageRequest, kinds: Collection[EntryKind]
    ) -> TimelinePage:
        await self.customers.require(customer_id)
        subjects = [customer_id, *await self.customers.merged_into(customer_id)]
        return await self._page(_Scope(customers=subjects), request, kinds or list(EntryKind))

    async def company_page(
        self, company_id: UUID, request: PageRequest, kinds: Collection[EntryKind]
    ) -> TimelinePage:
        """A company's story: interactions logged against it, its deals' moves, its changes."""
        await CompanyRepository(self.session, self.workspace_id).require(company_id)
        chosen = [kind for kind in COMPANY_KINDS if not kinds or kind in kinds]
        return await self._page(_Scope(company=company_id), request, chosen)

    async def _page(
        self, scope: "_Scope", request: PageRequest, kinds: Collection[EntryKind]
    ) -> TimelinePage:
        if not kinds:
            return TimelinePage(entries=[], next_cursor=None)
        after = self._decode(request.cursor)
        sources = [self._source(kind, scope, after, request.limit + 1) for kind in kinds]
        union = union_all(*sources).subquery()
        stmt = (
            select(union.c.kind, union.c.id, union.c.occurred_at)
            .order_by(union.c.occurred_at.desc(), union.c.id.desc())
            .limit(request.limit + 1)
        )
        refs = (await self.session.execute(stmt)).all()
        page = refs[: request.limit]
        entries = await self._entries([(EntryKind(kind), entry_id) for kind, entry_id, _ in page])
        next_cursor = None
        if len(refs) > request.limit and entries:
            last = entries[-1]
            next_cursor = encode_cursor(CURSOR_KIND, [last.occurred_at.isoformat(), str(last.id)])
        return TimelinePage(entries=entries, next_cursor=next_cursor)

    def _source(
        self,
        kind: EntryKind,
        scope: "_Scope",
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> Select[Any]:
        entity, time_column, conditions = self._shape(kind, scope)
        if after is not None:
            moment, last_id = after
            conditions.append(
                tuple_(time_column, entity.id)
                < tuple_(literal(moment, time_column.type), literal(last_id, entity.id.type))
            )
        inner = (
            select(
                literal(kind.value).label("kind"),
                entity.id.label("id"),
                time_column.label("occurred_at"),
            )
            .where(*conditions)
            .order_by(time_column.desc(), entity.id.desc())
            .limit(limit)
            .subquery()
        )
        return select(inner.c.kind, inner.c.id, inner.c.occurred_at)

    def _shape(
        self, kind: EntryKind, scope: "_Scope"
    ) -> tuple[Any, Any, list[ColumnElement[bool]]]:
        """The table, time column and conditions of a kind's entries within `scope` (its
        first condition is always the workspace's)."""
        subjects, company = scope.customers, scope.company
        if kind is EntryKind.INTERACTION:
            about = (
                Interaction.company_id == company
                if company is not None
                else Interaction.customer_id.in_(subjects)
            )
            return (
                Interaction,
                Interaction.occurred_at,
                [Interaction.workspace_id == self.workspace_id, about],
            )
        if kind is EntryKind.ORDER:
            return (
                Order,
                Order.occurred_at,
                [Order.workspace_id == self.workspace_id, Order.customer_id.in_(subjects)],
            )
        if kind is EntryKind.EVENT:
            return (
                InboundEvent,
                InboundEvent.occurred_at,
                [
                    InboundEvent.workspace_id == self.workspace_id,
                    InboundEvent.customer_id.in_(subjects),
                    InboundEvent.type != _ORDER_PLACED,
                ],
            )
        if kind is EntryKind.DEAL:
            whose = (
                Deal.company_id == company
                if company is not None
                else Deal.customer_id.in_(subjects)
            )
            deals = select(Deal.id).where(Deal.workspace_id == self.workspace_id, whose)
            return (
                DealStageChange,
                DealStageChange.changed_at,
                [
                    DealStageChange.workspace_id == self.workspace_id,
                    DealStageChange.deal_id.in_(deals),
                ],
            )
        if kind is EntryKind.SEGMENT:
            return (
                SegmentMembershipChange,
                SegmentMembershipChange.occurred_at,
                [
                    SegmentMembershipChange.workspace_id == self.workspace_id,
                    SegmentMembershipChange.customer_id.in_(subjects),
                ],
            )
        if company is not None:
            about_subject = [
                DomainEvent.subject_type == "company",
                DomainEvent.subject_id == company,
            ]
        else:
            about_subject = [
                DomainEvent.subject_type == "customer",
                DomainEvent.subject_id.in_(subjects),
                # Segment entries come from the membership history, with the segment's name.
                DomainEvent.type.not_like("segment.%"),
            ]
        return (
            DomainEvent,
            DomainEvent.created_at,
            [DomainEvent.workspace_id == self.workspace_id, *about_subject],
        )

    async def _entries(self, refs: list[tuple[EntryKind, UUID]]) -> list[TimelineEntry]:
        """The rows behind `refs`, read with one query per kind, in the order of `refs`."""
        by_kind: dict[EntryKind, list[UUID]] = {}
        for kind, entry_id in refs:
            by_kind.setdefault(kind, []).append(entry_id)
        found: dict[UUID, TimelineEntry] = {}
        for kind, ids in by_kind.items():
            entity, _, conditions = self._shape(kind, _Scope(customers=[]))
            stmt = select(entity).where(conditions[0], entity.id.in_(ids))
            for row in (await self.session.execute(stmt)).scalars():
                found[row.id] = _entry(kind, row)
        await self._name_segments(
            [entry for entry in found.values() if entry.kind is EntryKind.SEGMENT]
        )
        return [found[entry_id] for _, entry_id in refs if entry_id in found]

    async def _name_segments(self, entries: list[TimelineEntry]) -> None:
        ids = {UUID(entry.data["segment_id"]) for entry in entries}
        if not ids:
            return
        stmt = select(Segment.id, Segment.name).where(
            Segment.workspace_id == self.workspace_id, Segment.id.in_(ids)
        )
        names = {row[0]: row[1] for row in (await self.session.execute(stmt)).all()}
        for entry in entries:
            entry.data["segment_name"] = names.get(UUID(entry.data["segment_id"]))

    @staticmethod
    def _decode(cursor: str | None) -> tuple[datetime, UUID] | None:
        if cursor is None:
            return None
        key = decode_cursor(cursor, CURSOR_KIND)
        if len(key) != 2 or None in key:
            raise ValidationFailed.at(CURSOR_LOC, "The cursor is malformed.")
        moment, last_id = key
        return cursor_value(moment, datetime, CURSOR_LOC), cursor_value(last_id, UUID, CURSOR_LOC)


def _entry(kind: EntryKind, row: Any) -> TimelineEntry:
    if kind is EntryKind.INTERACTION:
        data = {
            "interaction_type": row.type,
            "subject": row.subject,
            "channel": row.channel,
            "direction": row.direction,
            "status": row.status,
            "owner_id": str(row.owner_id) if row.owner_id else None,
        }
        return TimelineEntry(kind, row.id, row.type, row.occurred_at, data)
    if kind is EntryKind.ORDER:
        data = {
            "order_id": row.order_id,
            "total": row.total,
            "refunded_total": row.refunded_total,
            "currency": row.currency,
            "channel": row.channel,
            "status": row.status,
            "items": sum(line["quantity"] for line in row.lines),
        }
        return TimelineEntry(kind, row.id, _ORDER_PLACED, row.occurred_at, data)
    if kind is EntryKind.EVENT:
        payload = row.payload or {}
        data = {
            "event_id": row.event_id,
            "order": payload.get("order"),
            "properties": payload.get("properties", {}),
        }
        return TimelineEntry(kind, row.id, row.type, row.occurred_at, data)
    if kind is EntryKind.DEAL:
        data = {
            "deal_id": str(row.deal_id),
            "from_stage_id": str(row.from_stage_id) if row.from_stage_id else None,
            "to_stage_id": str(row.to_stage_id),
            "seconds_in_previous_stage": row.seconds_in_previous_stage,
        }
        return TimelineEntry(kind, row.id, "deal.stage_changed", row.changed_at, data)
    if kind is EntryKind.SEGMENT:
        data = {"segment_id": str(row.segment_id)}
        return TimelineEntry(kind, row.id, f"segment.{row.change}", row.occurred_at, data)
    return TimelineEntry(kind, row.id, row.type, row.created_at, {"changes": row.changes})
