"""Pipelines and their stages, board, forecast and funnel: /v1/pipelines."""

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import Query, Request, Response, status
from pydantic import BaseModel, Field

from app.api.deps import IfMatchDep, PageDep, ReadUnit, Unit, WriteUnit
from app.api.errors import problem_responses
from app.api.responses import created_at_location, list_response, set_etag
from app.api.v1.routing import resource_router
from app.api.v1.schemas.common import ListResponse
from app.domain.access.scopes import Scope
from app.domain.pipeline.reports import ForecastGrouping, PipelineReports
from app.domain.pipeline.schemas import (
    Deal,
    Pipeline,
    PipelineCreate,
    PipelineUpdate,
    Stage,
    StageCreate,
    StageMove,
    StageUpdate,
)
from app.domain.pipeline.service import PipelineService

router = resource_router("/pipelines", "pipelines")


class BoardColumn(BaseModel):
    stage: Stage
    count: int
    total_amount: dict[str, int] = Field(description="Per currency")
    weighted_amount: dict[str, int] = Field(description="Per currency, by stage probability")
    deals: list[Deal]
    next_cursor: str | None = Field(
        description="Continue with GET /v1/deals?stage_id=<stage>&cursor=<this>"
    )


class Board(BaseModel):
    stages: list[BoardColumn]


class ForecastTotals(BaseModel):
    open_amount: int
    weighted_amount: int
    won_amount: int


class ForecastGroup(ForecastTotals):
    key: str = Field(description="2026-12, an owner id or 'unassigned', or a stage id")


class Forecast(BaseModel):
    currency: str
    groups: list[ForecastGroup]
    total: ForecastTotals


class Forecasts(BaseModel):
    forecasts: list[Forecast] = Field(description="One per currency of the pipeline's deals")


class FunnelStage(BaseModel):
    stage: Stage
    reached: int
    conversion_to_next: float | None
    median_seconds_in_stage: int | None
    p90_seconds_in_stage: int | None


class Funnel(BaseModel):
    deals: int
    stages: list[FunnelStage]
    won: int
    lost: int
    win_rate: float | None


@router.post("", status_code=status.HTTP_201_CREATED, responses=problem_responses(409))
async def create_pipeline(
    body: PipelineCreate,
    request: Request,
    response: Response,
    unit: Unit = WriteUnit(Scope.DEALS_WRITE),
) -> Pipeline:
    """Create a pipeline, optionally with its stages in order."""
    pipeline = await PipelineService(unit.session, unit.context).create(body)
    created_at_location(response, request, pipeline.id)
    set_etag(response, pipeline.version)
    return pipeline


@router.get("", summary="List pipelines with their stages")
async def list_pipelines(
    request: Request, response: Response, page: PageDep, unit: Unit = ReadUnit(Scope.DEALS_READ)
) -> ListResponse[Pipeline]:
    pipelines = await PipelineService(unit.session, unit.context).page(page)
    return list_response(request, response, pipelines, lambda view: view)


@router.get("/{pipeline_id}", responses=problem_responses(404), summary="Get a pipeline")
async def get_pipeline(
    pipeline_id: UUID, response: Response, unit: Unit = ReadUnit(Scope.DEALS_READ)
) -> Pipeline:
    pipeline = await PipelineService(unit.session, unit.context).get(pipeline_id)
    set_etag(response, pipeline.version)
    return pipeline


@router.patch("/{pipeline_id}", responses=problem_responses(404, 409, 412))
async def update_pipeline(
    pipeline_id: UUID,
    body: PipelineUpdate,
    response: Response,
    if_match: IfMatchDep,
    unit: Unit = WriteUnit(Scope.DEALS_WRITE),
) -> Pipeline:
    """Rename a pipeline."""
    pipeline = await PipelineService(unit.session, unit.context).update(
        pipeline_id, body, expected_versions=if_match
    )
    set_etag(response, pipeline.version)
    return pipeline


@router.delete(
    "/{pipeline_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(404, 409, 412),
    summary="Delete a pipeline without deals",
)
async def delete_pipeline(
    pipeline_id: UUID, if_match: IfMatchDep, unit: Unit = WriteUnit(Scope.DEALS_WRITE)
) -> None:
    await PipelineService(unit.session, unit.context).delete(
        pipeline_id, expected_versions=if_match
    )


@router.get("/{pipeline_id}/stages", responses=problem_responses(404), summary="List stages")
async def list_stages(pipeline_id: UUID, unit: Unit = ReadUnit(Scope.DEALS_READ)) -> list[Stage]:
    return (await PipelineService(unit.session, unit.context).get(pipeline_id)).stages


