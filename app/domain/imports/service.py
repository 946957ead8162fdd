"""Creating import jobs from uploaded files, and applying them chunk by chunk."""

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import utcnow
from app.core.context import Actor, Context
from app.core.errors import AppError, ValidationFailed
from app.db.pagination import Page, PageRequest
from app.domain.company.schemas import CompanyCreate
from app.domain.company.service import CompanyService
from app.domain.customer.repository import FieldDefinitionRepository
from app.domain.customer.schemas import FieldObject
from app.domain.customer.service import BatchStatus, CustomerService
from app.domain.imports import schemas
from app.domain.imports.entities import ImportChunk, ImportJob, ImportRowError
from app.domain.imports.repository import RUNNING, ImportJobRepository, abandoned_jobs
from app.domain.imports.rows import ImportFormat, ImportObject, Row, RowMapper, check_mapping
from app.domain.outbox.service import EventRecorder

logger = logging.getLogger("kokyaku.imports")
HEARTBEAT_TIMEOUT = timedelta(minutes=2)
DETAIL_ERRORS = 100
_ITEM_PREFIX_LENGTH = 3  # ["body", "items", index] in batch problems


class ImportService:
    def __init__(self, session: AsyncSession, context: Context) -> None:
        self.session = session
        self.context = context
        self.jobs = ImportJobRepository(session, context.workspace_id)

    async def create(
        self,
        import_object: ImportObject,
        import_format: ImportFormat,
        mapping: Mapping[str, str] | None,
        filename: str | None,
        chunks: Iterator[list[Row]],
    ) -> ImportJob:
        """A pending job holding every parsed row; nothing is applied yet.

        `chunks` reads and parses a file: it runs in a thread, so the event loop stays free.
        """
        if mapping is not None:
            check_mapping(mapping, import_object)
        job = self.jobs.add(
            ImportJob(
                object=import_object,
                format=import_format,
                filename=filename,
                mapping=dict(mapping) if mapping is not None else None,
                api_key_id=self.context.actor.api_key_id,
                total_rows=0,
            )
        )
        await self.session.flush()
        number = 0
        while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
            self.jobs.add_chunk(job.id, number, chunk[0][0], [row for _, row in chunk])
            job.total_rows += len(chunk)
            number += 1
            await self.session.flush()
        if job.total_rows == 0:
            raise ValidationFailed.at(("body", "file"), "The file has no rows.")
        EventRecorder(self.session, self.context).record(
            "import.created",
            subject_type="import",
            subject_id=job.id,
            data=schemas.ImportJob.snapshot(job),
        )
        return job

    async def get(self, job_id: UUID) -> tuple[ImportJob, list[ImportRowError]]:
        job = await self.jobs.require(job_id)
        errors = await self.jobs.row_errors(job_id, PageRequest(limit=DETAIL_ERRORS, sort="row"))
        return job, list(errors.items)

    async def page(self, page: PageRequest) -> Page[ImportJob]:
        return await self.jobs.page(self.jobs.select(), page)

    async def errors(self, job_id: UUID, page: PageRequest) -> Page[ImportRowError]:
        await self.jobs.require(job_id)
        return await self.jobs.row_errors(job_id, page)


