"""Custom field definitions: /v1/fields."""

from uuid import UUID

from fastapi import Request, Response, status

from app.api.deps import IfMatchDep, PageDep, ReadUnit, Unit, WriteUnit
from app.api.errors import problem_responses
from app.api.responses import created_at_location, list_response, set_etag
from app.api.v1.routing import resource_router
from app.api.v1.schemas.common import ListResponse
from app.domain.access.scopes import Scope
from app.domain.customer.fields_service import FieldDefinitionService
from app.domain.customer.schemas import (
    FieldDefinition,
    FieldDefinitionCreate,
    FieldDefinitionUpdate,
    FieldObject,
)

router = resource_router("/fields", "custom fields")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
    summary="Define a custom field",
)
async def create_field(
    body: FieldDefinitionCreate,
    request: Request,
    response: Response,
    unit: Unit = WriteUnit(Scope.ADMIN),
) -> FieldDefinition:
    """Values then go under `attributes.<key>` of the object, are validated on every write, and
    can be used in filters as `attributes.<key>`."""
    definition = await FieldDefinitionService(unit.session, unit.context).create(body)
    created_at_location(response, request, definition.id)
    set_etag(response, definition.version)
    return FieldDefinition.model_validate(definition)


@router.get("", summary="List custom fields")
async def list_fields(
    request: Request,
    response: Response,
    page: PageDep,
    object: FieldObject | None = None,
    unit: Unit = ReadUnit(Scope.CUSTOMERS_READ),
) -> ListResponse[FieldDefinition]:
    definitions = await FieldDefinitionService(unit.session, unit.context).page(
        page, object_name=object
    )
    return list_response(request, response, definitions, FieldDefinition.model_validate)


@router.get("/{field_id}", responses=problem_responses(404), summary="Get a custom field")
async def get_field(
    field_id: UUID, response: Response, unit: Unit = ReadUnit(Scope.CUSTOMERS_READ)
) -> FieldDefinition:
    definition = await FieldDefinitionService(unit.session, unit.context).get(field_id)
    set_etag(response, definition.version)
    return FieldDefinition.model_validate(definition)


@router.patch(
    "/{field_id}", responses=problem_responses(404, 412), summary="Change a field's label or rules"
)
async def update_field(
    field_id: UUID,
    body: FieldDefinitionUpdate,
    response: Response,
    if_match: IfMatchDep,
    unit: Unit = WriteUnit(Scope.ADMIN),
) -> FieldDefinition:
    definition = await FieldDefinitionService(unit.session, unit.context).update(
        field_id, body, expected_versions=if_match
    )
    set_etag(response, definition.version)
    return FieldDefinition.model_validate(definition)


@router.delete(
    "/{field_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(404, 412),
    summary="Remove a custom field and its values",
)
async def delete_field(
    field_id: UUID, if_match: IfMatchDep, unit: Unit = WriteUnit(Scope.ADMIN)
) -> None:
    await FieldDefinitionService(unit.session, unit.context).delete(
        field_id, expected_versions=if_match
    )
