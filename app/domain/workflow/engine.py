"""The workflow engine: starts runs from committed events and schedules, and runs their steps.

Three rounds, each safe in any number of processes, driven by the dispatcher's loop (woken on
commit, polling otherwise):
- matching reads the outbox in its gap-free order under its own cursor, and for every enabled
  workflow triggered by an event whose subject meets the conditions (one SQL query on the
  subject) writes a run, in the same transaction that moves the cursor;
- schedules start a run for every customer matching a due schedule's conditions;
- steps: due runs are claimed (`FOR UPDATE SKIP LOCKED` on PostgreSQL) under a lease; each action
  runs in its own transaction together with the run's progress, so a step is done once or not
  at all. A failing action is retried with backoff, then fails the run visibly. `wait` stores the
  time to resume in the run, so a restart loses nothing.

Loops: events caused by a run carry the run and its depth. An event never starts the workflow
whose run caused it for the same subject, and nothing starts past MAX_DEPTH.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import utcnow
from app.core.context import Actor, Context
from app.core.errors import AppError, validation_message
from app.db.dialect import POSTGRESQL
from app.domain.customer.entities import Customer
from app.domain.customer.filters import in_segment
from app.domain.outbox.entities import DomainEvent
from app.domain.outbox.service import EventRecorder
from app.domain.webhook.dispatcher import claim_cursor, outbox_window
from app.domain.webhook.entities import DispatcherCursor
from app.domain.workflow import schemas
from app.domain.workflow.actions import CUSTOMER, ActionRunner, RunFacts
from app.domain.workflow.entities import (
    FAILED,
    PENDING,
    RUNNING,
    SCHEDULE,
    SUCCEEDED,
    WAITING,
    Workflow,
    WorkflowRun,
    WorkflowVersion,
)
from app.domain.workflow.schedules import next_occurrence
from app.domain.workflow.service import WorkflowService, new_run, subject_kind, subject_of
from app.domain.workflow.templates import TemplateError

logger = logging.getLogger("kokyaku.workflows")

RUNS = Counter("kokyaku_workflow_runs_total", "Workflow runs by how they ended", ["outcome"])
SKIPPED = Counter(
    "kokyaku_workflow_loops_skipped_total", "Runs not started by the loop guard", ["reason"]
)

CURSOR = "workflows"
MATCH_BATCH = 500
SCHEDULE_BATCH = 1000
MAX_DEPTH = 5
# Seconds before attempt 2, 3, 4 of a failing action; then the run fails.
RETRY_SCHEDULE = (5, 60, 600)
ACTIVE = (PENDING, RUNNING, WAITING)


@dataclass(frozen=True, slots=True)
class _Origin:
    workflow_id: UUID
    subject_id: UUID


class WorkflowEngine:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        retry_schedule: Sequence[float] = RETRY_SCHEDULE,
        lease_seconds: float = 60,
        max_depth: int = MAX_DEPTH,
        readers: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self.sessions = sessions
        # Looking for work with a reader first spares SQLite's single write lock when idle.
        self.readers = readers
        self.retry_schedule = tuple(retry_schedule)
        self.lease = timedelta(seconds=lease_seconds)
        self.max_depth = max_depth

    async def run_once(self) -> int:
        events, schedules, runs = await self._waiting_work()
        busy = await self.match_events() if events else 0
        busy += await self.start_schedules() if schedules else 0
        return busy + (await self.run_due() if runs else 0)

    async def _waiting_work(self) -> tuple[bool, bool, bool]:
        """Whether events, due schedules and due runs may be waiting (all, without readers)."""
        if self.readers is None:
            return True, True, True
        now = utcnow()
        async with self.readers() as session:
            cursor = (
                await session.execute(
                    select(DispatcherCursor.transaction_id, DispatcherCursor.position).where(
                        DispatcherCursor.name == CURSOR
                    )
                )
            ).first()
            events = (
                cursor is None
                or (
                    await session.execute(
                        select(DomainEvent.position)
                        .where(
                            tuple_(DomainEvent.transaction_id, DomainEvent.position)
                            > tuple_(cursor.transaction_id, cursor.position)
                        )
                        .limit(1)
                    )
                ).first()
                is not None
            )
            schedules = (
                await session.execute(
                    select(Workflow.id)
                    .where(
                        Workflow.enabled.is_(True),
                        Workflow.next_run_at.is_not(None),
                        Workflow.next_run_at <= now,
                    )
                    .limit(1)
                )
            ).first() is not None
            runs = (
                await session.execute(
                    select(WorkflowRun.id)
                    .where(WorkflowRun.status.in_(ACTIVE), WorkflowRun.next_attempt_at <= now)
                    .limit(1)
                )
            ).first() is not None
        return events, schedules, runs

    # Matching events

    async def match_events(self) -> int:
        async with self.sessions() as session, session.begin():
            cursor = await claim_cursor(session, CURSOR, from_start=_has_workflows)
            if cursor is None:
                return 0  # another process is matching
            keys = await outbox_window(session, cursor, MATCH_BATCH)
            if not keys:
                return 0
            last_transaction, last_position, _ = keys[-1]
            first_transaction, first_position, _ = keys[0]
            found = await session.execute(
                select(Workflow).where(
                    Workflow.enabled.is_(True), Workflow.trigger_type != SCHEDULE
                )
            )
            workflows: dict[tuple[UUID, str], list[Workflow]] = {}
            for workflow in found.scalars():
                workflows.setdefault((workflow.workspace_id, workflow.trigger_type), []).append(
                    workflow
                )
            if workflows:
                events = await session.execute(
                    select(DomainEvent)
                    .where(
                        DomainEvent.workspace_id.in_({key[0] for key in workflows}),
                        DomainEvent.type.in_({key[1] for key in workflows}),
                        tuple_(DomainEvent.transaction_id, DomainEvent.position)
                        >= tuple_(first_transaction, first_position),
                        tuple_(DomainEvent.transaction_id, DomainEvent.position)
                        <= tuple_(last_transaction, last_position),
                    )
                    .order_by(DomainEvent.transaction_id, DomainEvent.position)
                )
                triggering = list(events.scalars())
                origins = await self._origins(session, triggering)
                for event in triggering:
                    for workflow in workflows.get((event.workspace_id, event.type), []):
                        if event.created_at >= workflow.created_at:
                            await self._start(session, workflow, event, origins)
            cursor.transaction_id = last_transaction
            cursor.position = last_position
            return len(keys)

    async def _origins(
        self, session: AsyncSession, events: Sequence[DomainEvent]
    ) -> dict[UUID, _Origin]:
        """The runs whose actions caused these events: which workflow, on which subject."""
        wanted = {
            (event.workspace_id, event.workflow_run_id)
            for event in events
            if event.workflow_run_id is not None
        }
        if not wanted:
            return {}
        rows = await session.execute(
            select(WorkflowRun.id, WorkflowRun.workflow_id, WorkflowRun.subject_id).where(
                tuple_(WorkflowRun.workspace_id, WorkflowRun.id).in_(wanted)
            )
        )
        return {run_id: _Origin(workflow_id, subject) for run_id, workflow_id, subject in rows}

    async def _start(
        self,
        session: AsyncSession,
        workflow: Workflow,
        event: DomainEvent,
        origins: dict[UUID, _Origin],
    ) -> None:
        kind = subject_kind(workflow.trigger)
        subject_id = subject_of(event, kind)
        if subject_id is None:
            return
        depth = event.workflow_depth or 0
        if depth >= self.max_depth:
            SKIPPED.labels("depth").inc()
            logger.warning(
                "workflow chain too deep",
                extra={"workflow_id": str(workflow.id), "event_id": str(event.id)},
            )
            return
        origin = origins.get(event.workflow_run_id) if event.workflow_run_id else None
        if origin is not None and (origin.workflow_id, origin.subject_id) == (
            workflow.id,
            subject_id,
        ):
            SKIPPED.labels("own_event").inc()
            return
        service = WorkflowService(session, Context(workflow.workspace_id, Actor.system()))
        error: str | None = None
        try:
            if not await service.matches(kind, subject_id, workflow.conditions):
                return
        except AppError as failure:  # a field the conditions name was deleted since
            error = f"The conditions no longer apply: {failure.detail}"
        session.add(new_run(workflow, kind, subject_id, depth + 1, event=event, error=error))

    # Schedules

    async def start_schedules(self) -> int:
        """Starts a run per matching customer for each schedule that is due."""
        now = utcnow()
        async with self.sessions() as session, session.begin():
            stmt = (
                select(Workflow)
                .where(
                    Workflow.enabled.is_(True),
                    Workflow.next_run_at.is_not(None),
                    Workflow.next_run_at <= now,
                )
                .order_by(Workflow.next_run_at)
                .limit(10)
            )
            if _postgres(session):
                stmt = stmt.with_for_update(skip_locked=True)
            due = list((await session.execute(stmt)).scalars())
            for workflow in due:
                await self._start_schedule(session, workflow, now)
            return len(due)

    async def _start_schedule(
        self, session: AsyncSession, workflow: Workflow, now: datetime
    ) -> None:
        service = WorkflowService(session, Context(workflow.workspace_id, Actor.system()))
        condition: Any = None
        if workflow.conditions is not None:
            try:
                condition = await service.conditions_sql(
                    CUSTOMER, workflow.conditions, ("conditions",)
                )
            except AppError as failure:
                logger.warning(
                    "scheduled workflow conditions no longer apply",
                    extra={"workflow_id": str(workflow.id), "problem": failure.detail},
                )
        last: UUID | None = None
        while condition is not None or workflow.conditions is None:
            stmt = select(Customer.id).where(Customer.workspace_id == workflow.workspace_id)
            if condition is not None:
                stmt = stmt.where(condition)
            if segment_id := workflow.trigger["schedule"].get("segment_id"):
                stmt = stmt.where(in_segment(UUID(segment_id)))
            if last is not None:
                stmt = stmt.where(Customer.id > last)
            ids = list(
                (await session.execute(stmt.order_by(Customer.id).limit(SCHEDULE_BATCH))).scalars()
            )
            if not ids:
                break
            rows = [_run_row(new_run(workflow, CUSTOMER, customer_id, 1)) for customer_id in ids]
            await session.execute(insert(WorkflowRun), rows)
            last = ids[-1]
        # Moved by SQL: the next run is bookkeeping, not a new version of the definition.
        await session.execute(
            update(Workflow)
            .where(Workflow.workspace_id == workflow.workspace_id, Workflow.id == workflow.id)
            .values(
                next_run_at=next_occurrence(workflow.trigger["schedule"], now),
                updated_at=Workflow.updated_at,  # not a change of the definition
            )
            .execution_options(synchronize_session=False)
        )

    # Steps

    async def run_due(self, limit: int = 100) -> int:
        claimed = await self._claim(limit)
        for workspace_id, run_id in claimed:
            await self._advance(workspace_id, run_id)
        return len(claimed)

    async def _claim(self, limit: int) -> list[tuple[UUID, UUID]]:
        now = utcnow()
        async with self.sessions() as session, session.begin():
            stmt = (
                select(WorkflowRun)
                .where(WorkflowRun.status.in_(ACTIVE), WorkflowRun.next_attempt_at <= now)
                .order_by(WorkflowRun.next_attempt_at)
                .limit(limit)
            )
            if _postgres(session):
                stmt = stmt.with_for_update(skip_locked=True)
            runs = list((await session.execute(stmt)).scalars())
            for run in runs:
                run.status = RUNNING
                run.next_attempt_at = now + self.lease
            return [(run.workspace_id, run.id) for run in runs]

    async def _advance(self, workspace_id: UUID, run_id: UUID) -> None:
        """Runs the run's steps, each in its own transaction, until it ends or waits."""
        while True:
            failure: str | None = None
            async with self.sessions() as session:
                try:
                    async with session.begin():
                        more = await self._step(session, workspace_id, run_id)
                    if not more:
                        return
                    continue
                except (AppError, TemplateError) as error:
                    failure = error.detail if isinstance(error, AppError) else str(error)
                except ValidationError as error:  # a value the target no longer accepts
                    failure = validation_message(error.errors()[0])
                except Exception as error:
                    logger.exception("workflow action failed", extra={"run_id": str(run_id)})
                    failure = f"{type(error).__name__}: {error}"[:500]
            await self._record_failure(workspace_id, run_id, failure)
            return

    async def _step(self, session: AsyncSession, workspace_id: UUID, run_id: UUID) -> bool:
        """Does the run's next action; True when another should follow at once."""
        run = await session.get(WorkflowRun, (workspace_id, run_id))
        if run is None or run.status != RUNNING:
            return False
        definition = await session.get(
            WorkflowVersion, (workspace_id, run.workflow_id, run.workflow_version)
        )
        now = utcnow()
        if definition is None or run.step >= len(definition.actions):
            self._finish(run, SUCCEEDED, now)
            return False
        action = definition.actions[run.step]
        if action["type"] == "wait":
            resume_at = now + schemas.parse_duration(action["duration"])
            self._outcome(run, action, SUCCEEDED, {"resume_at": _iso(resume_at)}, None, now)
            run.step += 1
            run.attempts = 0
            run.status = WAITING
            run.next_attempt_at = resume_at
            return False
        context = Context(workspace_id, Actor.workflow(run.id, run.depth))
        facts = RunFacts(
            run.workflow_id, definition.name, run.id, run.subject_type, run.subject_id, run.event
        )
        result = await ActionRunner(session, context).perform(action, facts)
        self._outcome(run, action, SUCCEEDED, result, None, now)
        run.step += 1
        run.attempts = 0
        if run.step >= len(definition.actions):
            self._finish(run, SUCCEEDED, now)
            return False
        run.next_attempt_at = now + self.lease
        return True

    async def _record_failure(self, workspace_id: UUID, run_id: UUID, error: str) -> None:
        async with self.sessions() as session, session.begin():
            run = await session.get(WorkflowRun, (workspace_id, run_id))
            if run is None or run.status != RUNNING:
                return
            definition = await session.get(
                WorkflowVersion, (workspace_id, run.workflow_id, run.workflow_version)
            )
            action = definition.actions[run.step] if definition else {"type": "unknown"}
            now = utcnow()
            run.attempts += 1
            if run.attempts <= len(self.retry_schedule):
                self._outcome(run, action, "retrying", None, error, now)
                run.status = PENDING
                run.next_attempt_at = now + timedelta(seconds=self.retry_schedule[run.attempts - 1])
                return
            self._outcome(run, action, FAILED, None, error, now)
            run.error = (
                f"Action {run.step} ({action['type']}) failed after {run.attempts} attempts: "
                f"{error}"
            )[:1000]
            self._finish(run, FAILED, now)
            EventRecorder(session, Context(workspace_id, Actor.system())).record(
                "workflow.run_failed",
                subject_type="workflow",
                subject_id=run.workflow_id,
                data=schemas.WorkflowRun.snapshot(run),
            )

    @staticmethod
    def _outcome(
        run: WorkflowRun,
        action: dict[str, Any],
        status: str,
        result: dict[str, Any] | None,
        error: str | None,
        now: datetime,
    ) -> None:
        """Records the step's outcome, replacing an earlier attempt's."""
        outcome = {
            "index": run.step,
            "type": action["type"],
            "status": status,
            "attempts": run.attempts if status != SUCCEEDED else run.attempts + 1,
            "result": result,
            "error": error,
            "finished_at": _iso(now),
        }
        steps = [step for step in run.steps if step["index"] != run.step]
        run.steps = [*steps, outcome]

    @staticmethod
    def _finish(run: WorkflowRun, status: str, now: datetime) -> None:
        run.status = status
        run.next_attempt_at = None
        run.finished_at = now
        RUNS.labels(status).inc()


async def _has_workflows(session: AsyncSession) -> bool:
    found = select(Workflow.id).where(Workflow.trigger_type != SCHEDULE).limit(1)
    return (await session.execute(found)).first() is not None


def _run_row(run: WorkflowRun) -> dict[str, Any]:
    columns = WorkflowRun.__table__.columns
    row = {column.key: getattr(run, column.key) for column in columns}
    row["created_at"] = row["updated_at"] = utcnow()
    return row


def _postgres(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == POSTGRESQL


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
