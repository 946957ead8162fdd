"""Queries for segments and their members."""

from collections.abc import Collection, Iterable, Mapping
from datetime import date, datetime
from typing import Any, ClassVar, cast
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Table,
    Uuid,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy import update as sql_update
from sqlalchemy.orm import InstrumentedAttribute

from app.db.dialect import POSTGRESQL, insert_new
from app.db.repository import WorkspaceRepository
from app.db.types import UtcDateTime
from app.domain.customer.entities import Customer
from app.domain.segment.entities import (
    Segment,
    SegmentMember,
    SegmentMembershipChange,
    SegmentSize,
)

DYNAMIC = "dynamic"
STATIC = "static"
COMPUTING = "computing"
READY = "ready"
ENTERED = "entered"
EXITED = "exited"


class SegmentRepository(WorkspaceRepository[Segment]):
    entity = Segment
    noun = "segment"
    sortable: ClassVar[Mapping[str, InstrumentedAttribute[Any]]] = {
        "name": Segment.name,
        "updated_at": Segment.updated_at,
    }

    async def dynamic(self) -> list[Segment]:
        stmt = self.select().where(Segment.kind == DYNAMIC).order_by(Segment.id)
        return list((await self.session.execute(stmt)).scalars())

    async def name_taken(self, name: str, other_than: UUID | None = None) -> bool:
        stmt = select(Segment.id).where(
            Segment.workspace_id == self.workspace_id, Segment.name == name
        )
        if other_than is not None:
            stmt = stmt.where(Segment.id != other_than)
        return (await self.session.execute(stmt.limit(1))).first() is not None

    async def of_customer(self, customer_id: UUID) -> list[tuple[Segment, SegmentMember]]:
        """The segments the customer is in, with their membership, by name."""
        stmt = (
            select(Segment, SegmentMember)
            .join(
                SegmentMember,
                (SegmentMember.workspace_id == Segment.workspace_id)
                & (SegmentMember.segment_id == Segment.id),
            )
            .where(
                Segment.workspace_id == self.workspace_id,
                SegmentMember.customer_id == customer_id,
            )
            .order_by(Segment.name)
        )
        return [(row[0], row[1]) for row in (await self.session.execute(stmt)).all()]

    async def mark_computed(
        self, segment_id: UUID, version: int, member_count: int, at: datetime
    ) -> None:
        """Sets the recounted size and, unless the filter changed since `version`, marks the
        segment ready. Bookkeeping, not a change of the definition: the version stays."""
        table = cast(Table, Segment.__table__)
        mine = (table.c.workspace_id == self.workspace_id, table.c.id == segment_id)
        await self.session.execute(sql_update(table).where(*mine).values(member_count=member_count))
        await self.session.execute(
            sql_update(table)
            .where(*mine, table.c.version == version)
            .values(status=READY, computed_at=at)
        )

    async def adjust_counts(self, deltas: Mapping[UUID, int]) -> None:
        """Adds to member counts; not a change of the definition, so no new version."""
        table = cast(Table, Segment.__table__)
        for segment_id, delta in deltas.items():
            if delta:
                await self.session.execute(
                    sql_update(table)
                    .where(table.c.workspace_id == self.workspace_id, table.c.id == segment_id)
                    .values(member_count=table.c.member_count + delta)
                )

    async def record_size(self, segment_id: UUID, day: date, count: int) -> None:
        table = cast(Table, SegmentSize.__table__)
        values = {"workspace_id": self.workspace_id, "segment_id": segment_id, "day": day}
        await self.session.execute(
            delete(table).where(*(table.c[name] == value for name, value in values.items()))
        )
        await self.session.execute(insert(table).values(**values, member_count=count))

    async def sizes(self, segment_id: UUID, since: date) -> list[tuple[date, int]]:
        stmt = (
            select(SegmentSize.day, SegmentSize.member_count)
            .where(
                SegmentSize.workspace_id == self.workspace_id,
                SegmentSize.segment_id == segment_id,
                SegmentSize.day >= since,
            )
            .order_by(SegmentSize.day)
        )
        return [(row[0], row[1]) for row in (await self.session.execute(stmt)).all()]


