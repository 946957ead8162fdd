"""The shapes of workflows, their triggers and actions, runs and dry-runs."""

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from app.core.schemas import InputModel, Name, ResourceModel, UpdateModel
from app.core.values import Tag
from app.domain.outbox.catalogue import EVENT_TYPES

# Subjects whose events a workflow can start from: each leads to a customer or a deal.
TRIGGER_SUBJECTS = frozenset({"customer", "order", "interaction", "deal"})
TRIGGER_EVENT_TYPES = tuple(
    sorted(
        name
        for name, subject in EVENT_TYPES.items()
        if subject in TRIGGER_SUBJECTS and not name.endswith(".deleted")
    )
)
MAX_ACTIONS = 50
_DURATION = re.compile(r"^(\d{1,6})([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION = timedelta(days=365)


def parse_duration(value: str) -> timedelta:
    """`"30s"`, `"15m"`, `"4h"`, `"2d"` as a timedelta."""
    match = _DURATION.match(value)
    if match is None:
        raise ValueError('Write a duration as a number and a unit: "30s", "15m", "4h" or "2d".')
    duration = timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    if not timedelta(seconds=1) <= duration <= MAX_DURATION:
        raise ValueError("A duration is from 1 second to 365 days.")
    return duration


def _duration(value: str) -> str:
    parse_duration(value)
    return value


def _trigger_event_type(value: str) -> str:
    if value not in TRIGGER_EVENT_TYPES:
        raise ValueError(
            f"Unknown trigger event type '{value}'; workflows start from: "
            + ", ".join(TRIGGER_EVENT_TYPES)
            + "."
        )
    return value


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"Unknown IANA time zone '{value}'.") from error
    return value


Duration = Annotated[str, AfterValidator(_duration)]
TriggerEventType = Annotated[str, AfterValidator(_trigger_event_type)]
TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_timezone)]
LocalTime = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
FieldKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


class Weekday(StrEnum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"


class Schedule(InputModel):
    every: Literal["day", "week"]
    at: LocalTime = Field(description="Local time, HH:MM", examples=["09:00"])
    timezone: TimeZone = Field(default="Asia/Tokyo", description="IANA time zone")
    weekday: Weekday | None = Field(default=None, description="Weekly schedules: which day")
    segment_id: UUID | None = Field(
        default=None, description="Only the members of this segment (and the conditions)"
    )

    @model_validator(mode="after")
    def _weekday_for_weeks(self) -> Self:
        if (self.every == "week") != (self.weekday is not None):
            raise ValueError("A weekly schedule names its weekday; a daily one does not.")
        return self


class Trigger(InputModel):
    """Either an event type, or a schedule that runs over the customers matching the
    conditions."""

    event_type: TriggerEventType | None = Field(default=None, examples=["order.completed"])
    schedule: Schedule | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.event_type is None) == (self.schedule is None):
            raise ValueError("Give either event_type or schedule.")
        return self


class SendWebhook(InputModel):
    type: Literal["send_webhook"]
    endpoint_id: UUID
    template: dict[str, Any] | None = Field(
        default=None,
        description='A JSON payload whose strings may name values: "{{customer.email}}", '
        '"{{event.data.total}}"; without it the triggering event is sent',
    )


class AddTag(InputModel):
    type: Literal["add_tag"]
    tag: Tag


class RemoveTag(InputModel):
    type: Literal["remove_tag"]
    tag: Tag


class SetField(InputModel):
    type: Literal["set_field"]
    key: FieldKey = Field(description="A custom field of the subject (/v1/fields)")
    value: Any = Field(description="Validated against the field's definition; null clears")


class SetLifecycleStage(InputModel):
    type: Literal["set_lifecycle_stage"]
    stage: Annotated[str, StringConstraints(min_length=1, max_length=50)]


class AssignOwner(InputModel):
    type: Literal["assign_owner"]
    user_id: UUID | None = Field(default=None, description="Always this user")
    round_robin: list[UUID] | None = Field(
        default=None, min_length=1, max_length=100, description="These users in turn"
    )

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if (self.user_id is None) == (self.round_robin is None):
            raise ValueError("Give either user_id or round_robin.")
        return self


