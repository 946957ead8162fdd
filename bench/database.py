"""A fresh, migrated and seeded database per run: a temporary SQLite file or a new PostgreSQL DB."""

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import asyncpg
from sqlalchemy.engine import make_url

from app.config import Settings
from app.core.context import Actor, Context
from app.db import migrations
from app.db.session import create_database
from app.domain.access.schemas import ApiKeyCreate, UserCreate
from app.domain.access.scopes import Scope
from app.domain.access.service import ApiKeyService, UserService, WorkspaceService

POSTGRES_URL_VARIABLES = ("KOKYAKU_BENCH_POSTGRES_URL", "KOKYAKU_TEST_POSTGRES_URL")
SEEDED_USERS = 1000


@dataclass(frozen=True, slots=True)
class Fixture:
    """What the scenarios may rely on in a seeded database."""

    database: str  # "sqlite" or "postgresql"
    url: str
    api_key: str  # an admin key's secret, for our app's Authorization header
    user_ids: tuple[UUID, ...]


def postgres_url() -> str | None:
    """The server to create benchmark databases on, from the environment, if any."""
    for variable in POSTGRES_URL_VARIABLES:
        if value := os.environ.get(variable):
            return value
    return None


@contextmanager
def fresh_database(kind: str, workdir: Path) -> Iterator[str]:
    """The URL of an empty database of `kind`, removed again when the block ends."""
    if kind == "sqlite":
        # Four slashes: an absolute path. The file goes when `workdir` does.
        yield f"sqlite+aiosqlite:///{workdir.resolve() / 'bench.db'}"
        return
    server_url = postgres_url()
    if server_url is None:
        names = " or ".join(POSTGRES_URL_VARIABLES)
        raise RuntimeError(f"set {names} to benchmark PostgreSQL")
    name = f"kokyaku_bench_{secrets.token_hex(6)}"
    # Hex only, so the identifier needs no escaping; quoted all the same.
    asyncio.run(_execute_on_server(server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(
            _execute_on_server(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        )


async def _execute_on_server(server_url: str, statement: str) -> None:
    # asyncpg speaks libpq URLs, which name no SQLAlchemy driver.
    dsn = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def prepare(kind: str, url: str) -> Fixture:
    """Migrates the database at `url` and seeds it through the app's own services."""
    # Alembic's env.py runs its own event loop, so this has to happen outside of ours.
    migrations.upgrade(url)
    api_key, user_ids = asyncio.run(_seed(url))
    return Fixture(database=kind, url=url, api_key=api_key, user_ids=user_ids)


async def _seed(url: str) -> tuple[str, tuple[UUID, ...]]:
    database = create_database(Settings(database_url=url), pooled=False)
    try:
        async with database.writer() as session, session.begin():
            workspace = await WorkspaceService(session, Actor.cli()).create("bench")
            context = Context(workspace.id, Actor.cli())
            _, secret = await ApiKeyService(session, context).create(
                ApiKeyCreate(name="bench", scopes=[Scope.ADMIN])
            )
            users = UserService(session, context)
            user_ids = []
            for i in range(SEEDED_USERS):
                user = await users.create(
                    UserCreate(name=f"利用者 {i}", email=f"user{i}@example.jp", role="sales")
                )
                user_ids.append(user.id)
    finally:
        await database.dispose()
    return secret, tuple(user_ids)
