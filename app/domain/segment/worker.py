"""The segment worker: fills segments whose filter is new, sweeps those that drift now and then
(time passing moves customers out of "bought within 30 days"; see `drifts`), and keeps the
daily sizes of all. It sweeps each workspace's tiers and scores the same way: at once when their
rules changed, and every `sweep_every` after ("spent in the last 12 months" drops, points
decay).

A recomputation is one unit of work of two set-based statements (see `Membership.recompute`);
a worker that dies mid-way leaves the segment `computing`, and another takes it once the lease
has passed.
"""

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import cast
from uuid import UUID

from sqlalchemy import ColumnElement, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import utcnow
from app.core.context import Actor, Context
from app.domain.segment.entities import Segment, StandingSettings
from app.domain.segment.membership import Membership, drifts
from app.domain.segment.repository import (
    COMPUTING,
    STATIC,
    MemberRepository,
    SegmentRepository,
    due_for_work,
)
from app.domain.segment.standing import Standing
from app.domain.segment.standing_repository import due_settings

logger = logging.getLogger(__name__)

_WORK_WAITING = "kokyaku.segment_work_waiting"
LEASE = timedelta(minutes=5)
ROUND_SIZE = 10
IDLE_SECONDS = 30.0


def note_segment_work(session: AsyncSession) -> None:
    """This unit of work gave a segment a new filter: the worker should look after commit."""
    session.info[_WORK_WAITING] = True


def segment_work_waiting(session: AsyncSession) -> bool:
    return bool(session.info.pop(_WORK_WAITING, False))


class SegmentWorker:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, sweep_every: timedelta
    ) -> None:
        self.sessions = sessions
        self.sweep_every = sweep_every
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A segment's filter changed: look now rather than at the next round."""
        self._wake.set()

    async def run(self) -> None:
        """Rounds until cancelled; errors are logged and the loop goes on."""
        while True:
            self._wake.clear()
            try:
                while await self.run_once():
                    pass
            except Exception:
                logger.exception("segment round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=IDLE_SECONDS)

    async def run_once(self) -> int:
        """Brings the segments due now in line; how many it took."""
        now = utcnow()
        async with self.sessions() as session:
            stmt = (
                select(Segment.workspace_id, Segment.id, Segment.version, Segment.swept_at)
                .where(due_for_work(now - self.sweep_every, now - LEASE))
                .order_by(Segment.swept_at.is_not(None), Segment.swept_at)
                .limit(ROUND_SIZE)
            )
            due = (await session.execute(stmt)).all()
        taken = 0
        for workspace_id, segment_id, version, swept_at in due:
            table = cast(Table, Segment.__table__)
            if await self._claim(table, (table.c.id == segment_id,), workspace_id, swept_at, now):
                taken += 1
                await self._bring_in_line(workspace_id, segment_id, version)
        return taken + await self._sweep_standings(now)

    async def _sweep_standings(self, now: datetime) -> int:
        """Re-evaluates tiers and scores of every customer of the workspaces due now."""
        async with self.sessions() as session:
            stmt = (
                select(StandingSettings.workspace_id, StandingSettings.swept_at)
                .where(due_settings(now - self.sweep_every))
                .order_by(StandingSettings.swept_at.is_not(None), StandingSettings.swept_at)
                .limit(ROUND_SIZE)
            )
            due = (await session.execute(stmt)).all()
        taken = 0
        table = cast(Table, StandingSettings.__table__)
        for workspace_id, swept_at in due:
            if await self._claim(table, (), workspace_id, swept_at, now):
                taken += 1
                context = Context(workspace_id, Actor.system())
                after: UUID | None = None
                while True:
                    async with self.sessions() as session, session.begin():
                        after = await Standing(session, context).sweep_chunk(after)
                    if after is None:
                        break
        return taken

    async def _claim(
        self,
        table: Table,
        key: tuple[ColumnElement[bool], ...],
        workspace_id: UUID,
        swept_at: datetime | None,
        now: datetime,
    ) -> bool:
        """Only one worker gets a segment (or a workspace's standings sweep): the one whose
        update still sees the old time."""
        seen = table.c.swept_at.is_(None) if swept_at is None else table.c.swept_at == swept_at
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(table)
                .where(table.c.workspace_id == workspace_id, *key, seen)
                .values(swept_at=now)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def _bring_in_line(self, workspace_id: UUID, segment_id: UUID, version: int) -> None:
        async with self.sessions() as session, session.begin():
            segment = await SegmentRepository(session, workspace_id).get(segment_id)
            if segment is None or segment.version != version:
                return  # deleted, or a newer filter: its own round follows
            # A ready segment that cannot drift is in line already: only its size is kept.
            followed = segment.status != COMPUTING and not drifts(segment.filter)
            if segment.kind != STATIC and not followed:
                membership = Membership(session, Context(workspace_id, Actor.system()))
                await membership.recompute(segment, announce=segment.computed_at is not None)
        await self._finish(workspace_id, segment_id, version)

    async def _finish(self, workspace_id: UUID, segment_id: UUID, version: int) -> None:
        """Marks the segment ready (unless its filter changed meanwhile), recounts its members
        and keeps today's size."""
        async with self.sessions() as session, session.begin():
            segments = SegmentRepository(session, workspace_id)
            if await segments.get(segment_id) is None:
                return  # deleted meanwhile
            count = await MemberRepository(session, workspace_id, _dialect(session)).count(
                segment_id
            )
            now = utcnow()
            await segments.mark_computed(segment_id, version, count, now)
            await segments.record_size(segment_id, now.date(), count)


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"
