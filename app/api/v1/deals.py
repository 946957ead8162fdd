"""Deals: /v1/deals, their stage history and DSL search."""

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import Query, Request, Response, status

from app.api.deps import IfMatchDep, PageDep, ReadUnit, Unit, WriteUnit
from app.api.errors import problem_responses
from app.api.responses import created_at_location, list_response, set_etag
from app.api.v1.routing import resource_router
from app.api.v1.schemas.common import ListResponse
from app.api.v1.schemas.search import SearchRequest
from app.domain.access.scopes import Scope
from app.domain.pipeline.schemas import Deal, DealCreate, DealUpdate, StageChange
from app.domain.pipeline.service import DealQuery, DealService

router = resource_router("/deals", "deals")


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a deal")
async def create_deal(
    body: DealCreate,
    request: Request,
    response: Response,
    unit: Unit = WriteUnit(Scope.DEALS_WRITE),
) -> Deal:
    """Without `pipeline_id` the deal goes to the workspace's first pipeline; without
    `stage_id`, to its first stage."""
    deal = await DealService(unit.session, unit.context).create(body)
    created_at_location(response, request, deal.id)
    set_etag(response, deal.version)
    return deal


@router.get("", summary="List deals")
async def list_deals(
    request: Request,
    response: Response,
    page: PageDep,
    pipeline_id: UUID | None = None,
    stage_id: UUID | None = None,
    status: Annotated[str | None, Query(pattern=r"^(open|won|lost)$")] = None,
    owner_id: UUID | None = None,
    customer_id: UUID | None = None,
    company_id: UUID | None = None,
    expected_close_after: date | None = None,
    expected_close_before: date | None = None,
    unit: Unit = ReadUnit(Scope.DEALS_READ),
) -> ListResponse[Deal]:
    """Sort by `created_at` (default), `updated_at`, `stage_changed_at`, `amount` or `name`."""
    query = DealQuery(
        pipeline_id=pipeline_id,
        stage_id=stage_id,
        status=status,
        owner_id=owner_id,
        customer_id=customer_id,
        company_id=company_id,
        expected_close_after=expected_close_after,
        expected_close_before=expected_close_before,
    )
    deals = await DealService(unit.session, unit.context).page(page, query)
    return list_response(request, response, deals, lambda view: view)


@router.post("/search", summary="Search deals with the filter DSL")
async def search_deals(
    body: SearchRequest,
    request: Request,
    response: Response,
    unit: Unit = ReadUnit(Scope.DEALS_READ),
) -> ListResponse[Deal]:
    deals = await DealService(unit.session, unit.context).search(body.filter, body.page())
    return list_response(request, response, deals, lambda view: view)


@router.get("/{deal_id}", responses=problem_responses(404), summary="Get a deal")
async def get_deal(
    deal_id: UUID, response: Response, unit: Unit = ReadUnit(Scope.DEALS_READ)
) -> Deal:
    deal = await DealService(unit.session, unit.context).view(deal_id)
    set_etag(response, deal.version)
    return deal


@router.patch("/{deal_id}", responses=problem_responses(404, 412), summary="Update or move a deal")
async def update_deal(
    deal_id: UUID,
    body: DealUpdate,
    response: Response,
    if_match: IfMatchDep,
    unit: Unit = WriteUnit(Scope.DEALS_WRITE),
) -> Deal:
    """Setting `stage_id` moves the deal: the move is kept in its history and emits
    `deal.stage_changed`, and `deal.won` or `deal.lost` when the stage is such. Moving to the
    stage the deal is in changes nothing. Send `If-Match` to refuse a move based on a stale
    read (412)."""
    deal = await DealService(unit.session, unit.context).update(
        deal_id, body, expected_versions=if_match
    )
    set_etag(response, deal.version)
    return deal


@router.delete(
    "/{deal_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(404, 412),
    summary="Delete a deal",
)
async def delete_deal(
    deal_id: UUID, if_match: IfMatchDep, unit: Unit = WriteUnit(Scope.DEALS_WRITE)
) -> None:
    await DealService(unit.session, unit.context).delete(deal_id, expected_versions=if_match)


@router.get(
    "/{deal_id}/history", responses=problem_responses(404), summary="The deal's stage moves"
)
async def deal_history(deal_id: UUID, unit: Unit = ReadUnit(Scope.DEALS_READ)) -> list[StageChange]:
    changes = await DealService(unit.session, unit.context).history(deal_id)
    return [StageChange.model_validate(change) for change in changes]
