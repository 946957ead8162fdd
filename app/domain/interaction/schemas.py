"""The shapes of interactions, as clients write and read them."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar
from uuid import UUID

from pydantic import Field, StringConstraints

from app.core.schemas import InputModel, ResourceModel, UpdateModel


class InteractionType(StrEnum):
    NOTE = "note"
    CALL = "call"
    EMAIL = "email"
    MEETING = "meeting"
    MESSAGE = "message"
    SUPPORT_REQUEST = "support_request"
    VISIT = "visit"
    SURVEY = "survey"
    TASK = "task"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class SupportStatus(StrEnum):
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


Channel = Annotated[str, StringConstraints(min_length=1, max_length=50)]
Subject = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Body = Annotated[str, StringConstraints(max_length=100_000)]
NpsScore = Annotated[int, Field(ge=0, le=10)]


class InteractionWrite(InputModel):
    channel: Channel | None = Field(default=None, examples=["phone", "line", "store"])
    direction: Direction | None = None
    subject: Subject | None = None
    body: Body | None = None
    occurred_at: datetime | None = Field(
        default=None, description="When it happened; now if omitted"
    )
    company_id: UUID | None = None
    deal_id: UUID | None = None
    owner_id: UUID | None = None
    due_at: datetime | None = Field(default=None, description="Tasks only")
    assignee_id: UUID | None = Field(default=None, description="Tasks only")
    status: Annotated[str, StringConstraints(max_length=20)] | None = Field(
        default=None,
        description="Tasks: open, done, cancelled. Support requests: open, pending, resolved, "
        "closed. Both start open.",
    )
    priority: Priority | None = Field(default=None, description="Support requests only")
    nps_score: NpsScore | None = Field(default=None, description="Surveys only: 0 to 10")
    answers: dict[str, Any] | None = Field(default=None, description="Surveys only")


class InteractionCreate(InteractionWrite):
    type: InteractionType
    customer_id: UUID


class InteractionUpdate(InteractionWrite, UpdateModel):
    nullable: ClassVar[frozenset[str]] = frozenset(
        {
            "channel",
            "direction",
            "subject",
            "body",
            "company_id",
            "deal_id",
            "owner_id",
            "due_at",
            "assignee_id",
            "priority",
            "nps_score",
            "answers",
        }
    )
    customer_id: UUID | None = Field(default=None, description="Move it to another customer")


class Interaction(ResourceModel):
    id: UUID
    type: str
    customer_id: UUID
    company_id: UUID | None
    deal_id: UUID | None
    owner_id: UUID | None
    channel: str | None
    direction: str | None
    subject: str | None
    body: str | None
    occurred_at: datetime
    due_at: datetime | None
    assignee_id: UUID | None
    status: str | None
    priority: str | None
    nps_score: int | None
    answers: dict[str, Any] | None
    completed_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime
