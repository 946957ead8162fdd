"""The shapes of loyalty tiers, scoring rules and score thresholds, as clients write and
read them."""

from datetime import datetime
from typing import Annotated, Any, ClassVar
from uuid import UUID

from pydantic import AfterValidator, Field, StringConstraints

from app.core.schemas import InputModel, Name, ResourceModel, UpdateModel

MAX_THRESHOLDS = 20
TierKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,49}$")]
Rank = Annotated[int, Field(ge=0, le=1000, description="Higher ranks win")]
Points = Annotated[int, Field(ge=-1000, le=1000, description="May be negative")]
HalfLife = Annotated[
    int,
    Field(
        ge=1,
        le=3650,
        description=(
            "Days after which the points halve, counted from the newest row meeting the "
            "filter's behaviour condition; only for a filter that is one behaviour condition"
        ),
    ),
]
GOLD_EXAMPLE = {
    "field": "orders",
    "op": "spent_gte",
    "value": 100000,
    "where": {"field": "occurred_at", "op": "within_last", "value": "12m"},
}
PRICING_EXAMPLE = {
    "field": "events",
    "op": "has",
    "where": {
        "all": [
            {"field": "type", "op": "eq", "value": "page.viewed"},
            {"field": "properties.path", "op": "starts_with", "value": "/pricing"},
        ]
    },
}


class TierCreate(InputModel):
    key: TierKey = Field(description="What customers show as `tier`, e.g. `gold`")
    name: Name
    rank: Rank
    filter: dict[str, Any] = Field(
        description="The filter DSL over customers; it may not name `tier`",
        examples=[GOLD_EXAMPLE],
    )


class TierUpdate(UpdateModel):
    key: TierKey | None = None
    name: Name | None = None
    rank: Rank | None = None
    filter: dict[str, Any] | None = None


class Tier(ResourceModel):
    id: UUID
    key: str
    name: str
    rank: int
    filter: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime


class ScoringRuleCreate(InputModel):
    name: Name
    points: Points
    filter: dict[str, Any] = Field(
        description="The filter DSL over customers; it may name neither `score` nor `tier`",
        examples=[PRICING_EXAMPLE],
    )
    half_life_days: HalfLife | None = None


class ScoringRuleUpdate(UpdateModel):
    nullable: ClassVar[frozenset[str]] = frozenset({"half_life_days"})
    name: Name | None = None
    points: Points | None = None
    filter: dict[str, Any] | None = None
    half_life_days: HalfLife | None = None


class ScoringRule(ResourceModel):
    id: UUID
    name: str
    points: int
    filter: dict[str, Any]
    half_life_days: int | None
    version: int
    created_at: datetime
    updated_at: datetime


def _distinct_ascending(values: list[int]) -> list[int]:
    return sorted(set(values))


Thresholds = Annotated[
    list[Annotated[int, Field(ge=-100_000, le=100_000)]],
    Field(max_length=MAX_THRESHOLDS),
    AfterValidator(_distinct_ascending),
]


class ScoreThresholds(InputModel):
    thresholds: Thresholds = Field(
        description=(
            "`customer.score_changed` is emitted when a score reaches one of these from below "
            "or falls below one of them"
        ),
        examples=[[50, 80]],
    )


class ScoreThresholdsRead(ResourceModel):
    thresholds: list[int]
