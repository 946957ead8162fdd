"""The shapes of segments, as clients write and read them."""

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar
from uuid import UUID

from pydantic import Field, StringConstraints

from app.core.schemas import InputModel, Name, ResourceModel, UpdateModel
from app.domain.customer.schemas import Customer

MAX_MEMBERS_PER_CALL = 1000
FILTER_EXAMPLE = {
    "all": [
        {"field": "orders", "op": "count_gte", "value": 2},
        {
            "field": "orders",
            "op": "has_none",
            "where": {"field": "occurred_at", "op": "within_last", "value": "90d"},
        },
        {"field": "metrics.total_spent", "op": "gt", "value": 50000},
    ]
}
Description = Annotated[str, StringConstraints(max_length=2000)]


class SegmentKind(StrEnum):
    DYNAMIC = "dynamic"
    STATIC = "static"


class SegmentCreate(InputModel):
    name: Name
    description: Description | None = None
    kind: SegmentKind
    filter: dict[str, Any] | None = Field(
        default=None,
        description="Dynamic segments only: the filter DSL over customers",
        examples=[FILTER_EXAMPLE],
    )


class SegmentUpdate(UpdateModel):
    nullable: ClassVar[frozenset[str]] = frozenset({"description"})
    name: Name | None = None
    description: Description | None = None
    filter: dict[str, Any] | None = Field(
        default=None, description="A new filter: members are recomputed in the background"
    )


class Segment(ResourceModel):
    id: UUID
    name: str
    description: str | None
    kind: SegmentKind
    filter: dict[str, Any] | None
    status: str = Field(description="`computing` while members follow a new filter, else `ready`")
    member_count: int
    computed_at: datetime | None = Field(description="When members last matched the filter")
    version: int
    created_at: datetime
    updated_at: datetime


class SegmentPreviewRequest(InputModel):
    filter: dict[str, Any] = Field(examples=[FILTER_EXAMPLE])
    sample_size: Annotated[int, Field(ge=0, le=50)] = 10


class MemberChange(InputModel):
    customer_ids: list[UUID] = Field(min_length=1, max_length=MAX_MEMBERS_PER_CALL)


class MemberChangeResult(ResourceModel):
    changed: int = Field(description="Customers that entered (or left) with this call")
    unchanged: int = Field(description="Customers that were members already (or were not)")


class CustomerSegment(ResourceModel):
    id: UUID
    name: str
    kind: SegmentKind
    entered_at: datetime


class SegmentSizePoint(ResourceModel):
    day: date
    member_count: int


class SegmentPreview(ResourceModel):
    count: int = Field(description="Customers the filter matches now")
    sample: list[Customer] = Field(description="Some of them, most recently created first")
