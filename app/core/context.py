"""Who is acting, on which workspace, from which request: handed to every service."""

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Actor:
    """The origin of a change, recorded with every domain event and audit entry."""

    kind: str  # "api_key", "cli", "system" or "workflow"
    api_key_id: UUID | None = None
    request_id: str | None = None
    # Set when a workflow run acts: its events carry their origin, so the workflow engine can
    # refuse to trigger the same workflow on them and stop chains past a depth limit.
    workflow_run_id: UUID | None = None
    workflow_depth: int | None = None

    @classmethod
    def cli(cls) -> "Actor":
        return cls(kind="cli")

    @classmethod
    def system(cls) -> "Actor":
        return cls(kind="system")

    @classmethod
    def workflow(cls, run_id: UUID, depth: int) -> "Actor":
        """A workflow run acting on behalf of the event that started it (`depth` ≥ 1)."""
        return cls(kind="workflow", workflow_run_id=run_id, workflow_depth=depth)


@dataclass(frozen=True, slots=True)
class Context:
    workspace_id: UUID
    actor: Actor
