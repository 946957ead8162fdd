"""Queries for import jobs, their chunks and their failed rows."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.db.pagination import Page, PageRequest, apply_page, column_key, make_page
from app.db.repository import WorkspaceRepository
from app.domain.imports.entities import ImportChunk, ImportJob, ImportRowError

RUNNING = "running"
PENDING = "pending"


class ImportJobRepository(WorkspaceRepository[ImportJob]):
    entity = ImportJob
    noun = "import"
    sortable: ClassVar[Mapping[str, InstrumentedAttribute[Any]]] = {}

    def add_chunk(self, job_id: UUID, number: int, first_row: int, rows: list[Any]) -> None:
        self.session.add(
            ImportChunk(
                workspace_id=self.workspace_id,
                job_id=job_id,
                number=number,
                first_row=first_row,
                rows=rows,
            )
        )

    async def next_chunk(self, job_id: UUID) -> ImportChunk | None:
        stmt = (
            select(ImportChunk)
            .where(
                ImportChunk.workspace_id == self.workspace_id,
                ImportChunk.job_id == job_id,
                ImportChunk.done.is_(False),
            )
            .order_by(ImportChunk.number)
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    def add_row_error(self, job_id: UUID, row: int, message: str, errors: list[Any]) -> None:
        self.session.add(
            ImportRowError(
                workspace_id=self.workspace_id,
                job_id=job_id,
                row=row,
                message=message,
                errors=errors,
            )
        )

    async def row_errors(self, job_id: UUID, request: PageRequest) -> Page[ImportRowError]:
        sortable = {"row": column_key(ImportRowError.row)}
        stmt = select(ImportRowError).where(
            ImportRowError.workspace_id == self.workspace_id, ImportRowError.job_id == job_id
        )
        ordered = apply_page(stmt, request, sortable=sortable, tiebreak=ImportRowError.row)
        rows = (await self.session.execute(ordered)).scalars().all()
        return make_page(rows, request, sortable=sortable, tiebreak=ImportRowError.row)

    async def claim(self, job_id: UUID, now: datetime, stale_before: datetime) -> bool:
        """Takes the job for this process, unless another process is working on it."""
        result: Any = await self.session.execute(
            update(ImportJob)
            .where(
                ImportJob.workspace_id == self.workspace_id,
                ImportJob.id == job_id,
                or_(
                    ImportJob.status == PENDING,
                    (ImportJob.status == RUNNING) & (ImportJob.heartbeat_at < stale_before),
                ),
            )
            .values(status=RUNNING, heartbeat_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)


async def abandoned_jobs(
    session: AsyncSession, stale_before: datetime, limit: int = 20
) -> list[tuple[UUID, UUID]]:
    """(workspace id, job id) of jobs nobody works on: pending, or running without a heartbeat.

    Maintenance picks these up across workspaces, so this one query is not workspace-scoped.
    """
    stmt = (
        select(ImportJob.workspace_id, ImportJob.id)
        .where(
            or_(
                ImportJob.status == PENDING,
                (ImportJob.status == RUNNING) & (ImportJob.heartbeat_at < stale_before),
            ),
            or_(ImportJob.heartbeat_at.is_(None), ImportJob.heartbeat_at < stale_before),
        )
        .limit(limit)
    )
    return [(workspace_id, job_id) for workspace_id, job_id in (await session.execute(stmt)).all()]
