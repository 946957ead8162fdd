"""Rules for workflows: definitions checked within the workspace, versions, runs, dry-runs."""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.context import Context
from app.core.errors import AppError, NotFound, ValidationFailed
from app.core.etags import ensure_version
from app.core.ids import uuid7
from app.db.pagination import Page, PageRequest
from app.domain.access.repository import UserRepository, WorkspaceDirectory
from app.domain.customer import schemas as customer_schemas
from app.domain.customer.attributes import apply_attributes
from app.domain.customer.entities import Customer, FieldDefinition
from app.domain.customer.repository import FieldDefinitionRepository
from app.domain.customer.service import CustomerService
from app.domain.outbox.entities import DomainEvent
from app.domain.outbox.repository import DomainEventRepository
from app.domain.outbox.service import EventRecorder, changes_between, envelope
from app.domain.pipeline import schemas as pipeline_schemas
from app.domain.pipeline.entities import Deal
from app.domain.pipeline.filters import deal_fields
from app.domain.pipeline.repository import DealRepository, StageRepository
from app.domain.segment.repository import STATIC, SegmentRepository
from app.domain.webhook.service import EndpointRepository
from app.domain.workflow import schemas
from app.domain.workflow.actions import CUSTOMER, DEAL, ActionRunner, RunFacts
from app.domain.workflow.entities import (
    FAILED,
    PENDING,
    SCHEDULE,
    Workflow,
    WorkflowRun,
    WorkflowVersion,
)
from app.domain.workflow.repository import WorkflowRepository, WorkflowRunRepository
from app.domain.workflow.schedules import next_occurrence
from app.domain.workflow.templates import ROOTS, TemplateError, check_paths
from app.filters.compiler import compile_filter

Loc = tuple[str | int, ...]
BODY: Loc = ("body",)
_EVENT_KEYS = frozenset({"id", "type", "created_at", "workspace_id", "data", "changes"})
_OPEN_MAPS = frozenset({"external_ids", "consents", "address"})


def subject_kind(trigger: dict[str, Any]) -> str:
    """What the conditions and actions apply to: the deal for deal events, else the customer."""
    event_type = trigger.get("event_type") or ""
    return DEAL if event_type.startswith("deal.") else CUSTOMER


def subject_of(event: DomainEvent, kind: str) -> UUID | None:
    """The event's deal or customer, as the workflow's subject; None when it has none."""
    if kind == DEAL:
        return event.subject_id if event.subject_type == DEAL else None
    if event.subject_type == CUSTOMER:
        return event.subject_id
    customer_id = (event.data or {}).get("customer_id")
    return UUID(customer_id) if isinstance(customer_id, str) else None


def new_run(
    workflow: Workflow,
    kind: str,
    subject_id: UUID,
    depth: int,
    *,
    event: DomainEvent | None = None,
    error: str | None = None,
) -> WorkflowRun:
    """A run of the workflow's current version, due now (or failed already with `error`)."""
    now = utcnow()
    return WorkflowRun(
        workspace_id=workflow.workspace_id,
        id=uuid7(),
        workflow_id=workflow.id,
        workflow_version=workflow.version,
        status=FAILED if error else PENDING,
        subject_type=kind,
        subject_id=subject_id,
        event_id=event.id if event else None,
        event=envelope(event) if event else None,
        depth=depth,
        step=0,
        attempts=0,
        next_attempt_at=None if error else now,
        steps=[],
        error=error,
        finished_at=now if error else None,
    )


