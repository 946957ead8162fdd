"""Workspace insights: /v1/insights/... (scope insights:read)."""

import re
from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import Query
from pydantic import BeforeValidator

from app.api.deps import ReadUnit, Unit, WriteUnit
from app.api.errors import problem_responses
from app.api.v1.routing import resource_router
from app.domain.access.scopes import Scope
from app.domain.insight import schemas
from app.domain.insight.service import InsightService

router = resource_router("/insights", "insights")

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _day(value: object) -> object:
    """Dates as YYYY-MM-DD only: pydantic would also read a number as a Unix time."""
    if isinstance(value, str) and not _DAY.fullmatch(value):
        raise ValueError("Expected a date as YYYY-MM-DD.")
    return value


Day = Annotated[date, BeforeValidator(_day)]
From = Annotated[Day | None, Query(alias="from", description="First day counted (UTC), inclusive")]
To = Annotated[Day | None, Query(description="Day after the last one counted (UTC), exclusive")]
SegmentId = Annotated[UUID | None, Query(description="Only this segment's members")]


@router.get(
    "/summary",
    responses=problem_responses(404),
    summary="Customers, revenue, orders, AOV, repeat rate, LTV and NPS",
)
async def insights_summary(
    from_: From = None,
    to: To = None,
    segment_id: SegmentId = None,
    unit: Unit = ReadUnit(Scope.INSIGHTS_READ),
) -> schemas.Summary:
    """Orders count when they happened in [from, to); revenue is net of refunds."""
    service = await InsightService.of(unit.session, unit.context, segment_id)
    return await service.summary(from_, to)


@router.get(
    "/cohorts",
    responses=problem_responses(404),
    summary="Retention and revenue per customer by first-order cohort",
)
async def insights_cohorts(
    from_: Annotated[
        Day | None,
        Query(alias="from", description="First cohort's day; default: 12 months ago"),
    ] = None,
    to: To = None,
    period: schemas.CohortPeriod = schemas.CohortPeriod.MONTH,
    segment_id: SegmentId = None,
    unit: Unit = ReadUnit(Scope.INSIGHTS_READ),
) -> schemas.Cohorts:
    """Customers grouped by the month (or quarter) of their first order in [from, to); for each
    following period, the share who ordered in it and the cumulative net revenue per customer."""
    service = await InsightService.of(unit.session, unit.context, segment_id)
    return await service.cohorts(from_, to, period)


@router.get(
    "/rfm",
    responses=problem_responses(404),
    summary="The recency × frequency grid and the RFM groups",
)
async def insights_rfm(
    from_: From = None,
    to: To = None,
    segment_id: SegmentId = None,
    unit: Unit = ReadUnit(Scope.INSIGHTS_READ),
) -> schemas.Rfm:
    """From the stored scores (see `computed_at`); `from`/`to` restrict to customers whose first
    order is in the period."""
    service = await InsightService.of(unit.session, unit.context, segment_id)
    return await service.rfm(from_, to)


@router.get(
    "/nps",
    responses=problem_responses(404),
    summary="Promoters, passives, detractors and NPS by month",
)
async def insights_nps(
    from_: From = None,
    to: To = None,
    segment_id: SegmentId = None,
    unit: Unit = ReadUnit(Scope.INSIGHTS_READ),
) -> schemas.Nps:
    """From survey interactions with an `nps_score`, by when they occurred."""
    service = await InsightService.of(unit.session, unit.context, segment_id)
    return await service.nps(from_, to)


@router.get(
    "/churn-risk",
    responses=problem_responses(404),
    summary="Customers past their usual purchase interval",
)
async def insights_churn_risk(
    from_: From = None,
    to: To = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    segment_id: SegmentId = None,
    unit: Unit = ReadUnit(Scope.INSIGHTS_READ),
) -> schemas.ChurnRisk:
    """More than twice their own average days between orders since their last order (one-time
    buyers: twice the workspace's median), ranked by value at risk; `from`/`to` restrict to
    customers whose first order is in the period."""
    service = await InsightService.of(unit.session, unit.context, segment_id)
    return await service.churn_risk(from_, to, limit)


@router.get(
    "/ltv", responses=problem_responses(404), summary="Historical and predicted 12-month LTV"
)
async def insights_ltv(
    from_: From = None,
    to: To = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Top customers by prediction")] = 10,
    segment_id: SegmentId = None,
    unit: Unit = ReadUnit(Scope.INSIGHTS_READ),
) -> schemas.Ltv:
    """Distributions of total spent and of the predicted 12-month value (BG/NBD × Gamma-Gamma,
    fitted by the worker), per currency, with the model's parameters."""
    service = await InsightService.of(unit.session, unit.context, segment_id)
    return await service.ltv(from_, to, limit)


@router.get(
    "/products",
    responses=problem_responses(404),
    summary="Top products and categories, and products bought together",
)
async def insights_products(
    from_: From = None,
    to: To = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    segment_id: SegmentId = None,
    unit: Unit = ReadUnit(Scope.INSIGHTS_READ),
) -> schemas.Products:
    service = await InsightService.of(unit.session, unit.context, segment_id)
    return await service.products(from_, to, limit)


@router.get("/model", summary="When the scores were computed, and the fitted parameters")
async def insights_model(unit: Unit = ReadUnit(Scope.INSIGHTS_READ)) -> schemas.ModelParameters:
    return await InsightService(unit.session, unit.context).model()


@router.post("/recompute", summary="Recompute RFM, churn risk and the LTV model now")
async def insights_recompute(
    unit: Unit = WriteUnit(Scope.INSIGHTS_READ),
) -> schemas.ModelParameters:
    """The worker does this on a schedule; this does it now, for this workspace."""
    return await InsightService(unit.session, unit.context).recompute()


customer_router = resource_router("/customers", "insights")


@customer_router.get(
    "/{customer_id}/recommendations",
    responses=problem_responses(404),
    summary="Products often bought with what the customer bought",
)
async def customer_recommendations(
    customer_id: UUID,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
    unit: Unit = ReadUnit(Scope.INSIGHTS_READ),
) -> schemas.Recommendations:
    """Products in the same orders as the customer's products, not yet bought by them, most
    often bought together first."""
    return await InsightService(unit.session, unit.context).recommendations(customer_id, limit)
