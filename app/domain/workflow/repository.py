"""Queries for workflows, their versions and runs."""

from typing import Any, ClassVar
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute

from app.db.repository import WorkspaceRepository
from app.domain.workflow.entities import Workflow, WorkflowRun, WorkflowVersion


class WorkflowRepository(WorkspaceRepository[Workflow]):
    entity = Workflow
    noun = "workflow"
    sortable: ClassVar[dict[str, InstrumentedAttribute[Any]]] = {"name": Workflow.name}

    def add_version(self, workflow: Workflow) -> WorkflowVersion:
        version = WorkflowVersion(
            workspace_id=self.workspace_id,
            workflow_id=workflow.id,
            version=workflow.version,
            name=workflow.name,
            trigger=workflow.trigger,
            conditions=workflow.conditions,
            actions=workflow.actions,
        )
        self.session.add(version)
        return version

    async def versions(self, workflow_id: UUID) -> list[WorkflowVersion]:
        stmt = (
            select(WorkflowVersion)
            .where(
                WorkflowVersion.workspace_id == self.workspace_id,
                WorkflowVersion.workflow_id == workflow_id,
            )
            .order_by(WorkflowVersion.version.desc())
        )
        return list((await self.session.execute(stmt)).scalars())

    async def version(self, workflow_id: UUID, version: int) -> WorkflowVersion | None:
        found: WorkflowVersion | None = await self.session.get(
            WorkflowVersion, (self.workspace_id, workflow_id, version)
        )
        return found


class WorkflowRunRepository(WorkspaceRepository[WorkflowRun]):
    entity = WorkflowRun
    noun = "workflow run"