class WorkflowService:
    def __init__(self, session: AsyncSession, context: Context) -> None:
        self.session = session
        self.context = context
        self.workflows = WorkflowRepository(session, context.workspace_id)
        self.runs = WorkflowRunRepository(session, context.workspace_id)
        self.definitions = FieldDefinitionRepository(session, context.workspace_id)
        self.events = EventRecorder(session, context)

    # Definitions

    async def create(self, data: schemas.WorkflowCreate) -> Workflow:
        definition = data.model_dump(mode="json", include={"trigger", "conditions", "actions"})
        definition["trigger"] = _compact(definition["trigger"])
        await self._check(definition, BODY)
        workflow = self.workflows.add(
            Workflow(
                name=data.name,
                description=data.description,
                enabled=True if data.enabled is None else data.enabled,
                **_stored(definition),
            )
        )
        _schedule(workflow)
        await self.session.flush()
        self.workflows.add_version(workflow)
        self._record("workflow.created", workflow)
        return workflow

    async def get(self, workflow_id: UUID) -> Workflow:
        return await self.workflows.require(workflow_id)

    async def page(self, request: PageRequest, *, enabled: bool | None) -> Page[Workflow]:
        stmt = self.workflows.select()
        if enabled is not None:
            stmt = stmt.where(Workflow.enabled.is_(enabled))
        return await self.workflows.page(stmt, request)

    async def update(
        self,
        workflow_id: UUID,
        data: schemas.WorkflowUpdate,
        *,
        expected_versions: frozenset[int] | None,
    ) -> Workflow:
        workflow = await self.get(workflow_id)
        ensure_version(workflow.version, expected_versions)
        changes = data.model_dump(mode="json", exclude_unset=True)
        definition = {
            "trigger": _compact(changes.get("trigger", workflow.trigger)),
            "conditions": changes.get("conditions", workflow.conditions),
            "actions": changes.get("actions", workflow.actions),
        }
        await self._check(definition, BODY)
        before = schemas.Workflow.snapshot(workflow)
        for name in ("name", "description", "enabled"):
            if name in changes:
                setattr(workflow, name, changes[name])
        for name, value in _stored(definition).items():
            setattr(workflow, name, value)
        _schedule(workflow)
        await self.session.flush()
        after = schemas.Workflow.snapshot(workflow)
        if diff := changes_between(before, after):
            self.workflows.add_version(workflow)
            self._record("workflow.updated", workflow, diff)
        return workflow

    async def delete(self, workflow_id: UUID, *, expected_versions: frozenset[int] | None) -> None:
        workflow = await self.get(workflow_id)
        ensure_version(workflow.version, expected_versions)
        self._record("workflow.deleted", workflow)
        await self.workflows.delete(workflow)
        await self.session.flush()

    async def versions(self, workflow_id: UUID) -> list[WorkflowVersion]:
        await self.get(workflow_id)
        return await self.workflows.versions(workflow_id)

    # Runs

    async def runs_page(
        self, workflow_id: UUID, request: PageRequest, *, status: str | None
    ) -> Page[WorkflowRun]:
        await self.get(workflow_id)
        stmt: Select[WorkflowRun] = self.runs.select().where(WorkflowRun.workflow_id == workflow_id)
        if status is not None:
            stmt = stmt.where(WorkflowRun.status == status)
        return await self.runs.page(stmt, request)

    async def start(self, workflow_id: UUID, subject_id: UUID) -> WorkflowRun:
        """A run for this subject now, whatever the trigger and conditions (a manual start)."""
        workflow = await self.get(workflow_id)
        kind = subject_kind(workflow.trigger)
        await self._require_subject(kind, subject_id)
        run = new_run(workflow, kind, subject_id, 1)
        self.runs.add(run)
        await self.session.flush()
        return run

    async def run(self, workflow_id: UUID, run_id: UUID) -> WorkflowRun:
        run = await self.runs.require(run_id)
        if run.workflow_id != workflow_id:
            raise NotFound("workflow run", run_id)
        return run

    async def dry_run(self, workflow_id: UUID, request: schemas.DryRunRequest) -> schemas.DryRun:
        """What a run would do now, for a recorded event or a subject; writes nothing."""
        workflow = await self.get(workflow_id)
        kind = subject_kind(workflow.trigger)
        event: dict[str, Any] | None = None
        triggered = False
        subject_id: UUID | None
        if request.event_id is not None:
            found = await DomainEventRepository(self.session, self.context.workspace_id).get(
                request.event_id
            )
            if found is None:
                raise NotFound("event", request.event_id)
            event = envelope(found)
            triggered = found.type == workflow.trigger_type
            subject_id = subject_of(found, kind)
        else:
            assert request.subject_id is not None
            subject_id = request.subject_id
            await self._require_subject(kind, subject_id)
        matched = subject_id is not None and await self.matches(
            kind, subject_id, workflow.conditions
        )
        planned: list[schemas.PlannedAction] = []
        if subject_id is not None:
            facts = RunFacts(workflow.id, workflow.name, None, kind, subject_id, event)
            runner = ActionRunner(self.session, self.context)
            now = utcnow()
            for index, action in enumerate(workflow.actions):
                try:
                    parameters = await runner.plan(action, facts, now)
                    error = None
                except (AppError, TemplateError) as failure:
                    parameters = {}
                    error = failure.detail if isinstance(failure, AppError) else str(failure)
                if action["type"] == "wait" and error is None:
                    now += schemas.parse_duration(action["duration"])
                planned.append(
                    schemas.PlannedAction(
                        index=index, type=action["type"], parameters=parameters, error=error
                    )
                )
        return schemas.DryRun(
            matched=matched,
            triggered=triggered,
            subject_type=kind,
            subject_id=subject_id,
            actions=planned,
        )

    async def _require_subject(self, kind: str, subject_id: UUID) -> None:
        if kind == DEAL:
            await DealRepository(self.session, self.context.workspace_id).require(subject_id)
        else:
            await CustomerService(self.session, self.context).get(subject_id)

    # Conditions

    async def conditions_sql(
        self, kind: str, conditions: dict[str, Any], path: Sequence[str | int]
    ) -> ColumnElement[bool]:
        if kind == DEAL:
            definitions = await self.definitions.for_object(customer_schemas.FieldObject.DEAL)
            registry = deal_fields(self._dialect(), list(definitions.values()))
            return compile_filter(conditions, registry, now=utcnow(), path=path)
        return await CustomerService(self.session, self.context).compile_filter(
            conditions, tuple(path)
        )

    async def matches(self, kind: str, subject_id: UUID, conditions: dict[str, Any] | None) -> bool:
        """Whether the subject exists and meets the conditions: one query on the subject."""
        entity: Any = Deal if kind == DEAL else Customer
        stmt = select(entity.id).where(
            entity.workspace_id == self.context.workspace_id, entity.id == subject_id
        )
        if conditions is not None:
            stmt = stmt.where(await self.conditions_sql(kind, conditions, ("conditions",)))
        return (await self.session.execute(stmt)).first() is not None

    # Checks

    async def _check(self, definition: dict[str, Any], loc: Loc) -> None:
        """Every reference within this workspace, every field and path known; else 422."""
        trigger = definition["trigger"]
        kind = subject_kind(trigger)
        if definition["conditions"] is not None:
            await self.conditions_sql(kind, definition["conditions"], (*loc, "conditions"))
        workspace_id = self.context.workspace_id
        users = UserRepository(self.session, workspace_id)
        stages = StageRepository(self.session, workspace_id)
        endpoints = EndpointRepository(self.session, workspace_id)
        field_object = (
            customer_schemas.FieldObject.DEAL
            if kind == DEAL
            else customer_schemas.FieldObject.CUSTOMER
        )
        fields = await self.definitions.for_object(field_object)
        customer_fields = (
            fields
            if kind == CUSTOMER
            else await self.definitions.for_object(customer_schemas.FieldObject.CUSTOMER)
        )
        problems: list[tuple[Loc, str]] = []
        segments = SegmentRepository(self.session, workspace_id)
        schedule = trigger.get("schedule") or {}
        if schedule.get("segment_id"):
            segment_loc: Loc = (*loc, "trigger", "schedule", "segment_id")
            if await segments.get(UUID(schedule["segment_id"])) is None:
                problems.append((segment_loc, f"No segment with id {schedule['segment_id']}."))
        for index, action in enumerate(definition["actions"]):
            at: Loc = (*loc, "actions", index)
            kind_of_action = action["type"]
            wanted_users = [action[name] for name in ("user_id", "assignee_id") if action.get(name)]
            wanted_users += action.get("round_robin") or []
            for user in wanted_users:
                if not await users.existing_ids({UUID(user)}):
                    name = "assignee_id" if kind_of_action == "create_task" else "user_id"
                    if action.get("round_robin"):
                        name = "round_robin"
                    problems.append(((*at, name), f"No user with id {user}."))
            if kind_of_action == "send_webhook":
                if not await endpoints.existing_ids({UUID(action["endpoint_id"])}):
                    problems.append(
                        ((*at, "endpoint_id"), f"No webhook with id {action['endpoint_id']}.")
                    )
                if action.get("template") is not None:
                    problems += check_paths(
                        action["template"],
                        lambda path: _path_problem(path, trigger, kind, customer_fields, fields),
                        (*at, "template"),
                    )
            elif kind_of_action == "set_field":
                problems += _field_problems(action, fields, at, kind)
            elif kind_of_action == "set_lifecycle_stage":
                allowed = await self._lifecycle_stages()
                if action["stage"] not in allowed:
                    problems.append(
                        (
                            (*at, "stage"),
                            f"Expected one of the workspace's stages: {', '.join(allowed)}.",
                        )
                    )
            elif kind_of_action in ("add_to_segment", "remove_from_segment"):
                problems += await _segment_problems(
                    segments, action["segment_id"], (*at, "segment_id")
                )
            elif kind_of_action == "move_deal_stage":
                if kind != DEAL:
                    problems.append(
                        ((*at, "type"), "move_deal_stage needs a deal trigger (deal.*).")
                    )
                elif await stages.get(UUID(action["stage_id"])) is None:
                    problems.append(((*at, "stage_id"), f"No stage with id {action['stage_id']}."))
        if problems:
            first_loc, first = problems[0]
            raise ValidationFailed(".".join(str(p) for p in first_loc) + ": " + first, problems)

    async def _lifecycle_stages(self) -> list[str]:
        workspace = await WorkspaceDirectory(self.session).by_id(self.context.workspace_id)
        return list(workspace.lifecycle_stages) if workspace is not None else []

    def _dialect(self) -> str:
        bind = self.session.bind
        return bind.dialect.name if bind is not None else "sqlite"

    def _record(
        self, event_type: str, workflow: Workflow, changes: dict[str, Any] | None = None
    ) -> None:
        self.events.record(
            event_type,
            subject_type="workflow",
            subject_id=workflow.id,
            data=schemas.Workflow.snapshot(workflow),
            changes=changes,
        )


