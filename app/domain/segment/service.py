"""Rules for segments: definitions, previews, static members, and what a customer belongs to."""

from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.context import Context
from app.core.errors import Conflict, ValidationFailed
from app.core.etags import ensure_version
from app.db.pagination import Page, PageRequest
from app.domain.customer.entities import Customer
from app.domain.customer.repository import CustomerRepository
from app.domain.customer.service import CustomerService
from app.domain.outbox.service import EventRecorder, changes_between
from app.domain.segment import schemas
from app.domain.segment.entities import Segment, SegmentMember
from app.domain.segment.membership import SEGMENTS, Changes, Membership, depends_on
from app.domain.segment.repository import COMPUTING, READY, STATIC, SegmentRepository
from app.domain.segment.worker import note_segment_work

Loc = tuple[str | int, ...]


class SegmentService:
    def __init__(self, session: AsyncSession, context: Context) -> None:
        self.session = session
        self.context = context
        self.segments = SegmentRepository(session, context.workspace_id)
        self.customers = CustomerService(session, context)
        self.customer_rows = CustomerRepository(session, context.workspace_id)
        self.membership = Membership(session, context)
        self.events = EventRecorder(session, context)

    async def create(self, data: schemas.SegmentCreate) -> Segment:
        await self._ensure_name_free(data.name, None)
        dynamic = data.kind is schemas.SegmentKind.DYNAMIC
        if dynamic and data.filter is None:
            raise ValidationFailed.at(("body", "filter"), "A dynamic segment needs a filter.")
        if not dynamic and data.filter is not None:
            raise ValidationFailed.at(
                ("body", "filter"), "A static segment has no filter; add members instead."
            )
        reads = await self._check_filter(data.filter, ("body", "filter"), None) if dynamic else []
        segment = Segment(
            name=data.name,
            description=data.description,
            kind=data.kind.value,
            filter=data.filter,
            depends_on=reads,
            # A new dynamic segment fills in the background; a static one starts empty.
            status=COMPUTING if dynamic else READY,
            member_count=0,
        )
        self.segments.add(segment)
        await self.session.flush()
        if dynamic:
            note_segment_work(self.session)
        self._record("segment.created", segment)
        return segment

    async def get(self, segment_id: UUID) -> Segment:
        return await self.segments.require(segment_id)

    async def page(self, page: PageRequest) -> Page[Segment]:
        return await self.segments.page(self.segments.select(), page)

    async def update(
        self,
        segment_id: UUID,
        data: schemas.SegmentUpdate,
        *,
        expected_versions: frozenset[int] | None,
    ) -> Segment:
        segment = await self.segments.require(segment_id)
        ensure_version(segment.version, expected_versions)
        before = schemas.Segment.snapshot(segment)
        changes = data.model_dump(exclude_unset=True)
        if "name" in changes and changes["name"] != segment.name:
            await self._ensure_name_free(changes["name"], segment.id)
            segment.name = changes["name"]
        if "description" in changes:
            segment.description = changes["description"]
        if "filter" in changes:
            if segment.kind == STATIC:
                raise ValidationFailed.at(
                    ("body", "filter"), "A static segment has no filter; add members instead."
                )
            if changes["filter"] is None:
                raise ValidationFailed.at(("body", "filter"), "A dynamic segment needs a filter.")
            if changes["filter"] != segment.filter:
                segment.depends_on = await self._check_filter(
                    changes["filter"], ("body", "filter"), segment.id
                )
                segment.filter = changes["filter"]
                segment.status = COMPUTING
                segment.swept_at = None  # the worker takes it at once
                note_segment_work(self.session)
        await self.session.flush()
        diff = changes_between(before, schemas.Segment.snapshot(segment))
        if diff:
            self._record("segment.updated", segment, diff)
        return segment

    async def delete(self, segment_id: UUID, *, expected_versions: frozenset[int] | None) -> None:
        segment = await self.segments.require(segment_id)
        ensure_version(segment.version, expected_versions)
        data = schemas.Segment.snapshot(segment)
        await self.segments.delete(segment)  # members, history and sizes go with it
        await self.session.flush()
        self.events.record(
            "segment.deleted", subject_type="segment", subject_id=segment_id, data=data
        )

    async def preview(self, raw_filter: Any, sample_size: int) -> tuple[int, list[Customer]]:
        condition = await self.customers.compile_filter(raw_filter, ("body", "filter"))
        count = await self.session.scalar(
            select(func.count())
            .select_from(Customer)
            .where(Customer.workspace_id == self.context.workspace_id, condition)
        )
        sample: list[Customer] = []
        if sample_size:
            stmt = (
                self.customer_rows.select()
                .where(condition)
                .order_by(Customer.created_at.desc(), Customer.id.desc())
                .limit(sample_size)
            )
            sample = list((await self.session.execute(stmt)).scalars())
        return int(count or 0), sample

    async def members(self, segment_id: UUID, page: PageRequest) -> Page[Customer]:
        await self.segments.require(segment_id)
        stmt = self.customer_rows.select().where(self.membership.members.is_member(segment_id))
        return await self.customer_rows.page(stmt, page)

    async def change_members(
        self, segment_id: UUID, customer_ids: list[UUID], *, adding: bool
    ) -> tuple[int, int]:
        """Adds or removes members of a static segment; (changed, unchanged)."""
        segment = await self.segments.require(segment_id)
        if segment.kind != STATIC:
            raise Conflict(
                "A dynamic segment's members follow its filter; change the filter instead."
            )
        unique = list(dict.fromkeys(customer_ids))
        customers = await self.customer_rows.get_many(unique, lock=True)
        unknown = [
            (("body", "customer_ids", index), "No customer with this id.")
            for index, customer_id in enumerate(customer_ids)
            if customer_id not in customers
        ]
        if unknown:
            raise ValidationFailed(f"{len(unknown)} customer ids are not known.", unknown)
        change = {segment.id: unique}
        entered, left = await self.membership.apply(
            {segment.id: segment},
            Changes(entering=change if adding else {}, leaving={} if adding else change),
            customers,
        )
        changed = entered if adding else left
        return changed, len(unique) - changed

    async def of_customer(self, customer_id: UUID) -> list[tuple[Segment, SegmentMember]]:
        await self.customers.get(customer_id)
        return await self.segments.of_customer(customer_id)

    async def sizes(self, segment_id: UUID, since: date) -> list[tuple[date, int]]:
        await self.segments.require(segment_id)
        return await self.segments.sizes(segment_id, since)

    async def _check_filter(self, raw_filter: Any, loc: Loc, segment_id: UUID | None) -> list[str]:
        """What a valid filter reads; 422 naming the path of what is wrong with it."""
        await self.customers.compile_filter(raw_filter, loc)
        reads = depends_on(raw_filter)
        if segment_id and SEGMENTS in reads and _names_segment(raw_filter, str(segment_id)):
            raise ValidationFailed.at(loc, "A segment's filter cannot refer to the segment itself.")
        return reads

    async def _ensure_name_free(self, name: str, segment_id: UUID | None) -> None:
        if await self.segments.name_taken(name, segment_id):
            raise Conflict(f"A segment named '{name}' exists already.")

    def _record(
        self, event_type: str, segment: Segment, changes: dict[str, Any] | None = None
    ) -> None:
        self.events.record(
            event_type,
            subject_type="segment",
            subject_id=segment.id,
            data=schemas.Segment.snapshot(segment),
            changes=changes,
        )


def _names_segment(raw_filter: Any, segment_id: str) -> bool:
    if isinstance(raw_filter, dict):
        if raw_filter.get("field") == SEGMENTS:
            value = raw_filter.get("value")
            values = value if isinstance(value, list) else [value]
            return segment_id in [str(item) for item in values]
        return any(_names_segment(child, segment_id) for child in raw_filter.values())
    if isinstance(raw_filter, list):
        return any(_names_segment(child, segment_id) for child in raw_filter)
    return False
