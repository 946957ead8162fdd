"""Workflows, their versions, runs and dry-runs: /v1/workflows (scope workflows:manage)."""

from typing import Annotated
from uuid import UUID

from fastapi import Depends, Query, Request, Response, status

from app.api.deps import IfMatchDep, PageDep, ReadUnit, Unit, WriteUnit, page_params
from app.api.errors import problem_responses
from app.api.responses import created_at_location, list_response, set_etag
from app.api.v1.routing import resource_router
from app.api.v1.schemas.common import ListResponse
from app.db.pagination import PageRequest
from app.domain.access.scopes import Scope
from app.domain.workflow.schemas import (
    DryRun,
    DryRunRequest,
    RunRequest,
    Workflow,
    WorkflowCreate,
    WorkflowRun,
    WorkflowUpdate,
    WorkflowVersion,
)
from app.domain.workflow.service import WorkflowService

router = resource_router("/workflows", "workflows")
NewestFirst = Annotated[PageRequest, Depends(page_params("-created_at"))]


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a workflow")
async def create_workflow(
    body: WorkflowCreate,
    request: Request,
    response: Response,
    unit: Unit = WriteUnit(Scope.WORKFLOWS_MANAGE),
) -> Workflow:
    """The trigger, conditions and every object an action names (endpoint, user, stage,
    custom field, template path) are checked within the workspace: a bad one answers 422
    naming its place in the body."""
    workflow = await WorkflowService(unit.session, unit.context).create(body)
    created_at_location(response, request, workflow.id)
    set_etag(response, workflow.version)
    return Workflow.model_validate(workflow)


@router.get("", summary="List workflows")
async def list_workflows(
    request: Request,
    response: Response,
    page: PageDep,
    enabled: bool | None = None,
    unit: Unit = ReadUnit(Scope.WORKFLOWS_MANAGE),
) -> ListResponse[Workflow]:
    workflows = await WorkflowService(unit.session, unit.context).page(page, enabled=enabled)
    return list_response(request, response, workflows, Workflow.model_validate)


@router.get("/{workflow_id}", responses=problem_responses(404), summary="Get a workflow")
async def get_workflow(
    workflow_id: UUID, response: Response, unit: Unit = ReadUnit(Scope.WORKFLOWS_MANAGE)
) -> Workflow:
    workflow = await WorkflowService(unit.session, unit.context).get(workflow_id)
    set_etag(response, workflow.version)
    return Workflow.model_validate(workflow)


@router.patch("/{workflow_id}", responses=problem_responses(404, 412), summary="Update a workflow")
async def update_workflow(
    workflow_id: UUID,
    body: WorkflowUpdate,
    response: Response,
    if_match: IfMatchDep,
    unit: Unit = WriteUnit(Scope.WORKFLOWS_MANAGE),
) -> Workflow:
    """Each change saves a new version; runs already started finish with the version they
    started with. `{"enabled": false}` stops new runs."""
    workflow = await WorkflowService(unit.session, unit.context).update(
        workflow_id, body, expected_versions=if_match
    )
    set_etag(response, workflow.version)
    return Workflow.model_validate(workflow)


@router.delete(
    "/{workflow_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(404, 412),
    summary="Delete a workflow and its runs",
)
async def delete_workflow(
    workflow_id: UUID, if_match: IfMatchDep, unit: Unit = WriteUnit(Scope.WORKFLOWS_MANAGE)
) -> None:
    await WorkflowService(unit.session, unit.context).delete(
        workflow_id, expected_versions=if_match
    )


@router.get(
    "/{workflow_id}/versions",
    responses=problem_responses(404),
    summary="Every saved definition, newest first",
)
async def list_workflow_versions(
    workflow_id: UUID, unit: Unit = ReadUnit(Scope.WORKFLOWS_MANAGE)
) -> list[WorkflowVersion]:
    versions = await WorkflowService(unit.session, unit.context).versions(workflow_id)
    return [WorkflowVersion.model_validate(version) for version in versions]


@router.post(
    "/{workflow_id}/dry-run",
    responses=problem_responses(404),
    summary="What the workflow would do, writing nothing",
)
async def dry_run_workflow(
    workflow_id: UUID, body: DryRunRequest, unit: Unit = ReadUnit(Scope.WORKFLOWS_MANAGE)
) -> DryRun:
    """For a recorded event (`event_id`, from the event feed) or a subject (`subject_id`: a
    customer, or a deal for deal triggers): whether the conditions hold and each action with
    its values resolved (the owner a round-robin would pick, a rendered payload, due times)."""
    return await WorkflowService(unit.session, unit.context).dry_run(workflow_id, body)


@router.get("/{workflow_id}/runs", responses=problem_responses(404), summary="Runs, newest first")
async def list_workflow_runs(
    workflow_id: UUID,
    request: Request,
    response: Response,
    page: NewestFirst,
    status: Annotated[
        str | None, Query(pattern=r"^(pending|running|waiting|succeeded|failed)$")
    ] = None,
    unit: Unit = ReadUnit(Scope.WORKFLOWS_MANAGE),
) -> ListResponse[WorkflowRun]:
    runs = await WorkflowService(unit.session, unit.context).runs_page(
        workflow_id, page, status=status
    )
    return list_response(request, response, runs, WorkflowRun.model_validate)


@router.post(
    "/{workflow_id}/runs",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(404),
    summary="Start a run now for a subject",
)
async def start_workflow_run(
    workflow_id: UUID, body: RunRequest, unit: Unit = WriteUnit(Scope.WORKFLOWS_MANAGE)
) -> WorkflowRun:
    """Runs the workflow's actions for this customer (or deal) now, without a triggering event
    and without checking the conditions: you chose the subject. Follow it under `/runs`."""
    run = await WorkflowService(unit.session, unit.context).start(workflow_id, body.subject_id)
    return WorkflowRun.model_validate(run)


@router.get(
    "/{workflow_id}/runs/{run_id}",
    responses=problem_responses(404),
    summary="A run with each action's outcome",
)
async def get_workflow_run(
    workflow_id: UUID, run_id: UUID, unit: Unit = ReadUnit(Scope.WORKFLOWS_MANAGE)
) -> WorkflowRun:
    run = await WorkflowService(unit.session, unit.context).run(workflow_id, run_id)
    return WorkflowRun.model_validate(run)
