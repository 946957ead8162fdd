"""Who is acting, on which workspace, from which request: handed to every service."""

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Actor:
    """The origin of a change, recorded with every domain event and audit entry."""

    kind: str  # "api_key", "cli" or "system"
    api_key_id: UUID | None = None
    request_id: str | None = None

    @classmethod
    def cli(cls) -> "Actor":
        return cls(kind="cli")

    @classmethod
    def system(cls) -> "Actor":
        return cls(kind="system")


@dataclass(frozen=True, slots=True)
class Context:
    workspace_id: UUID
    actor: Actor
