"""Loyalty tiers: /v1/tiers, the ordered rules that give each customer a `tier`."""

from uuid import UUID

from fastapi import Request, Response, status

from app.api.deps import IfMatchDep, PageDep, ReadUnit, Unit, WriteUnit
from app.api.errors import problem_responses
from app.api.responses import created_at_location, list_response, set_etag
from app.api.v1.routing import resource_router
from app.api.v1.schemas.common import ListResponse
from app.domain.access.scopes import Scope
from app.domain.segment.standing_schemas import Tier, TierCreate, TierUpdate
from app.domain.segment.standing_service import TierService

router = resource_router("/tiers", "tiers")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
    summary="Create a loyalty tier",
)
async def create_tier(
    body: TierCreate,
    request: Request,
    response: Response,
    unit: Unit = WriteUnit(Scope.SEGMENTS_WRITE),
) -> Tier:
    """A customer holds the highest-ranked tier whose filter they match, or none. Every
    customer is evaluated again in the background; those whose tier changes get
    `customer.tier_changed`."""
    tier = await TierService(unit.session, unit.context).create(body)
    created_at_location(response, request, tier.id)
    set_etag(response, tier.version)
    return Tier.model_validate(tier)


@router.get("", summary="List loyalty tiers")
async def list_tiers(
    request: Request,
    response: Response,
    page: PageDep,
    unit: Unit = ReadUnit(Scope.SEGMENTS_READ),
) -> ListResponse[Tier]:
    """Sort by `created_at` (default), `rank` or `key`, each also descending."""
    tiers = await TierService(unit.session, unit.context).page(page)
    return list_response(request, response, tiers, Tier.model_validate)


@router.get("/{tier_id}", responses=problem_responses(404), summary="Get a loyalty tier")
async def get_tier(
    tier_id: UUID, response: Response, unit: Unit = ReadUnit(Scope.SEGMENTS_READ)
) -> Tier:
    tier = await TierService(unit.session, unit.context).get(tier_id)
    set_etag(response, tier.version)
    return Tier.model_validate(tier)


@router.patch(
    "/{tier_id}", responses=problem_responses(404, 409, 412), summary="Update a loyalty tier"
)
async def update_tier(
    tier_id: UUID,
    body: TierUpdate,
    response: Response,
    if_match: IfMatchDep,
    unit: Unit = WriteUnit(Scope.SEGMENTS_WRITE),
) -> Tier:
    service = TierService(unit.session, unit.context)
    tier = await service.update(tier_id, body, expected_versions=if_match)
    set_etag(response, tier.version)
    return Tier.model_validate(tier)


@router.delete(
    "/{tier_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(404, 412),
    summary="Delete a loyalty tier",
)
async def delete_tier(
    tier_id: UUID, if_match: IfMatchDep, unit: Unit = WriteUnit(Scope.SEGMENTS_WRITE)
) -> None:
    """Its holders move to the next tier down they match, in the background."""
    await TierService(unit.session, unit.context).delete(tier_id, expected_versions=if_match)