class MemberRepository:
    """Segment members of one workspace. Inserting and deleting rows is what decides who
    entered or left: only the rows a statement really changed are reported, so two units that
    both see a change announce it once."""

    def __init__(self, session: Any, workspace_id: UUID, dialect: str) -> None:
        self.session = session
        self.workspace_id = workspace_id
        self.dialect = dialect

    def is_member(self, segment_id: UUID) -> ColumnElement[bool]:
        """The filtered customer is a member of the segment."""
        return exists(
            select(SegmentMember.customer_id).where(
                SegmentMember.workspace_id == Customer.workspace_id,
                SegmentMember.segment_id == segment_id,
                SegmentMember.customer_id == Customer.id,
            )
        )

    async def matching(
        self, conditions: Mapping[UUID, ColumnElement[bool]], customer_ids: Collection[UUID]
    ) -> set[tuple[UUID, UUID]]:
        """(segment id, customer id) for each of the customers meeting a segment's condition:
        one statement reading each customer once, with a column per segment."""
        segment_ids = list(conditions)
        stmt = select(
            Customer.id,
            *(conditions[segment_id].label(f"s{i}") for i, segment_id in enumerate(segment_ids)),
        ).where(Customer.workspace_id == self.workspace_id, Customer.id.in_(customer_ids))
        return {
            (segment_id, row[0])
            for row in (await self.session.execute(stmt)).all()
            for segment_id, met in zip(segment_ids, row[1:], strict=True)
            if met
        }

    async def current(
        self, segment_ids: Collection[UUID], customer_ids: Collection[UUID]
    ) -> set[tuple[UUID, UUID]]:
        stmt = select(SegmentMember.segment_id, SegmentMember.customer_id).where(
            SegmentMember.workspace_id == self.workspace_id,
            SegmentMember.segment_id.in_(segment_ids),
            SegmentMember.customer_id.in_(customer_ids),
        )
        return {(row[0], row[1]) for row in (await self.session.execute(stmt)).all()}

    async def bring_in_line(
        self, segment_id: UUID, condition: ColumnElement[bool], at: datetime
    ) -> tuple[list[UUID], list[UUID]]:
        """Makes the members exactly the customers meeting `condition`: (entered, left), the
        ids the statements really added and removed. On PostgreSQL one statement evaluates
        the condition once for both (data-modifying CTEs); elsewhere an INSERT of the matching
        and a DELETE of the unmatched (each member checked by its key)."""
        table = cast(Table, SegmentMember.__table__)
        matching = select(Customer.id).where(Customer.workspace_id == self.workspace_id, condition)
        if self.dialect != POSTGRESQL:
            inserted = self._insert_all(segment_id, matching.subquery().c.id, at)
            entered = list((await self.session.execute(inserted)).scalars())
            still = exists(matching.where(Customer.id == table.c.customer_id))
            deleted = self._delete_unless(segment_id, still)
            return entered, list((await self.session.execute(deleted)).scalars())
        matched = matching.cte("matched")
        entering = self._insert_all(segment_id, matched.c.id, at).cte("entering")
        leaving = self._delete_unless(
            segment_id, exists(select(matched.c.id).where(matched.c.id == table.c.customer_id))
        ).cte("leaving")
        stmt = union_all(
            select(literal(ENTERED), entering.c.customer_id),
            select(literal(EXITED), leaving.c.customer_id),
        )
        changed: dict[str, list[UUID]] = {ENTERED: [], EXITED: []}
        for change, customer_id in (await self.session.execute(stmt)).all():
            changed[change].append(customer_id)
        return changed[ENTERED], changed[EXITED]

    def _insert_all(self, segment_id: UUID, customer_id: ColumnElement[Any], at: datetime) -> Any:
        """Members for the ids `customer_id` selects, skipping those that are already."""
        table = cast(Table, SegmentMember.__table__)
        rows = select(
            literal(self.workspace_id, Uuid),
            literal(segment_id, Uuid),
            customer_id,
            literal(at, UtcDateTime),
        ).where(true())  # with a WHERE, SQLite does not read ON CONFLICT as a join's ON
        return (
            insert_new(table, self.dialect)
            .from_select(["workspace_id", "segment_id", "customer_id", "entered_at"], rows)
            .returning(table.c.customer_id)
        )

    def _delete_unless(self, segment_id: UUID, still: ColumnElement[bool]) -> Any:
        table = cast(Table, SegmentMember.__table__)
        return (
            delete(table)
            .where(
                table.c.workspace_id == self.workspace_id,
                table.c.segment_id == segment_id,
                ~still,
            )
            .returning(table.c.customer_id)
        )

    async def add(self, segment_id: UUID, customer_ids: Iterable[UUID], at: datetime) -> list[UUID]:
        rows = [
            {
                "workspace_id": self.workspace_id,
                "segment_id": segment_id,
                "customer_id": customer_id,
                "entered_at": at,
            }
            for customer_id in customer_ids
        ]
        if not rows:
            return []
        table = cast(Table, SegmentMember.__table__)
        stmt = insert_new(table, self.dialect).values(rows).returning(table.c.customer_id)
        return list((await self.session.execute(stmt)).scalars())

    async def remove(self, segment_id: UUID, customer_ids: Collection[UUID]) -> list[UUID]:
        if not customer_ids:
            return []
        table = cast(Table, SegmentMember.__table__)
        stmt = (
            delete(table)
            .where(
                table.c.workspace_id == self.workspace_id,
                table.c.segment_id == segment_id,
                table.c.customer_id.in_(customer_ids),
            )
            .returning(table.c.customer_id)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def record_changes(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            table = cast(Table, SegmentMembershipChange.__table__)
            await self.session.execute(
                insert(table), [{"workspace_id": self.workspace_id, **row} for row in rows]
            )

    async def release_customer(self, customer_id: UUID, to_id: UUID | None) -> None:
        """Before a customer goes: with `to_id` (a merge) their static memberships pass to the
        survivor (dynamic ones follow the survivor's data); the counts stay exact."""
        table = cast(Table, SegmentMember.__table__)
        segments = cast(Table, Segment.__table__)
        deltas: dict[UUID, int] = {}
        if to_id is not None:
            static = select(
                table.c.workspace_id, table.c.segment_id, literal(to_id, Uuid), table.c.entered_at
            ).where(
                table.c.workspace_id == self.workspace_id,
                table.c.customer_id == customer_id,
                exists(
                    select(segments.c.id).where(
                        segments.c.workspace_id == table.c.workspace_id,
                        segments.c.id == table.c.segment_id,
                        segments.c.kind == STATIC,
                    )
                ),
            )
            moved = insert_new(table, self.dialect).from_select(
                ["workspace_id", "segment_id", "customer_id", "entered_at"], static
            )
            for segment_id in (
                await self.session.execute(moved.returning(table.c.segment_id))
            ).scalars():
                deltas[segment_id] = 1
        left = delete(table).where(
            table.c.workspace_id == self.workspace_id, table.c.customer_id == customer_id
        )
        for segment_id in (
            await self.session.execute(left.returning(table.c.segment_id))
        ).scalars():
            deltas[segment_id] = deltas.get(segment_id, 0) - 1
        await SegmentRepository(self.session, self.workspace_id).adjust_counts(deltas)

    async def count(self, segment_id: UUID) -> int:
        stmt = select(func.count()).where(
            SegmentMember.workspace_id == self.workspace_id, SegmentMember.segment_id == segment_id
        )
        return int((await self.session.execute(stmt)).scalar_one())


def due_for_work(sweep_before: datetime, lease_before: datetime) -> ColumnElement[bool]:
    """Segments a worker should take now: those computing (and not taken recently by another
    worker) and those not swept since `sweep_before` (static ones only get their size kept)."""
    return or_(
        and_(
            Segment.status == COMPUTING,
            or_(Segment.swept_at.is_(None), Segment.swept_at < lease_before),
        ),
        or_(Segment.swept_at.is_(None), Segment.swept_at < sweep_before),
    )
