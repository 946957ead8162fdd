"""Interactions: /v1/interactions (notes, calls, emails, meetings, support, surveys, tasks)."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import Query, Request, Response, status

from app.api.deps import IfMatchDep, PageDep, ReadUnit, Unit, WriteUnit
from app.api.errors import problem_responses
from app.api.responses import created_at_location, list_response, set_etag
from app.api.v1.routing import resource_router
from app.api.v1.schemas.common import ListResponse
from app.domain.access.scopes import Scope
from app.domain.interaction.schemas import (
    Interaction,
    InteractionCreate,
    InteractionType,
    InteractionUpdate,
)
from app.domain.interaction.service import InteractionQuery, InteractionService

router = resource_router("/interactions", "interactions")


@router.post("", status_code=status.HTTP_201_CREATED, summary="Log an interaction or a task")
async def create_interaction(
    body: InteractionCreate,
    request: Request,
    response: Response,
    unit: Unit = WriteUnit(Scope.INTERACTIONS_WRITE),
) -> Interaction:
    interaction = await InteractionService(unit.session, unit.context).create(body)
    created_at_location(response, request, interaction.id)
    set_etag(response, interaction.version)
    return Interaction.model_validate(interaction)


@router.get("", summary="List interactions")
async def list_interactions(
    request: Request,
    response: Response,
    page: PageDep,
    type: InteractionType | None = None,
    customer_id: UUID | None = None,
    company_id: UUID | None = None,
    owner_id: UUID | None = None,
    assignee_id: UUID | None = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    due_before: datetime | None = None,
    due_after: datetime | None = None,
    occurred_after: datetime | None = None,
    occurred_before: datetime | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Searches subject and body")] = None,
    unit: Unit = ReadUnit(Scope.INTERACTIONS_READ),
) -> ListResponse[Interaction]:
    """ "My overdue tasks": `?type=task&assignee_id=<me>&status=open&due_before=<now>&sort=due_at`.
    Sort by `created_at` (default), `occurred_at`, `updated_at` or `due_at` (tasks without a due
    time last), each also descending."""
    query = InteractionQuery(
        type=type,
        customer_id=customer_id,
        company_id=company_id,
        owner_id=owner_id,
        assignee_id=assignee_id,
        status=status,
        due_before=due_before,
        due_after=due_after,
        occurred_after=occurred_after,
        occurred_before=occurred_before,
        q=q,
    )
    interactions = await InteractionService(unit.session, unit.context).page(page, query)
    return list_response(request, response, interactions, Interaction.model_validate)


@router.get("/{interaction_id}", responses=problem_responses(404), summary="Get an interaction")
async def get_interaction(
    interaction_id: UUID, response: Response, unit: Unit = ReadUnit(Scope.INTERACTIONS_READ)
) -> Interaction:
    interaction = await InteractionService(unit.session, unit.context).get(interaction_id)
    set_etag(response, interaction.version)
    return Interaction.model_validate(interaction)


@router.patch(
    "/{interaction_id}",
    responses=problem_responses(404, 412),
    summary="Update an interaction (e.g. complete a task)",
)
async def update_interaction(
    interaction_id: UUID,
    body: InteractionUpdate,
    response: Response,
    if_match: IfMatchDep,
    unit: Unit = WriteUnit(Scope.INTERACTIONS_WRITE),
) -> Interaction:
    interaction = await InteractionService(unit.session, unit.context).update(
        interaction_id, body, expected_versions=if_match
    )
    set_etag(response, interaction.version)
    return Interaction.model_validate(interaction)


@router.delete(
    "/{interaction_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(404, 412),
    summary="Delete an interaction",
)
async def delete_interaction(
    interaction_id: UUID, if_match: IfMatchDep, unit: Unit = WriteUnit(Scope.INTERACTIONS_WRITE)
) -> None:
    await InteractionService(unit.session, unit.context).delete(
        interaction_id, expected_versions=if_match
    )
