"""Rules for workspaces, API keys and team members."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.context import Actor, Context
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.etags import ensure_version
from app.db.pagination import Page, PageRequest
from app.domain.access import schemas
from app.domain.access.entities import ApiKey, User, Workspace
from app.domain.access.repository import ApiKeyRepository, UserRepository, WorkspaceDirectory
from app.domain.access.scopes import Scope
from app.domain.outbox.service import EventRecorder, changes_between
from app.domain.pipeline.service import PipelineService

API_KEY_PREFIX = "kky_"
DEFAULT_WORKSPACE = "default"


def hash_secret(secret: str) -> str:
    # Keys carry 256 random bits, so a fast hash is safe here and keeps lookups cheap.
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated API key: what it may do, and in which workspace."""

    api_key_id: UUID
    workspace_id: UUID
    scopes: frozenset[str]
    expires_at: datetime | None


async def authenticate(session: AsyncSession, secret: str) -> Principal | None:
    """The key behind `secret`, or None when it is unknown or revoked (expiry is the caller's)."""
    if not secret.startswith(API_KEY_PREFIX):
        return None
    key = await WorkspaceDirectory(session).api_key_by_secret_hash(hash_secret(secret))
    if key is None or key.revoked_at is not None:
        return None
    return Principal(
        api_key_id=key.id,
        workspace_id=key.workspace_id,
        scopes=frozenset(key.scopes),
        expires_at=key.expires_at,
    )


class WorkspaceService:
    def __init__(self, session: AsyncSession, actor: Actor) -> None:
        self.session = session
        self.directory = WorkspaceDirectory(session)
        self.actor = actor

    async def create(self, name: str) -> Workspace:
        if await self.directory.by_name(name) is not None:
            raise Conflict(f"A workspace named {name!r} exists already.")
        workspace = Workspace(name=name)
        self.directory.add(workspace)
        await self.session.flush()
        context = Context(workspace.id, self.actor)
        EventRecorder(self.session, context).record(
            "workspace.created",
            subject_type="workspace",
            subject_id=workspace.id,
            data=schemas.Workspace.snapshot(workspace),
        )
        await PipelineService(self.session, context).create_default()
        return workspace

    async def get(self, workspace_id: UUID) -> Workspace:
        workspace = await self.directory.by_id(workspace_id)
        if workspace is None:
            raise NotFound("workspace", workspace_id)
        return workspace

    async def by_name(self, name: str) -> Workspace:
        workspace = await self.directory.by_name(name)
        if workspace is None:
            raise NotFound("workspace", name)
        return workspace

    async def page(self) -> list[Workspace]:
        return await self.directory.all()

    async def update(
        self,
        workspace_id: UUID,
        data: schemas.WorkspaceUpdate,
        *,
        expected_versions: frozenset[int] | None,
    ) -> Workspace:
        workspace = await self.get(workspace_id)
        ensure_version(workspace.version, expected_versions)
        changes = data.model_dump(exclude_unset=True)
        name = changes.get("name", workspace.name)
        if name != workspace.name and await self.directory.by_name(name) is not None:
            raise Conflict(f"A workspace named {name!r} exists already.")
        if "lifecycle_stages" in changes:
            stages = list(dict.fromkeys(changes["lifecycle_stages"]))
            changes["lifecycle_stages"] = stages
        before = schemas.Workspace.snapshot(workspace)
        for field, value in changes.items():
            setattr(workspace, field, value)
        await self.session.flush()
        after = schemas.Workspace.snapshot(workspace)
        if diff := changes_between(before, after):
            EventRecorder(self.session, Context(workspace.id, self.actor)).record(
                "workspace.updated",
                subject_type="workspace",
                subject_id=workspace.id,
                data=after,
                changes=diff,
            )
        return workspace

    async def bootstrap(self) -> str | None:
        """On an empty database, a default workspace and the secret of its first admin key."""
        if await self.directory.any_exists():
            return None
        workspace = await self.create(DEFAULT_WORKSPACE)
        keys = ApiKeyService(self.session, Context(workspace.id, self.actor))
        _, secret = await keys.create(schemas.ApiKeyCreate(name="admin", scopes=[Scope.ADMIN]))
        return secret