@router.post(
    "/{pipeline_id}/stages",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404),
    summary="Add a stage at the end",
)
async def create_stage(
    pipeline_id: UUID,
    body: StageCreate,
    request: Request,
    response: Response,
    unit: Unit = WriteUnit(Scope.DEALS_WRITE),
) -> Stage:
    stage = await PipelineService(unit.session, unit.context).add_stage(pipeline_id, body)
    created_at_location(response, request, stage.id)
    set_etag(response, stage.version)
    return Stage.model_validate(stage)


@router.patch("/{pipeline_id}/stages/{stage_id}", responses=problem_responses(404, 412))
async def update_stage(
    pipeline_id: UUID,
    stage_id: UUID,
    body: StageUpdate,
    response: Response,
    if_match: IfMatchDep,
    unit: Unit = WriteUnit(Scope.DEALS_WRITE),
) -> Stage:
    """Change a stage's name, probability, kind or rotting days."""
    stage = await PipelineService(unit.session, unit.context).update_stage(
        pipeline_id, stage_id, body, expected_versions=if_match
    )
    set_etag(response, stage.version)
    return Stage.model_validate(stage)


@router.post(
    "/{pipeline_id}/stages/{stage_id}/move",
    responses=problem_responses(404),
    summary="Move a stage before or after another",
)
async def move_stage(
    pipeline_id: UUID,
    stage_id: UUID,
    body: StageMove,
    unit: Unit = WriteUnit(Scope.DEALS_WRITE),
) -> list[Stage]:
    """Answers every stage of the pipeline in the new order, numbered 1..n."""
    stages = await PipelineService(unit.session, unit.context).move_stage(
        pipeline_id, stage_id, body
    )
    return [Stage.model_validate(stage) for stage in stages]


@router.delete(
    "/{pipeline_id}/stages/{stage_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(404, 409, 412),
    summary="Delete a stage, moving its deals to another",
)
async def delete_stage(
    pipeline_id: UUID,
    stage_id: UUID,
    if_match: IfMatchDep,
    move_deals_to: Annotated[
        UUID | None, Query(description="The stage that receives the deals; required if any")
    ] = None,
    unit: Unit = WriteUnit(Scope.DEALS_WRITE),
) -> None:
    await PipelineService(unit.session, unit.context).delete_stage(
        pipeline_id, stage_id, move_deals_to=move_deals_to, expected_versions=if_match
    )


@router.get("/{pipeline_id}/board", responses=problem_responses(404), summary="A kanban board")
async def pipeline_board(
    pipeline_id: UUID,
    limit: Annotated[int, Query(ge=1, le=100, description="Deals per stage")] = 20,
    unit: Unit = ReadUnit(Scope.DEALS_READ),
) -> Board:
    """Each stage with its deal count, total and weighted amounts, and its first deals."""
    columns = await PipelineReports(unit.session, unit.context).board(pipeline_id, limit)
    return Board(
        stages=[
            BoardColumn(
                stage=column.stage,
                count=column.count,
                total_amount=column.total_amount,
                weighted_amount=column.weighted_amount,
                deals=column.deals,
                next_cursor=column.next_cursor,
            )
            for column in columns
        ]
    )


@router.get(
    "/{pipeline_id}/forecast",
    responses=problem_responses(404),
    summary="Weighted forecast of open deals, and won amounts",
)
async def pipeline_forecast(
    pipeline_id: UUID,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: date | None = None,
    group_by: ForecastGrouping = ForecastGrouping.MONTH,
    unit: Unit = ReadUnit(Scope.DEALS_READ),
) -> Forecast | Forecasts:
    """Open deals by expected close date (amount × stage probability), won deals by close
    date, within [from, to). One object when the deals have one currency, else `forecasts`."""
    found = await PipelineReports(unit.session, unit.context).forecast(
        pipeline_id, from_, to, group_by
    )
    if len(found) == 1:
        return Forecast.model_validate(found[0])
    return Forecasts(forecasts=[Forecast.model_validate(item) for item in found])


@router.get(
    "/{pipeline_id}/funnel",
    responses=problem_responses(404),
    summary="Conversion between stages and time in stage",
)
async def pipeline_funnel(
    pipeline_id: UUID,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: date | None = None,
    unit: Unit = ReadUnit(Scope.DEALS_READ),
) -> Funnel:
    """For deals created within [from, to)."""
    data: dict[str, Any] = await PipelineReports(unit.session, unit.context).funnel(
        pipeline_id, from_, to
    )
    return Funnel.model_validate(data)