async def _segment_problems(
    segments: SegmentRepository, segment_id: str, loc: Loc
) -> list[tuple[Loc, str]]:
    segment = await segments.get(UUID(segment_id))
    if segment is None:
        return [(loc, f"No segment with id {segment_id}.")]
    if segment.kind != STATIC:
        return [(loc, "Only static segments take members; a dynamic one follows its filter.")]
    return []


def _compact(part: dict[str, Any]) -> dict[str, Any]:
    """A trigger or action without its unset parts, as shown back (`set_field` keeps its
    `value`: null clears the field)."""
    return {name: value for name, value in part.items() if value is not None or name == "value"}


def _stored(definition: dict[str, Any]) -> dict[str, Any]:
    trigger = definition["trigger"]
    return {
        "trigger": trigger,
        "trigger_type": trigger.get("event_type") or SCHEDULE,
        "conditions": definition["conditions"],
        "actions": [_compact(action) for action in definition["actions"]],
    }


def _schedule(workflow: Workflow) -> None:
    """The next run of an enabled schedule, from now."""
    schedule = workflow.trigger.get("schedule")
    if schedule is None or not workflow.enabled:
        workflow.next_run_at = None
    else:
        workflow.next_run_at = next_occurrence(schedule, utcnow())


def _field_problems(
    action: dict[str, Any], fields: dict[str, FieldDefinition], at: Loc, kind: str
) -> list[tuple[Loc, str]]:
    if action["key"] not in fields:
        return [((*at, "key"), f"No custom field '{action['key']}' on {kind}s; see /v1/fields.")]
    try:
        apply_attributes(
            {}, {action["key"]: action["value"]}, fields, loc=(*at, "value"), creating=False
        )
    except ValidationFailed as error:
        return [((*at, "value"), str(item["message"])) for item in error.extensions["errors"]]
    return []