class ApiKeyService:
    def __init__(self, session: AsyncSession, context: Context) -> None:
        self.session = session
        self.keys = ApiKeyRepository(session, context.workspace_id)
        self.events = EventRecorder(session, context)

    async def create(self, data: schemas.ApiKeyCreate) -> tuple[ApiKey, str]:
        """The new key and its secret, which is not kept and cannot be shown again."""
        if data.expires_at is not None and data.expires_at <= utcnow():
            raise ValidationFailed.at(("body", "expires_at"), "The expiry must be in the future.")
        secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
        key = self.keys.add(
            ApiKey(
                name=data.name,
                prefix=secret[: len(API_KEY_PREFIX) + 8],
                secret_hash=hash_secret(secret),
                scopes=sorted(set(data.scopes)),
                expires_at=data.expires_at,
            )
        )
        await self.session.flush()
        self.events.record(
            "api_key.created",
            subject_type="api_key",
            subject_id=key.id,
            data=schemas.ApiKey.snapshot(key),
        )
        return key, secret

    async def get(self, key_id: UUID) -> ApiKey:
        return await self.keys.require(key_id)

    async def page(self, page: PageRequest) -> Page[ApiKey]:
        return await self.keys.page(self.keys.select(), page)

    async def revoke(self, key_id: UUID) -> ApiKey:
        key = await self.get(key_id)
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            await self.session.flush()
            self.events.record(
                "api_key.revoked",
                subject_type="api_key",
                subject_id=key.id,
                data=schemas.ApiKey.snapshot(key),
            )
        return key


class UserService:
    def __init__(self, session: AsyncSession, context: Context) -> None:
        self.session = session
        self.users = UserRepository(session, context.workspace_id)
        self.events = EventRecorder(session, context)

    async def create(self, data: schemas.UserCreate) -> User:
        await self._ensure_email_free(data.email)
        user = self.users.add(User(**data.model_dump()))
        await self._flush_unique()
        self.events.record(
            "user.created",
            subject_type="user",
            subject_id=user.id,
            data=schemas.User.snapshot(user),
        )
        return user

    async def get(self, user_id: UUID) -> User:
        return await self.users.require(user_id)

    async def page(self, page: PageRequest, *, role: str | None, active: bool | None) -> Page[User]:
        stmt = self.users.select()
        if role is not None:
            stmt = stmt.where(User.role == role)
        if active is not None:
            stmt = stmt.where(User.active == active)
        return await self.users.page(stmt, page)

    async def update(
        self, user_id: UUID, data: schemas.UserUpdate, *, expected_versions: frozenset[int] | None
    ) -> User:
        user = await self.get(user_id)
        ensure_version(user.version, expected_versions)
        changes = data.model_dump(exclude_unset=True)
        if "email" in changes and changes["email"] != user.email:
            await self._ensure_email_free(changes["email"])
        before = schemas.User.snapshot(user)
        for field, value in changes.items():
            setattr(user, field, value)
        await self._flush_unique()
        after = schemas.User.snapshot(user)
        if diff := changes_between(before, after):
            self.events.record(
                "user.updated", subject_type="user", subject_id=user.id, data=after, changes=diff
            )
        return user

    async def delete(self, user_id: UUID, *, expected_versions: frozenset[int] | None) -> None:
        user = await self.get(user_id)
        ensure_version(user.version, expected_versions)
        data = schemas.User.snapshot(user)
        await self.users.delete(user)
        await self.session.flush()
        self.events.record("user.deleted", subject_type="user", subject_id=user_id, data=data)

    async def _ensure_email_free(self, email: str) -> None:
        existing = await self.users.by_email(email)
        if existing is not None:
            raise Conflict(
                f"A user with email {email} exists already.", existing_id=str(existing.id)
            )

    async def _flush_unique(self) -> None:
        # A concurrent request can take the email between the check and the insert.
        try:
            await self.session.flush()
        except IntegrityError as error:
            raise Conflict("A user with this email exists already.") from error
