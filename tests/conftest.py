"""Shared fixtures: every storage test runs on SQLite, and on PostgreSQL when
KOKYAKU_TEST_POSTGRES_URL is set. Tests isolate themselves by working in a workspace of their own.
"""

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from app.config import Settings
from app.core.context import Actor, Context
from app.db import migrations
from app.db.session import Database
from app.domain.access.schemas import ApiKeyCreate
from app.domain.access.scopes import Scope
from app.domain.access.service import ApiKeyService, WorkspaceService
from app.main import create_app

POSTGRES_URL = os.environ.get("KOKYAKU_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", *(["postgresql"] if POSTGRES_URL else [])]


async def _admin_connection(url: str) -> asyncpg.Connection:
    parsed = make_url(url).set(drivername="postgresql")
    return await asyncpg.connect(parsed.render_as_string(hide_password=False))


def free_port() -> int:
    """A loopback port nobody listens on now (for servers and receivers started by tests)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def create_postgres_database(url: str) -> str:
    """A new, empty database on the server of `url`; returns its URL."""
    name = f"kokyaku_test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        connection = await _admin_connection(url)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    asyncio.run(create())
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database

    async def drop() -> None:
        connection = await _admin_connection(POSTGRES_URL or url)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    asyncio.run(drop())


def empty_database_url(backend: str, directory: Path) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{directory / f'{uuid.uuid4().hex}.db'}"
    assert POSTGRES_URL is not None
    return create_postgres_database(POSTGRES_URL)


def discard_database(url: str) -> None:
    if url.startswith("postgresql"):
        drop_postgres_database(url)


@pytest.fixture
def unmigrated_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of `backend` for this test alone."""
    url = empty_database_url(backend, tmp_path)
    yield url
    discard_database(url)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of `backend`, migrated to head, shared by the session's tests."""
    url = empty_database_url(backend, tmp_path_factory.mktemp(backend))
    migrations.upgrade(url)
    yield url
    discard_database(url)


def settings_for(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "rate_limit": 1_000_000,
        "access_log": False,
        "api_key_cache_seconds": 0,
        # Tests run the dispatcher themselves, against receivers on this machine.
        "dispatcher": "off",
        "webhook_allow_private": True,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(settings_for(database_url))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
def database(app: FastAPI) -> Database:
    db: Database = app.state.database
    return db


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kokyaku.test") as http:
        yield http


@dataclass(frozen=True)
class Tenant:
    """A workspace of a test's own, with an admin key."""

    id: uuid.UUID
    name: str
    secret: str
    database: Database

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}

    async def key(self, *scopes: Scope | str, **fields: object) -> str:
        """The secret of a new key of this workspace with `scopes`."""
        async with self.database.writer() as session, session.begin():
            service = ApiKeyService(session, Context(self.id, Actor.cli()))
            data = ApiKeyCreate.model_validate(
                {"name": "test", "scopes": [str(scope) for scope in scopes], **fields}
            )
            _, secret = await service.create(data)
        return secret

    async def headers_with(self, *scopes: Scope | str) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.key(*scopes)}"}


async def make_tenant(database: Database) -> Tenant:
    name = f"test-{uuid.uuid4().hex[:10]}"
    async with database.writer() as session, session.begin():
        workspace = await WorkspaceService(session, Actor.cli()).create(name)
        keys = ApiKeyService(session, Context(workspace.id, Actor.cli()))
        _, secret = await keys.create(ApiKeyCreate(name="admin", scopes=[Scope.ADMIN]))
    return Tenant(id=workspace.id, name=name, secret=secret, database=database)


@pytest.fixture
async def tenant(database: Database) -> Tenant:
    return await make_tenant(database)


@pytest.fixture
async def other_tenant(database: Database) -> Tenant:
    return await make_tenant(database)
