"""The shapes of pipelines, stages and deals."""

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Self
from uuid import UUID

from pydantic import Field, StringConstraints, model_validator

from app.core.schemas import InputModel, Name, ResourceModel, UpdateModel
from app.domain.commerce.schemas import Amount, Currency


class StageKind(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


StageName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Probability = Annotated[int, Field(ge=0, le=100, description="Chance of winning, in percent")]
RottingDays = Annotated[int, Field(ge=1, le=3650)]


class StageCreate(InputModel):
    name: StageName
    probability: Probability
    kind: StageKind = StageKind.OPEN
    rotting_days: RottingDays | None = Field(
        default=None, description="A deal idle longer than this in the stage is flagged rotting"
    )


class StageUpdate(UpdateModel):
    nullable: ClassVar[frozenset[str]] = frozenset({"rotting_days"})
    name: StageName | None = None
    probability: Probability | None = None
    kind: StageKind | None = None
    rotting_days: RottingDays | None = None


class StageMove(InputModel):
    before: UUID | None = Field(default=None, description="Put the stage just before this one")
    after: UUID | None = Field(default=None, description="Put the stage just after this one")

    @model_validator(mode="after")
    def _one_anchor(self) -> Self:
        if (self.before is None) == (self.after is None):
            raise ValueError("Give either before or after.")
        return self


class Stage(ResourceModel):
    id: UUID
    pipeline_id: UUID
    name: str
    position: int
    probability: int
    kind: str
    rotting_days: int | None
    version: int
    created_at: datetime
    updated_at: datetime


class PipelineCreate(InputModel):
    name: Name
    stages: list[StageCreate] = Field(
        default_factory=list, max_length=50, description="In order; more can be added later"
    )


class PipelineUpdate(UpdateModel):
    name: Name | None = None


class Pipeline(ResourceModel):
    id: UUID
    name: str
    stages: list[Stage]
    version: int
    created_at: datetime
    updated_at: datetime


class DealContactIn(InputModel):
    customer_id: UUID
    role: Annotated[str, StringConstraints(min_length=1, max_length=50)] | None = Field(
        default=None, examples=["decision_maker", "influencer", "user"]
    )


class DealWrite(InputModel):
    amount: Amount | None = Field(default=None, description="In the currency's minor unit")
    currency: Currency | None = None
    customer_id: UUID | None = None
    company_id: UUID | None = None
    owner_id: UUID | None = None
    contacts: list[DealContactIn] | None = Field(default=None, max_length=50)
    expected_close_date: date | None = None
    source: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    lost_reason: Annotated[str, StringConstraints(max_length=500)] | None = None
    attributes: dict[str, Any] | None = Field(
        default=None, description="Custom field values of deals, validated against /v1/fields"
    )


class DealCreate(DealWrite):
    name: Name
    pipeline_id: UUID | None = Field(
        default=None, description="Defaults to the workspace's first pipeline"
    )
    stage_id: UUID | None = Field(default=None, description="Defaults to the first stage")
    amount: Amount = 0
    currency: Currency = "JPY"


class DealUpdate(DealWrite, UpdateModel):
    nullable: ClassVar[frozenset[str]] = frozenset(
        {
            "customer_id",
            "company_id",
            "owner_id",
            "expected_close_date",
            "source",
            "lost_reason",
        }
    )
    name: Name | None = None
    stage_id: UUID | None = Field(default=None, description="Move the deal (same pipeline)")


class DealContact(ResourceModel):
    customer_id: UUID
    role: str | None


class Deal(ResourceModel):
    id: UUID
    name: str
    pipeline_id: UUID
    stage_id: UUID
    status: str = Field(description="open, won or lost, from the stage's kind")
    amount: int
    currency: str
    customer_id: UUID | None
    company_id: UUID | None
    owner_id: UUID | None
    contacts: list[DealContact]
    expected_close_date: date | None
    source: str | None
    lost_reason: str | None
    attributes: dict[str, Any]
    stage_changed_at: datetime
    closed_at: datetime | None
    rotting: bool = Field(description="Idle in its stage longer than the stage's rotting days")
    version: int
    created_at: datetime
    updated_at: datetime


class StageChange(ResourceModel):
    from_stage_id: UUID | None
    to_stage_id: UUID
    changed_at: datetime
    changed_by: str | None
    seconds_in_previous_stage: int | None
