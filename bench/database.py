"""A fresh, migrated and seeded database per run: a temporary SQLite file or a new PostgreSQL DB.

The workspace, its API key, users and companies are written through the app's services; the
customers, too many for that, are bulk-loaded by `bench.data` in the form the service stores.
"""

import asyncio
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.core.context import Actor, Context
from app.db import migrations
from app.db.session import create_database
from app.domain.access.entities import Workspace
from app.domain.access.schemas import ApiKeyCreate, UserCreate
from app.domain.access.scopes import Scope
from app.domain.access.service import ApiKeyService, UserService, WorkspaceService
from app.seed import seed_companies
from bench.commerce import OrderLoad, load_orders
from bench.crm import DealLoad, load_deals, load_timeline
from bench.data import LoadReport, asyncpg_dsn, compare_with_service, list_cursors, load_customers

POSTGRES_URL_VARIABLES = ("KOKYAKU_BENCH_POSTGRES_URL", "KOKYAKU_TEST_POSTGRES_URL")
BENCH_WORKSPACE = "bench"
SEEDED_USERS = 1000
# Companies for a tenth of the customers to belong to: one per thousand customers, within bounds.
MIN_COMPANIES, MAX_COMPANIES = 10, 200
# What scenarios may ask `prepare` to load besides the customers (Scenario.needs).
NEEDS_TIMELINE = "timeline"  # 10,000 interactions of one customer
NEEDS_DEALS = "deals"  # 100,000 deals with their stage history in the default pipeline
NEEDS_ORDERS = "orders"  # ~5 orders per customer, metrics and insight scores (PostgreSQL)


@dataclass(frozen=True, slots=True)
class Fixture:
    """What the scenarios may rely on in a seeded database."""

    database: str  # "sqlite" or "postgresql"
    url: str
    api_key: str  # an admin key's secret, for our app's Authorization header
    workspace_id: UUID
    user_ids: tuple[UUID, ...]
    company_ids: tuple[UUID, ...]
    customers: int  # how many were loaded, numbered 1 .. customers (shop ids u-1 ...)
    load: LoadReport  # their ids (a sample), samples to verify, and how fast they loaded
    list_cursors: tuple[str | None, ...]  # customers.list starts (bench.data.LIST_DEPTHS)
    service_checked: int  # customers stored alike by the service and by the loader
    timeline_customer_id: UUID | None = None  # NEEDS_TIMELINE: the customer with a long story
    timeline_entries: int = 0
    deals: DealLoad | None = None  # NEEDS_DEALS
    orders: OrderLoad | None = None  # NEEDS_ORDERS

    @property
    def customer_ids(self) -> tuple[UUID, ...]:
        return self.load.customer_ids


def postgres_url() -> str | None:
    """The server to create benchmark databases on, from the environment, if any."""
    for variable in POSTGRES_URL_VARIABLES:
        if value := os.environ.get(variable):
            return value
    return None


@contextmanager
def fresh_database(kind: str, workdir: Path, *, keep: bool = False) -> Iterator[str]:
    """The URL of an empty database of `kind`, removed again when the block ends (on
    PostgreSQL, unless `keep`: for EXPLAIN and profiling afterwards; drop it yourself)."""
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
        if not keep:
            asyncio.run(
                _execute_on_server(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            )


async def _execute_on_server(server_url: str, statement: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def prepare(
    kind: str,
    url: str,
    *,
    customers: int,
    progress: Callable[[str], None] | None = None,
    needs: frozenset[str] = frozenset(),
) -> Fixture:
    """Migrates the database at `url`, seeds it through the app's services and loads
    `customers` customers, and what `needs` asks for (NEEDS_TIMELINE, NEEDS_DEALS)."""
    # Alembic's env.py runs its own event loop, so this has to happen outside of ours.
    migrations.upgrade(url)
    return asyncio.run(_seed(kind, url, customers, progress, needs))


async def bench_workspace(session: AsyncSession) -> tuple[Workspace, str]:
    """A workspace named "bench" and the secret of an admin key for it."""
    workspace = await WorkspaceService(session, Actor.cli()).create(BENCH_WORKSPACE)
    _, secret = await ApiKeyService(session, Context(workspace.id, Actor.cli())).create(
        ApiKeyCreate(name="bench", scopes=[Scope.ADMIN])
    )
    return workspace, secret


async def _seed(
    kind: str,
    url: str,
    customers: int,
    progress: Callable[[str], None] | None,
    needs: frozenset[str],
) -> Fixture:
    database = create_database(Settings(database_url=url), pooled=False)
    try:
        async with database.writer() as session, session.begin():
            workspace, secret = await bench_workspace(session)
            context = Context(workspace.id, Actor.cli())
            users = UserService(session, context)
            user_ids = []
            for i in range(SEEDED_USERS):
                user = await users.create(
                    UserCreate(name=f"利用者 {i}", email=f"user{i}@example.jp", role="sales")
                )
                user_ids.append(user.id)
            company_count = min(MAX_COMPANIES, max(MIN_COMPANIES, customers // 1000))
            company_ids = await seed_companies(session, context, count=company_count)
        service_checked = await compare_with_service(database, url)
        load = await load_customers(
            database,
            url,
            workspace_id=workspace.id,
            count=customers,
            company_ids=company_ids,
            progress=progress,
        )
        cursors = await list_cursors(database, workspace.id)
        timeline_customer = load.customer_ids[0] if NEEDS_TIMELINE in needs else None
        entries = 0
        if timeline_customer is not None:
            entries = await load_timeline(database, workspace.id, timeline_customer)
        deals = None
        if NEEDS_DEALS in needs:
            deals = await load_deals(
                database,
                url,
                workspace_id=workspace.id,
                customer_ids=load.customer_ids,
                owner_ids=user_ids,
                progress=progress,
            )
        orders = None
        if NEEDS_ORDERS in needs:
            orders = await load_orders(database, url, workspace_id=workspace.id, progress=progress)
    finally:
        await database.dispose()
    return Fixture(
        database=kind,
        url=url,
        api_key=secret,
        workspace_id=workspace.id,
        user_ids=tuple(user_ids),
        company_ids=tuple(company_ids),
        customers=customers,
        load=load,
        list_cursors=cursors,
        service_checked=service_checked,
        timeline_customer_id=timeline_customer,
        timeline_entries=entries,
        deals=deals,
        orders=orders,
    )
