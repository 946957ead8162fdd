"""API keys of the caller's workspace: /v1/api-keys (admin scope)."""

from uuid import UUID

from fastapi import Request, Response, status

from app.api.deps import PageDep, ReadUnit, Unit, WriteUnit, get_authenticator
from app.api.errors import problem_responses
from app.api.responses import created_at_location, list_response
from app.api.v1.routing import resource_router
from app.api.v1.schemas.common import ListResponse
from app.domain.access.schemas import ApiKey, ApiKeyCreate, ApiKeyCreated
from app.domain.access.scopes import Scope
from app.domain.access.service import ApiKeyService

router = resource_router("/api-keys", "api keys")


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create an API key")
async def create_api_key(
    body: ApiKeyCreate, request: Request, response: Response, unit: Unit = WriteUnit(Scope.ADMIN)
) -> ApiKeyCreated:
    key, secret = await ApiKeyService(unit.session, unit.context).create(body)
    created_at_location(response, request, key.id)
    return ApiKeyCreated.model_validate({**ApiKey.snapshot(key), "secret": secret})


@router.get("", summary="List API keys")
async def list_api_keys(
    request: Request, response: Response, page: PageDep, unit: Unit = ReadUnit(Scope.ADMIN)
) -> ListResponse[ApiKey]:
    keys = await ApiKeyService(unit.session, unit.context).page(page)
    return list_response(request, response, keys, ApiKey.model_validate)


@router.get("/{api_key_id}", responses=problem_responses(404), summary="Get an API key")
async def get_api_key(api_key_id: UUID, unit: Unit = ReadUnit(Scope.ADMIN)) -> ApiKey:
    return ApiKey.model_validate(await ApiKeyService(unit.session, unit.context).get(api_key_id))


@router.delete(
    "/{api_key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(404),
    summary="Revoke an API key",
    description="The key stops working at once. It stays listed, with `revoked_at` set.",
)
async def revoke_api_key(
    api_key_id: UUID, request: Request, unit: Unit = WriteUnit(Scope.ADMIN)
) -> None:
    await ApiKeyService(unit.session, unit.context).revoke(api_key_id)
    get_authenticator(request).forget_key(api_key_id)