class ImportRunner:
    """Applies a job's chunks, each in its own transaction, so a restart resumes where it was."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def run(
        self,
        workspace_id: UUID,
        job_id: UUID,
        progress: Callable[[int], None] | None = None,
    ) -> bool:
        """Runs the job if no one else does; False when another process has it."""
        async with self.sessions() as session, session.begin():
            now = utcnow()
            jobs = ImportJobRepository(session, workspace_id)
            if not await jobs.claim(job_id, now, now - HEARTBEAT_TIMEOUT):
                return False
            job = await jobs.get(job_id)
            assert job is not None
            if job.started_at is None:
                job.started_at = now
        try:
            while await self._apply_next_chunk(workspace_id, job_id, progress):
                pass
        except Exception as error:
            logger.exception("import failed", extra={"import_id": str(job_id)})
            await self._finish(workspace_id, job_id, failure=type(error).__name__)
            raise
        await self._finish(workspace_id, job_id, failure=None)
        return True

    async def resume_abandoned(self) -> int:
        """Runs jobs that were left pending or whose process stopped; returns how many."""
        async with self.sessions() as session:
            found = await abandoned_jobs(session, utcnow() - HEARTBEAT_TIMEOUT)
        resumed = 0
        for workspace_id, job_id in found:
            resumed += await self.run(workspace_id, job_id)
        return resumed

    async def _apply_next_chunk(
        self, workspace_id: UUID, job_id: UUID, progress: Callable[[int], None] | None
    ) -> bool:
        async with self.sessions() as session, session.begin():
            jobs = ImportJobRepository(session, workspace_id)
            job = await jobs.get(job_id)
            chunk = await jobs.next_chunk(job_id)
            if job is None or chunk is None or job.status != RUNNING:
                return False
            actor = Actor(kind="api_key" if job.api_key_id else "cli", api_key_id=job.api_key_id)
            context = Context(workspace_id, actor)
            if job.object == ImportObject.CUSTOMERS:
                await self._customers(session, context, job, chunk, jobs)
            else:
                await self._companies(session, context, job, chunk, jobs)
            chunk.done = True
            job.processed_rows += len(chunk.rows)
            job.heartbeat_at = utcnow()
        if progress is not None:
            progress(len(chunk.rows))
        return True

    async def _mapper(self, session: AsyncSession, context: Context, job: ImportJob) -> RowMapper:
        target = (
            FieldObject.CUSTOMER if job.object == ImportObject.CUSTOMERS else FieldObject.COMPANY
        )
        definitions = await FieldDefinitionRepository(session, context.workspace_id).for_object(
            target
        )
        return RowMapper(job.mapping, definitions, textual=job.format == ImportFormat.CSV)

    async def _customers(
        self,
        session: AsyncSession,
        context: Context,
        job: ImportJob,
        chunk: ImportChunk,
        jobs: ImportJobRepository,
    ) -> None:
        mapper = await self._mapper(session, context, job)
        items = [mapper.item(row) for row in chunk.rows]
        results = await CustomerService(session, context).batch(items)
        for result in results:
            if result.status is BatchStatus.CREATED:
                job.created_count += 1
            elif result.status is BatchStatus.UPDATED:
                job.updated_count += 1
            elif result.error is not None:
                self._failed(job, jobs, chunk, result.index, result.error)

    async def _companies(
        self,
        session: AsyncSession,
        context: Context,
        job: ImportJob,
        chunk: ImportChunk,
        jobs: ImportJobRepository,
    ) -> None:
        mapper = await self._mapper(session, context, job)
        service = CompanyService(session, context)
        for index, row in enumerate(chunk.rows):
            try:
                async with session.begin_nested():
                    data = CompanyCreate.model_validate(mapper.item(row))
                    await service.create(data)
                job.created_count += 1
            except AppError as error:
                self._failed(job, jobs, chunk, index, error)
            except ValidationError as error:
                problem = ValidationFailed.from_errors(error.errors(), ("body",))
                self._failed(job, jobs, chunk, index, problem)

    @staticmethod
    def _failed(
        job: ImportJob, jobs: ImportJobRepository, chunk: ImportChunk, index: int, error: AppError
    ) -> None:
        job.failed_count += 1
        raw_errors: list[dict[str, Any]] = error.extensions.get("errors", [])
        errors = [{**item, "loc": _row_location(item["loc"])} for item in raw_errors] or [
            {"loc": [], "message": error.detail}
        ]
        row_number = chunk.first_row + index
        jobs.add_row_error(job.id, row_number, errors[0]["message"], errors)

    async def _finish(self, workspace_id: UUID, job_id: UUID, *, failure: str | None) -> None:
        async with self.sessions() as session, session.begin():
            job = await ImportJobRepository(session, workspace_id).get(job_id)
            if job is None:
                return
            job.status = "failed" if failure else "completed"
            job.error = f"The import stopped: {failure}." if failure else None
            job.finished_at = utcnow()
            actor = Actor(kind="api_key" if job.api_key_id else "cli", api_key_id=job.api_key_id)
            EventRecorder(session, Context(workspace_id, actor)).record(
                f"import.{job.status}",
                subject_type="import",
                subject_id=job.id,
                data=schemas.ImportJob.snapshot(job),
            )


def _row_location(loc: list[Any]) -> list[Any]:
    """A batch item's error location, as a location within the row."""
    if loc[:2] == ["body", "items"]:
        return loc[_ITEM_PREFIX_LENGTH:]
    return loc[1:] if loc[:1] == ["body"] else loc
