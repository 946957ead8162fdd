"""Team members: /v1/users."""

from typing import Annotated
from uuid import UUID

from fastapi import Query, Request, Response, status

from app.api.deps import IfMatchDep, PageDep, ReadUnit, Unit, WriteUnit
from app.api.errors import problem_responses
from app.api.responses import created_at_location, list_response, set_etag
from app.api.v1.routing import resource_router
from app.api.v1.schemas.common import ListResponse
from app.domain.access.schemas import User, UserCreate, UserUpdate
from app.domain.access.scopes import Scope
from app.domain.access.service import UserService

router = resource_router("/users", "users")


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses=problem_responses(409), summary="Add a user"
)
async def create_user(
    body: UserCreate,
    request: Request,
    response: Response,
    unit: Unit = WriteUnit(Scope.USERS_WRITE),
) -> User:
    user = await UserService(unit.session, unit.context).create(body)
    created_at_location(response, request, user.id)
    set_etag(response, user.version)
    return User.model_validate(user)


@router.get("", summary="List users")
async def list_users(
    request: Request,
    response: Response,
    page: PageDep,
    role: Annotated[str | None, Query(max_length=50)] = None,
    active: bool | None = None,
    unit: Unit = ReadUnit(Scope.USERS_READ),
) -> ListResponse[User]:
    users = await UserService(unit.session, unit.context).page(page, role=role, active=active)
    return list_response(request, response, users, User.model_validate)


@router.get("/{user_id}", responses=problem_responses(404), summary="Get a user")
async def get_user(
    user_id: UUID, response: Response, unit: Unit = ReadUnit(Scope.USERS_READ)
) -> User:
    user = await UserService(unit.session, unit.context).get(user_id)
    set_etag(response, user.version)
    return User.model_validate(user)


@router.patch("/{user_id}", responses=problem_responses(404, 409, 412), summary="Update a user")
async def update_user(
    user_id: UUID,
    body: UserUpdate,
    response: Response,
    if_match: IfMatchDep,
    unit: Unit = WriteUnit(Scope.USERS_WRITE),
) -> User:
    service = UserService(unit.session, unit.context)
    user = await service.update(user_id, body, expected_versions=if_match)
    set_etag(response, user.version)
    return User.model_validate(user)


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(404, 412),
    summary="Remove a user",
)
async def delete_user(
    user_id: UUID, if_match: IfMatchDep, unit: Unit = WriteUnit(Scope.USERS_WRITE)
) -> None:
    await UserService(unit.session, unit.context).delete(user_id, expected_versions=if_match)
