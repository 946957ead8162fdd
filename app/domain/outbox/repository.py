"""Reading the outbox: the event feed in a gap-free order, and the audit log."""

from collections.abc import Sequence
from typing import Any, cast
from uuid import UUID

from sqlalchemy import BigInteger, ColumnElement, Table, literal_column, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.ids import uuid7
from app.db.bulk import insert_rows
from app.db.pagination import Page, PageRequest, apply_page, column_key, make_page
from app.domain.outbox.entities import DomainEvent

# The oldest transaction that may still add events to this database's outbox: the oldest one
# running in the statement's snapshot, leaving out those seen running in another database of the
# server (they can never write here, and a long one, a bulk load or a restore elsewhere, would
# otherwise hold every feed and webhook back for as long as it runs); the snapshot's end when
# none is left. A transaction that ended before pg_stat_activity was read stays in: that errs
# towards waiting one more round, never towards skipping an event. Transaction ids carry an
# epoch above their 32 bits, which `backend_xid` lacks.
_OUTBOX_HORIZON = """(
    SELECT coalesce(min(running.txid), min(txid_snapshot_xmax(snapshot.taken)))
    FROM (SELECT txid_current_snapshot() AS taken) AS snapshot
    LEFT JOIN LATERAL txid_snapshot_xip(snapshot.taken) AS running(txid)
        ON running.txid % 4294967296 NOT IN (
            SELECT backend_xid::text::bigint FROM pg_stat_activity
            WHERE backend_xid IS NOT NULL
                AND datid <> (SELECT oid FROM pg_database WHERE datname = current_database())
        )
)"""


def outbox_horizon() -> ColumnElement[int]:
    """PostgreSQL only: events of transactions below this id are all committed or rolled back,
    so a reader may hand them out in (transaction, position) order without a late one landing
    behind its cursor."""
    return literal_column(_OUTBOX_HORIZON, BigInteger)


class DomainEventRepository:
    def __init__(self, session: AsyncSession, workspace_id: UUID) -> None:
        self.session = session
        self.workspace_id = workspace_id

    def add(self, event: DomainEvent) -> None:
        event.workspace_id = self.workspace_id
        self.session.add(event)

    async def insert_many(self, rows: list[dict[str, Any]]) -> None:
        """Inserts events given as column values, without building an object per event."""
        values = [{"id": uuid7(), "workspace_id": self.workspace_id, **row} for row in rows]
        await insert_rows(self.session, cast(Table, DomainEvent.__table__), values)

    async def feed_after(self, transaction_id: int, position: int, limit: int) -> list[DomainEvent]:
        """Events after the given key, in (transaction, position) order, at most `limit`.

        On PostgreSQL only events of transactions older than every transaction still running
        that could write here are handed out: a transaction that began earlier but commits later
        would otherwise land behind a poller's cursor and be skipped forever. SQLite runs one
        writer at a time, so its positions already follow commit order.
        """
        stmt = (
            select(DomainEvent)
            .where(DomainEvent.workspace_id == self.workspace_id)
            .where(
                tuple_(DomainEvent.transaction_id, DomainEvent.position)
                > tuple_(transaction_id, position)
            )
            .order_by(DomainEvent.transaction_id, DomainEvent.position)
            .limit(limit)
        )
        if self.session.bind is not None and self.session.bind.dialect.name == "postgresql":
            stmt = stmt.where(DomainEvent.transaction_id < outbox_horizon())
        return list((await self.session.execute(stmt)).scalars().all())

    async def audit_page(
        self,
        request: PageRequest,
        *,
        subject_type: str | None,
        subject_id: UUID | None,
        event_type: str | None,
        api_key_id: UUID | None,
    ) -> Page[DomainEvent]:
        stmt = select(DomainEvent).where(DomainEvent.workspace_id == self.workspace_id)
        if subject_type is not None:
            stmt = stmt.where(DomainEvent.subject_type == subject_type)
        if subject_id is not None:
            stmt = stmt.where(DomainEvent.subject_id == subject_id)
        if event_type is not None:
            stmt = stmt.where(DomainEvent.type == event_type)
        if api_key_id is not None:
            stmt = stmt.where(DomainEvent.actor_api_key_id == api_key_id)
        # Positions grow with time, so "created_at" order is served by the primary key.
        sortable = {"created_at": column_key(DomainEvent.position)}
        ordered = apply_page(stmt, request, sortable=sortable, tiebreak=DomainEvent.position)
        rows: Sequence[DomainEvent] = (await self.session.execute(ordered)).scalars().all()
        return make_page(rows, request, sortable=sortable, tiebreak=DomainEvent.position)

    async def get(self, event_id: UUID) -> DomainEvent | None:
        stmt = select(DomainEvent).where(
            DomainEvent.workspace_id == self.workspace_id, DomainEvent.id == event_id
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()