class CreateTask(InputModel):
    type: Literal["create_task"]
    title: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    body: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    assignee_id: UUID | None = None
    due_in: Duration | None = Field(default=None, examples=["2d", "4h"])


class CreateInteraction(InputModel):
    type: Literal["create_interaction"]
    body: Annotated[str, StringConstraints(min_length=1, max_length=10_000)]
    subject: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None


class MoveDealStage(InputModel):
    type: Literal["move_deal_stage"]
    stage_id: UUID


class AddToSegment(InputModel):
    type: Literal["add_to_segment"]
    segment_id: UUID = Field(description="A static segment")


class RemoveFromSegment(InputModel):
    type: Literal["remove_from_segment"]
    segment_id: UUID = Field(description="A static segment")


class Wait(InputModel):
    type: Literal["wait"]
    duration: Duration = Field(examples=["30m", "2d"])


Action = Annotated[
    SendWebhook
    | AddTag
    | RemoveTag
    | SetField
    | SetLifecycleStage
    | AssignOwner
    | CreateTask
    | CreateInteraction
    | MoveDealStage
    | AddToSegment
    | RemoveFromSegment
    | Wait,
    Field(discriminator="type"),
]
Actions = Annotated[list[Action], Field(min_length=1, max_length=MAX_ACTIONS)]
Conditions = Annotated[
    dict[str, Any], Field(description="The filter DSL over the event's customer (or deal)")
]


class WorkflowWrite(InputModel):
    description: Annotated[str, StringConstraints(max_length=1000)] | None = None
    enabled: bool | None = None
    conditions: Conditions | None = None


class WorkflowCreate(WorkflowWrite):
    name: Name
    trigger: Trigger
    actions: Actions


class WorkflowUpdate(WorkflowWrite, UpdateModel):
    nullable: ClassVar[frozenset[str]] = frozenset({"description", "conditions"})
    name: Name | None = None
    trigger: Trigger | None = None
    actions: Actions | None = None


class Workflow(ResourceModel):
    id: UUID
    name: str
    description: str | None
    enabled: bool
    trigger: dict[str, Any]
    conditions: dict[str, Any] | None
    actions: list[dict[str, Any]]
    next_run_at: datetime | None = Field(description="Schedules: the next run")
    version: int
    created_at: datetime
    updated_at: datetime


class WorkflowVersion(ResourceModel):
    version: int
    name: str
    trigger: dict[str, Any]
    conditions: dict[str, Any] | None
    actions: list[dict[str, Any]]
    created_at: datetime


class StepOutcome(ResourceModel):
    index: int
    type: str
    status: str = Field(description="succeeded, retrying or failed")
    attempts: int
    result: dict[str, Any] | None = None
    error: str | None = None
    finished_at: datetime | None = None


class WorkflowRun(ResourceModel):
    id: UUID
    workflow_id: UUID
    workflow_version: int
    status: str = Field(description="pending, running, waiting, succeeded or failed")
    subject_type: str = Field(description="customer or deal")
    subject_id: UUID
    event_id: UUID | None
    depth: int
    step: int = Field(description="The index of the next action to run")
    next_attempt_at: datetime | None = Field(description="When the run is next due")
    steps: list[StepOutcome]
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class DryRunRequest(InputModel):
    event_id: UUID | None = Field(
        default=None, description="A recorded event (GET /v1/events/feed) to run against"
    )
    subject_id: UUID | None = Field(
        default=None, description="Or a customer (a deal, for deal triggers) to run for"
    )

    @model_validator(mode="after")
    def _one_input(self) -> Self:
        if (self.event_id is None) == (self.subject_id is None):
            raise ValueError("Give either event_id or subject_id.")
        return self


class RunRequest(InputModel):
    subject_id: UUID = Field(description="The customer (a deal, for deal triggers) to run for")


class PlannedAction(ResourceModel):
    index: int
    type: str
    parameters: dict[str, Any] = Field(description="The action with its values resolved")
    error: str | None = Field(default=None, description="Why a run would fail here")


class DryRun(ResourceModel):
    matched: bool = Field(description="Whether the conditions hold for the subject")
    triggered: bool = Field(description="Whether the event's type starts this workflow")
    subject_type: str
    subject_id: UUID | None
    actions: list[PlannedAction] = Field(description="What a run would do, in order")
