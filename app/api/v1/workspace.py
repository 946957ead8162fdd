"""The caller's own workspace: /v1/workspace."""

from fastapi import Response

from app.api.deps import IfMatchDep, ReadUnit, Unit, WriteUnit
from app.api.errors import problem_responses
from app.api.responses import set_etag
from app.api.v1.routing import resource_router
from app.domain.access.schemas import Workspace, WorkspaceUpdate
from app.domain.access.scopes import Scope
from app.domain.access.service import WorkspaceService

router = resource_router("/workspace", "workspace")


@router.get("", summary="Get the workspace this key belongs to")
async def get_workspace(response: Response, unit: Unit = ReadUnit(Scope.ADMIN)) -> Workspace:
    workspace = await WorkspaceService(unit.session, unit.context.actor).get(
        unit.context.workspace_id
    )
    set_etag(response, workspace.version)
    return Workspace.model_validate(workspace)


@router.patch(
    "",
    responses=problem_responses(409, 412),
    summary="Rename the workspace or change its lifecycle stages",
)
async def update_workspace(
    body: WorkspaceUpdate,
    response: Response,
    if_match: IfMatchDep,
    unit: Unit = WriteUnit(Scope.ADMIN),
) -> Workspace:
    workspace = await WorkspaceService(unit.session, unit.context.actor).update(
        unit.context.workspace_id, body, expected_versions=if_match
    )
    set_etag(response, workspace.version)
    return Workspace.model_validate(workspace)
