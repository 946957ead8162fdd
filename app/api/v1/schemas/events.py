"""The event feed and the audit log."""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class EventEnvelope(BaseModel):
    """A domain event as webhooks deliver it and the feed lists it (DESIGN §7)."""

    id: UUID
    type: str = Field(examples=["customer.updated"])
    created_at: datetime
    workspace_id: UUID
    data: dict[str, Any] = Field(description="The resource as the API shows it")
    changes: dict[str, Any] | None = Field(
        default=None, description='On updates: {"field": {"old": ..., "new": ...}}'
    )


class EventFeed(BaseModel):
    data: list[EventEnvelope]
    next_cursor: str = Field(description="Always present: poll again with `after` set to it.")
    has_more: bool


class AuditEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    type: str
    subject_type: str
    subject_id: UUID
    actor_kind: str = Field(description="api_key, cli or system")
    actor_api_key_id: UUID | None
    request_id: str | None
    changes: dict[str, Any] | None
    created_at: datetime