def _path_problem(
    path: str,
    trigger: dict[str, Any],
    kind: str,
    customer_fields: dict[str, FieldDefinition],
    fields: dict[str, FieldDefinition],
) -> str | None:
    """What is wrong with a template path, or None when a run can resolve it."""
    root, _, rest = path.partition(".")
    first, _, deeper = rest.partition(".")
    if root not in ROOTS:
        return f"'{path}': a path starts with one of {', '.join(ROOTS)}."
    if root == "event":
        if "event_type" not in trigger:
            return f"'{path}': a scheduled workflow has no event."
        return (
            None
            if first in _EVENT_KEYS
            else f"'{path}': an event has {', '.join(sorted(_EVENT_KEYS))}."
        )
    if root in ("workflow", "run"):
        known = {"id", "name"} if root == "workflow" else {"id"}
        return None if first in known and not deeper else f"'{path}': unknown field."
    if root == "deal" and kind != DEAL:
        return f"'{path}': only deal triggers have a deal."
    model: Any = pipeline_schemas.Deal if root == "deal" else customer_schemas.Customer
    definitions = fields if root == "deal" else customer_fields
    if first not in model.model_fields or first in ("company", "owner"):
        return f"'{path}': the {root} has no field '{first}'."
    if first == "attributes" and deeper:
        key = deeper.partition(".")[0]
        return None if key in definitions else f"'{path}': no custom field '{key}'."
    if first == "metrics" and deeper:
        key = deeper.partition(".")[0]
        known_metrics = customer_schemas.CustomerMetrics.model_fields
        return None if key in known_metrics else f"'{path}': no metric '{key}'."
    return None
