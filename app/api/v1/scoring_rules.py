"""Lead scoring: /v1/scoring-rules (points per filter, with optional decay) and the score
thresholds whose crossing is announced."""

from uuid import UUID

from fastapi import Request, Response, status

from app.api.deps import IfMatchDep, PageDep, ReadUnit, Unit, WriteUnit
from app.api.errors import problem_responses
from app.api.responses import created_at_location, list_response, set_etag
from app.api.v1.routing import resource_router
from app.api.v1.schemas.common import ListResponse
from app.domain.access.scopes import Scope
from app.domain.segment.standing_schemas import (
    ScoreThresholds,
    ScoreThresholdsRead,
    ScoringRule,
    ScoringRuleCreate,
    ScoringRuleUpdate,
)
from app.domain.segment.standing_service import ScoringService

router = resource_router("/scoring-rules", "scoring")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
    summary="Create a scoring rule",
)
async def create_scoring_rule(
    body: ScoringRuleCreate,
    request: Request,
    response: Response,
    unit: Unit = WriteUnit(Scope.SEGMENTS_WRITE),
) -> ScoringRule:
    """A customer's `score` is the sum of the points of the rules they match; with
    `half_life_days` a rule's points halve every so many days since the newest row of its
    behaviour condition. Every customer is scored again in the background."""
    rule = await ScoringService(unit.session, unit.context).create(body)
    created_at_location(response, request, rule.id)
    set_etag(response, rule.version)
    return ScoringRule.model_validate(rule)


@router.get("", summary="List scoring rules")
async def list_scoring_rules(
    request: Request,
    response: Response,
    page: PageDep,
    unit: Unit = ReadUnit(Scope.SEGMENTS_READ),
) -> ListResponse[ScoringRule]:
    """Sort by `created_at` (default), `name` or `points`, each also descending."""
    rules = await ScoringService(unit.session, unit.context).page(page)
    return list_response(request, response, rules, ScoringRule.model_validate)


@router.get("/thresholds", summary="The score thresholds")
async def get_score_thresholds(
    unit: Unit = ReadUnit(Scope.SEGMENTS_READ),
) -> ScoreThresholdsRead:
    thresholds = await ScoringService(unit.session, unit.context).thresholds()
    return ScoreThresholdsRead(thresholds=thresholds)


@router.put("/thresholds", summary="Replace the score thresholds")
async def put_score_thresholds(
    body: ScoreThresholds, unit: Unit = WriteUnit(Scope.SEGMENTS_WRITE)
) -> ScoreThresholdsRead:
    """`customer.score_changed` is emitted when a customer's score reaches one of these from
    below, or falls below one; other changes of the score are not announced. The list is
    kept sorted and without repeats."""
    service = ScoringService(unit.session, unit.context)
    return ScoreThresholdsRead(thresholds=await service.set_thresholds(body.thresholds))


@router.get("/{rule_id}", responses=problem_responses(404), summary="Get a scoring rule")
async def get_scoring_rule(
    rule_id: UUID, response: Response, unit: Unit = ReadUnit(Scope.SEGMENTS_READ)
) -> ScoringRule:
    rule = await ScoringService(unit.session, unit.context).get(rule_id)
    set_etag(response, rule.version)
    return ScoringRule.model_validate(rule)


@router.patch(
    "/{rule_id}", responses=problem_responses(404, 409, 412), summary="Update a scoring rule"
)
async def update_scoring_rule(
    rule_id: UUID,
    body: ScoringRuleUpdate,
    response: Response,
    if_match: IfMatchDep,
    unit: Unit = WriteUnit(Scope.SEGMENTS_WRITE),
) -> ScoringRule:
    service = ScoringService(unit.session, unit.context)
    rule = await service.update(rule_id, body, expected_versions=if_match)
    set_etag(response, rule.version)
    return ScoringRule.model_validate(rule)


@router.delete(
    "/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(404, 412),
    summary="Delete a scoring rule",
)
async def delete_scoring_rule(
    rule_id: UUID, if_match: IfMatchDep, unit: Unit = WriteUnit(Scope.SEGMENTS_WRITE)
) -> None:
    await ScoringService(unit.session, unit.context).delete(rule_id, expected_versions=if_match)
