"""Queries for workspaces, API keys and users."""

from typing import Any, ClassVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.db.repository import WorkspaceRepository
from app.domain.access.entities import ApiKey, User, Workspace


class WorkspaceDirectory:
    """Workspaces themselves: the only queries that are not scoped by a workspace."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_name(self, name: str) -> Workspace | None:
        result = await self.session.execute(select(Workspace).where(Workspace.name == name))
        return result.scalar_one_or_none()

    async def by_id(self, workspace_id: Any) -> Workspace | None:
        return await self.session.get(Workspace, workspace_id)

    async def any_exists(self) -> bool:
        result = await self.session.execute(select(Workspace.id).limit(1))
        return result.first() is not None

    async def all(self) -> list[Workspace]:
        result = await self.session.execute(select(Workspace).order_by(Workspace.name))
        return list(result.scalars().all())

    def add(self, workspace: Workspace) -> None:
        self.session.add(workspace)

    async def api_key_by_secret_hash(self, secret_hash: str) -> ApiKey | None:
        """Authentication finds the key, and through it the workspace, from the secret alone."""
        result = await self.session.execute(select(ApiKey).where(ApiKey.secret_hash == secret_hash))
        return result.scalar_one_or_none()


class ApiKeyRepository(WorkspaceRepository[ApiKey]):
    entity = ApiKey
    noun = "API key"
    sortable: ClassVar[dict[str, InstrumentedAttribute[Any]]] = {"name": ApiKey.name}


class UserRepository(WorkspaceRepository[User]):
    entity = User
    noun = "user"
    sortable: ClassVar[dict[str, InstrumentedAttribute[Any]]] = {
        "name": User.name,
        "email": User.email,
    }

    async def by_email(self, email: str) -> User | None:
        result = await self.session.execute(self.select().where(User.email == email))
        return result.scalar_one_or_none()
