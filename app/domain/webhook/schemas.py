"""The shapes of webhook endpoints, deliveries and attempts."""

from datetime import datetime
from typing import Annotated, Any, ClassVar
from uuid import UUID

from pydantic import AfterValidator, Field, StringConstraints

from app.core.schemas import InputModel, ResourceModel, UpdateModel

EventPattern = Annotated[
    str, StringConstraints(pattern=r"^(\*|[a-z_]+(\.(\*|[a-z_]+))*)$", max_length=100)
]
FieldName = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_.]{0,99}$")]
# Header names and values that cannot smuggle a second header or line into the request.
HeaderName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,100}$")]
HeaderValue = Annotated[str, StringConstraints(pattern=r"^[\x20-\x7e]{0,1000}$")]
_RESERVED_HEADERS = frozenset(
    {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "content-type",
        "content-length",
        "host",
        "transfer-encoding",
        "connection",
    }
)


def _no_reserved(headers: dict[str, str]) -> dict[str, str]:
    reserved = sorted(name for name in headers if name.lower() in _RESERVED_HEADERS)
    if reserved:
        raise ValueError(f"These headers are set by Kokyaku: {', '.join(reserved)}.")
    return headers


Headers = Annotated[
    dict[HeaderName, HeaderValue], Field(max_length=20), AfterValidator(_no_reserved)
]


class WebhookWrite(InputModel):
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    event_types: list[EventPattern] | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        description='Event types to receive; "*" wildcards, e.g. "deal.*"',
    )
    changed_fields: list[FieldName] | None = Field(
        default=None,
        max_length=50,
        description="For events with changes: only when one of these fields changed",
    )
    enabled: bool | None = None
    ordered: bool | None = Field(
        default=None,
        description="Deliver in event order, a later event waiting while an earlier retries",
    )
    headers: Headers | None = Field(default=None, description="Extra request headers")


class WebhookCreate(WebhookWrite):
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    event_types: list[EventPattern] = Field(min_length=1, max_length=50)


class WebhookUpdate(WebhookWrite, UpdateModel):
    nullable: ClassVar[frozenset[str]] = frozenset({"description", "changed_fields"})
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = None


class Webhook(ResourceModel):
    id: UUID
    url: str
    description: str | None
    event_types: list[str]
    changed_fields: list[str] | None
    enabled: bool
    ordered: bool
    headers: dict[str, str]
    failing_since: datetime | None
    disabled_reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(Webhook):
    secret: str = Field(description="Shown only now: verify signatures with it")


class Delivery(ResourceModel):
    id: UUID
    endpoint_id: UUID
    event_id: UUID
    event_type: str
    status: str = Field(description="pending, delivering, succeeded or failed")
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    completed_at: datetime | None
    created_at: datetime


class Attempt(ResourceModel):
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    response_body: str | None
    request_headers: dict[str, str]


class DeliveryDetail(Delivery):
    payload: dict[str, Any]
    attempts_log: list[Attempt]
