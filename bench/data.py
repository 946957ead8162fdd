"""Customers at scale for the benchmarks: rows built exactly as the app stores them, loaded in bulk.

Writing a million customers through the service would take hours, so the rows are built here from
`app.seed.people` with the app's own derivations (display name, search text, name key, identity
keys) and loaded with COPY on PostgreSQL or executemany on SQLite. Two checks keep this honest: a
few people are written both through the service and through this loader and their stored rows must
be equal, and after loading, a sample is read back through the real API (`verify_through_api`).
"""

import asyncio
import http.client
import json
import multiprocessing
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import asyncpg
import orjson
from sqlalchemy import JSON, Column, MetaData, Table, Uuid, bindparam, func, insert, select, text
from sqlalchemy.engine import make_url

from app.core.clock import utcnow
from app.core.context import Actor, Context
from app.core.cursors import encode_cursor
from app.core.ids import uuid7
from app.core.values import Address, normalise_phone, unique
from app.db.session import Database
from app.domain.access.service import WorkspaceService
from app.domain.customer import schemas
from app.domain.customer.entities import Customer, CustomerIdentity
from app.domain.customer.identity import identity_keys, refresh_derived
from app.domain.customer.service import BatchStatus, CustomerService
from app.seed import SHOP_SOURCE, people, seed_companies, shop_user_id
from bench.loadgen import LOOPBACK

CHUNK_SIZE = 10_000
GENERATOR_PROCESSES = 2
HISTORY = timedelta(days=730)  # created_at and updated_at spread over the past two years
MAX_ID_SAMPLE = 100_000  # customer ids kept for reads, spread evenly over all of them
SERVICE_CHECK_PEOPLE = 60
# Bulk loads on PostgreSQL build indexes and check foreign keys once at the end, as pg_restore does.
PG_MAINTENANCE_WORK_MEM = "512MB"

CUSTOMER_TABLE: Table = Customer.__table__  # type: ignore[assignment]
IDENTITY_TABLE: Table = CustomerIdentity.__table__  # type: ignore[assignment]
CUSTOMER_COLUMNS = tuple(column.name for column in CUSTOMER_TABLE.columns)
IDENTITY_COLUMNS = tuple(column.name for column in IDENTITY_TABLE.columns)
_JSON_COLUMNS = frozenset(c.name for c in CUSTOMER_TABLE.columns if isinstance(c.type, JSON))

# What customers.list pages through; the cursors in `list_cursors` belong to this query.
LIST_STAGE = "customer"
LIST_SORT = "-updated_at"
# Where those cursors start, as fractions of the matching customers: the first page, the second,
# and deep into the list, to its last pages.
LIST_DEPTHS = (0.0, 0.001, 0.01, 0.1, 0.5, 0.9, 0.999)

Row = tuple[Any, ...]
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class ChunkSpec:
    """Customers `start` + 1 .. `start` + `count` of `total`: enough to build them anywhere."""

    workspace_id: UUID
    start: int
    count: int
    total: int
    seed: int
    company_ids: tuple[UUID, ...]
    now: datetime
    json_as_text: bool  # PostgreSQL's COPY takes jsonb as its text
    id_stride: int


@dataclass(frozen=True, slots=True)
class Sample:
    """A generated customer to read back through the API, and what the API must answer."""

    id: UUID
    number: int
    expected: dict[str, Any]  # schemas.Customer as JSON
    query: str  # its kana as generated (maybe half-width), else its name: found by ?q=
    email: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Chunk:
    customers: list[Row]
    identities: list[Row]
    ids: list[UUID]  # every `id_stride`-th customer's id
    samples: list[Sample]
    cpu_seconds: float


@dataclass(frozen=True, slots=True)
class LoadReport:
    customers: int
    identities: int
    seconds: float  # wall clock, generation and loading overlapped, indexes and ANALYZE included
    generate_cpu_seconds: float  # in the generator processes, all together
    index_seconds: float  # PostgreSQL: rebuilding indexes and foreign keys, and ANALYZE
    customer_ids: tuple[UUID, ...]
    samples: tuple[Sample, ...]

    @property
    def rows_per_second(self) -> float:
        return self.customers / self.seconds if self.seconds > 0 else 0.0


def customer_entity(
    person: Mapping[str, Any],
    *,
    workspace_id: UUID,
    created_at: datetime,
    updated_at: datetime,
) -> Customer:
    """The transient entity `CustomerService.create` would store for `person` (a create shape).

    Mirrors `CustomerService._write` for a valid item with no custom fields defined: phones in
    E.164, emails case-folded, lists de-duplicated, the address with its defaults, consents with
    their time in UTC; then the derived display name, search text and name key.
    """
    raw_address = person.get("address")
    raw_birthday = person.get("birthday")
    raw_company = person.get("company_id")
    customer = Customer(
        workspace_id=workspace_id,
        id=uuid7(),
        family_name=person.get("family_name"),
        given_name=person.get("given_name"),
        family_name_kana=person.get("family_name_kana"),
        given_name_kana=person.get("given_name_kana"),
        emails=unique([email.casefold() for email in person.get("emails", [])]),
        phones=unique([normalise_phone(phone) for phone in person.get("phones", [])]),
        external_ids=dict(person.get("external_ids", {})),
        address=(
            Address.model_validate(raw_address).model_dump(exclude_none=True)
            if raw_address
            else None
        ),
        birthday=date.fromisoformat(raw_birthday) if raw_birthday else None,
        company_id=UUID(raw_company) if raw_company else None,
        owner_id=None,
        lifecycle_stage=person.get("lifecycle_stage"),
        tags=unique(list(person.get("tags", []))),
        consents={
            channel: {
                "granted": consent["granted"],
                "at": datetime.fromisoformat(consent["at"]).astimezone(UTC).isoformat(),
                "source": consent.get("source"),
            }
            for channel, consent in person.get("consents", {}).items()
        },
        attributes={},
        created_at=created_at,
        updated_at=updated_at,
        version=1,
    )
    refresh_derived(customer, explicit_display_name=None)
    # What a flush would fill in: the columns' own defaults (purchase metrics start at 0).
    for column in CUSTOMER_TABLE.columns:
        default = column.default
        if getattr(customer, column.key) is None and default is not None:
            if default.is_scalar:
                setattr(customer, column.key, default.arg)  # type: ignore[attr-defined]
            elif default.is_callable:  # e.g. `list`, wrapped by SQLAlchemy to take a context
                setattr(customer, column.key, default.arg(None))  # type: ignore[attr-defined]
    return customer


def customer_row(customer: Customer, *, json_as_text: bool) -> Row:
    values = []
    for name in CUSTOMER_COLUMNS:
        value = getattr(customer, name)
        if json_as_text and name in _JSON_COLUMNS and value is not None:
            value = orjson.dumps(value).decode()
        values.append(value)
    return tuple(values)


def identity_rows(customer: Customer) -> list[Row]:
    return [
        (customer.workspace_id, customer.id, key.kind, key.source, key.value)
        for key in sorted(identity_keys(customer))
    ]


def _chunk_rng(seed: int, start: int, purpose: str) -> random.Random:
    # String seeds hash the same in every process, so a chunk is the same wherever it is built.
    return random.Random(f"kokyaku-bench/{seed}/{purpose}/{start}")


def _timestamps(
    rng: random.Random, number: int, total: int, now: datetime
) -> tuple[datetime, datetime]:
    """Customers arrive in number order over `HISTORY`; most were last changed soon after."""
    created = now - HISTORY + HISTORY * ((number - 1 + rng.random()) / total)
    updated = created + (now - created) * rng.random() ** 4
    return created, min(updated, now)


def build_chunk(spec: ChunkSpec) -> Chunk:
    """The rows of one chunk of customers (run in a generator process)."""
    started = time.process_time()
    rng = _chunk_rng(spec.seed, spec.start, "people")
    times = _chunk_rng(spec.seed, spec.start, "times")
    # Read back through the API: the chunk's first and last customer and one in between.
    sampled = {0, spec.count - 1, times.randrange(spec.count)}
    customers: list[Row] = []
    identities: list[Row] = []
    ids: list[UUID] = []
    samples: list[Sample] = []
    generated = people(rng, spec.count, start=spec.start, company_ids=spec.company_ids)
    for offset, person in enumerate(generated):
        number = spec.start + offset + 1
        created_at, updated_at = _timestamps(times, number, spec.total, spec.now)
        customer = customer_entity(
            person, workspace_id=spec.workspace_id, created_at=created_at, updated_at=updated_at
        )
        customers.append(customer_row(customer, json_as_text=spec.json_as_text))
        identities += identity_rows(customer)
        if number % spec.id_stride == 0:
            ids.append(customer.id)
        if offset in sampled:
            samples.append(_sample(customer, person, number))
    return Chunk(customers, identities, ids, samples, time.process_time() - started)


def _sample(customer: Customer, person: Mapping[str, Any], number: int) -> Sample:
    kana = "".join(person.get(key, "") for key in ("family_name_kana", "given_name_kana"))
    return Sample(
        id=customer.id,
        number=number,
        expected=schemas.Customer.model_validate(customer).model_dump(mode="json"),
        query=kana or f"{customer.family_name}{customer.given_name}",
        email=customer.emails[0],
        created_at=customer.created_at,
    )


def chunk_specs(
    *,
    workspace_id: UUID,
    count: int,
    company_ids: Sequence[UUID],
    seed: int,
    now: datetime,
    json_as_text: bool,
) -> Iterator[ChunkSpec]:
    id_stride = max(1, count // MAX_ID_SAMPLE)
    for start in range(0, count, CHUNK_SIZE):
        yield ChunkSpec(
            workspace_id=workspace_id,
            start=start,
            count=min(CHUNK_SIZE, count - start),
            total=count,
            seed=seed,
            company_ids=tuple(company_ids),
            now=now,
            json_as_text=json_as_text,
            id_stride=id_stride,
        )


# Loading


def asyncpg_dsn(url: str) -> str:
    """asyncpg speaks libpq URLs, which name no SQLAlchemy driver."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlite_table(table: Table) -> Table:
    """`table` for executemany on SQLite: a None in a JSON column stays SQL NULL, as the ORM
    leaves a JSON attribute it never set (Core would write the JSON text `null`)."""
    columns = [
        Column(c.name, JSON(none_as_null=True) if isinstance(c.type, JSON) else c.type)
        for c in table.columns
    ]
    return Table(table.name, MetaData(), *columns)


_SQLITE_CUSTOMER = _sqlite_table(CUSTOMER_TABLE)
_SQLITE_IDENTITY = _sqlite_table(IDENTITY_TABLE)


class _Writer:
    """Writes chunks of rows: COPY on PostgreSQL, executemany in one transaction on SQLite."""

    def __init__(self, database: Database, url: str) -> None:
        self.database = database
        self.url = url
        self.connection: Any = None  # asyncpg.Connection on PostgreSQL

    @property
    def postgres(self) -> bool:
        return self.database.dialect == "postgresql"

    async def __aenter__(self) -> "_Writer":
        if self.postgres:
            self.connection = await asyncpg.connect(asyncpg_dsn(self.url))
            await self.connection.execute("SET synchronous_commit = off")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self.connection is not None:
            await self.connection.close()

    async def write(self, customers: Sequence[Row], identities: Sequence[Row]) -> None:
        if self.postgres:
            await self.connection.copy_records_to_table(
                CUSTOMER_TABLE.name, records=customers, columns=CUSTOMER_COLUMNS
            )
            await self.connection.copy_records_to_table(
                IDENTITY_TABLE.name, records=identities, columns=IDENTITY_COLUMNS
            )
            return
        async with self.database.write_engine.begin() as connection:
            await connection.execute(
                insert(_SQLITE_CUSTOMER),
                [dict(zip(CUSTOMER_COLUMNS, r, strict=True)) for r in customers],
            )
            await connection.execute(
                insert(_SQLITE_IDENTITY),
                [dict(zip(IDENTITY_COLUMNS, r, strict=True)) for r in identities],
            )


@dataclass(frozen=True, slots=True)
class _Deferred:
    """Indexes and foreign keys dropped for a bulk load on PostgreSQL, to be restored after it."""

    indexes: tuple[tuple[str, str], ...]  # name, CREATE INDEX statement
    foreign_keys: tuple[tuple[str, str, str], ...]  # table, name, definition

    @classmethod
    async def drop(cls, connection: Any, tables: Sequence[str]) -> "_Deferred":
        indexes = await connection.fetch(
            "SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS definition "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_class t ON t.oid = i.indrelid "
            "WHERE t.relname = any($1::text[]) AND NOT i.indisprimary ORDER BY c.relname",
            list(tables),
        )
        foreign_keys = await connection.fetch(
            "SELECT t.relname AS table, c.conname AS name, "
            "pg_get_constraintdef(c.oid) AS definition "
            "FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
            "WHERE t.relname = any($1::text[]) AND c.contype = 'f' ORDER BY t.relname, c.conname",
            list(tables),
        )
        deferred = cls(
            indexes=tuple((r["name"], r["definition"]) for r in indexes),
            foreign_keys=tuple((r["table"], r["name"], r["definition"]) for r in foreign_keys),
        )
        for table, name, _ in deferred.foreign_keys:
            await connection.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
        for name, _ in deferred.indexes:
            await connection.execute(f'DROP INDEX "{name}"')
        return deferred

    async def restore(self, connection: Any) -> None:
        await connection.execute(f"SET maintenance_work_mem = '{PG_MAINTENANCE_WORK_MEM}'")
        for _, definition in self.indexes:
            await connection.execute(definition)
        for table, name, definition in self.foreign_keys:
            # Validated here, over all rows at once.
            await connection.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')


async def load_customers(
    database: Database,
    url: str,
    *,
    workspace_id: UUID,
    count: int,
    company_ids: Sequence[UUID],
    seed: int = 0,
    progress: Progress | None = None,
) -> LoadReport:
    """Generates and loads `count` customers into `workspace_id` of a fresh database."""
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    specs = chunk_specs(
        workspace_id=workspace_id,
        count=count,
        company_ids=company_ids,
        seed=seed,
        now=utcnow(),
        json_as_text=database.dialect == "postgresql",
    )
    loaded = identities = 0
    cpu = 0.0
    ids: list[UUID] = []
    samples: list[Sample] = []
    index_seconds = 0.0
    async with _Writer(database, url) as writer:
        deferred = None
        if writer.postgres:
            deferred = await _Deferred.drop(
                writer.connection, (CUSTOMER_TABLE.name, IDENTITY_TABLE.name)
            )
        async for chunk in _generated(specs):
            await writer.write(chunk.customers, chunk.identities)
            loaded += len(chunk.customers)
            identities += len(chunk.identities)
            cpu += chunk.cpu_seconds
            ids += chunk.ids
            samples += chunk.samples
            elapsed = time.perf_counter() - started
            say(f"  {loaded:,} of {count:,} customers loaded ({loaded / elapsed:,.0f}/s)")
        if deferred is not None:
            index_started = time.perf_counter()
            say("  rebuilding indexes and foreign keys, then ANALYZE")
            await deferred.restore(writer.connection)
            await writer.connection.execute(f"ANALYZE {CUSTOMER_TABLE.name}, {IDENTITY_TABLE.name}")
            index_seconds = time.perf_counter() - index_started
    return LoadReport(
        customers=loaded,
        identities=identities,
        seconds=time.perf_counter() - started,
        generate_cpu_seconds=cpu,
        index_seconds=index_seconds,
        customer_ids=tuple(ids),
        samples=tuple(samples),
    )


async def _generated(specs: Iterator[ChunkSpec]) -> AsyncIterator[Chunk]:
    """The chunks of `specs` in order, built by a process pool a few chunks ahead of the writer."""
    loop = asyncio.get_running_loop()
    # spawn, not fork: the parent has an event loop and database connections open.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=GENERATOR_PROCESSES, mp_context=context) as pool:
        pending: deque[asyncio.Future[Chunk]] = deque()
        for spec in specs:
            pending.append(loop.run_in_executor(pool, build_chunk, spec))
            if len(pending) > GENERATOR_PROCESSES:
                yield await pending.popleft()
        while pending:
            yield await pending.popleft()


# Checks


async def compare_with_service(database: Database, url: str, *, seed: int = 0) -> int:
    """Writes the same people through the service and through the loader, each into a workspace
    of its own, and fails unless the stored rows are equal but for ids and timestamps.

    Returns how many customers were compared.
    """
    workspaces: list[UUID] = []
    companies: list[list[UUID]] = []
    async with database.writer() as session, session.begin():
        for name in ("bench-check-service", "bench-check-loader"):
            workspace = await WorkspaceService(session, Actor.cli()).create(name)
            context = Context(workspace.id, Actor.cli())
            workspaces.append(workspace.id)
            companies.append(await seed_companies(session, context, count=5, seed=seed))
        rng = random.Random(f"kokyaku-bench/{seed}/service-check")
        persons = list(people(rng, SERVICE_CHECK_PEOPLE, company_ids=companies[0]))
        service = CustomerService(session, Context(workspaces[0], Actor.cli()))
        results = await service.batch(persons)
        if any(result.status is not BatchStatus.CREATED for result in results):
            raise RuntimeError(f"the service refused a generated customer: {results}")
    # The loader's people refer to the loader workspace's companies, in the same positions.
    mapping = {str(a): str(b) for a, b in zip(companies[0], companies[1], strict=True)}
    loader_customers: list[Row] = []
    loader_identities: list[Row] = []
    writer_is_postgres = database.dialect == "postgresql"
    now = utcnow()
    for person in persons:
        if "company_id" in person:
            person = {**person, "company_id": mapping[person["company_id"]]}
        customer = customer_entity(
            person, workspace_id=workspaces[1], created_at=now, updated_at=now
        )
        loader_customers.append(customer_row(customer, json_as_text=writer_is_postgres))
        loader_identities += identity_rows(customer)
    async with _Writer(database, url) as writer:
        await writer.write(loader_customers, loader_identities)
    stored = [await _stored(database, workspace) for workspace in workspaces]
    company_position = [{company: i for i, company in enumerate(ids)} for ids in companies]
    normalised = [
        {
            shop: {**row, "company_id": company_position[side].get(row["company_id"])}
            for shop, row in stored[side].items()
        }
        for side in (0, 1)
    ]
    if normalised[0] != normalised[1]:
        for shop in sorted(normalised[0]):
            a, b = normalised[0][shop], normalised[1].get(shop)
            if a != b:
                raise RuntimeError(f"loader and service store {shop} differently:\n{a}\n{b}")
        raise RuntimeError("loader and service stored different customers")
    return len(persons)


_COMPARED_EXCLUDED = frozenset({"workspace_id", "id", "created_at", "updated_at"})
_STORED_ROWS = text("SELECT * FROM customer WHERE workspace_id = :workspace_id").bindparams(
    bindparam("workspace_id", type_=Uuid())
)
_STORED_IDENTITIES = text(
    "SELECT customer_id, kind, source, value FROM customer_identity "
    "WHERE workspace_id = :workspace_id"
).bindparams(bindparam("workspace_id", type_=Uuid()))


async def _stored(database: Database, workspace_id: UUID) -> dict[str, dict[str, Any]]:
    """The stored rows as the driver returns them (JSON as its stored text), by shop id, each
    with its identity rows; ids are left out and company ids made comparable."""
    async with database.engine.connect() as connection:
        params = {"workspace_id": workspace_id}
        identities = (await connection.execute(_STORED_IDENTITIES, params)).all()
        customers = (await connection.execute(_STORED_ROWS, params)).mappings().all()
    keys: dict[UUID, set[tuple[str, str, str]]] = {}
    for customer_id, kind, source, value in identities:
        keys.setdefault(UUID(str(customer_id)), set()).add((kind, source, value))
    result: dict[str, dict[str, Any]] = {}
    for row in customers:
        values = {name: value for name, value in row.items() if name not in _COMPARED_EXCLUDED}
        company = values["company_id"]
        values["company_id"] = UUID(str(company)) if company is not None else None
        values["identities"] = sorted(keys.get(UUID(str(row["id"])), set()))
        external_ids = values["external_ids"]
        shop = json.loads(external_ids) if isinstance(external_ids, str) else external_ids
        result[shop[SHOP_SOURCE]] = values
    return result


async def list_cursors(database: Database, workspace_id: UUID) -> tuple[str | None, ...]:
    """Cursors of `?lifecycle_stage=LIST_STAGE&sort=LIST_SORT` at `LIST_DEPTHS` into the list,
    as the API itself encodes them (None: the first page)."""
    table = CUSTOMER_TABLE
    matching = (table.c.workspace_id == workspace_id) & (table.c.lifecycle_stage == LIST_STAGE)
    cursors: list[str | None] = []
    async with database.engine.connect() as connection:
        total = (await connection.execute(select(func.count()).where(matching))).scalar_one()
        for depth in LIST_DEPTHS:
            rank = min(round(depth * total), total - 1)
            if rank <= 0:
                cursors.append(None)
                continue
            updated_at, customer_id = (
                await connection.execute(
                    select(table.c.updated_at, table.c.id)
                    .where(matching)
                    .order_by(table.c.updated_at.desc(), table.c.id.desc())
                    .offset(rank - 1)
                    .limit(1)
                )
            ).one()
            cursors.append(encode_cursor(LIST_SORT, [updated_at.isoformat(), str(customer_id)]))
    return tuple(cursors)


class VerificationError(RuntimeError):
    """The API answered differently from what was loaded."""


def verify_through_api(
    port: int,
    token: str,
    samples: Sequence[Sample],
    cursors: Sequence[str | None],
    *,
    with_orders: bool = False,
) -> int:
    """Reads each sample through our running server (127.0.0.1:`port`): by id, by `?q=` of its
    kana, by email and by shop id. Returns how many requests agreed; raises on any difference.
    `with_orders`: orders were loaded afterwards, so the purchase metrics are not compared."""
    client = _ApiClient(port, token)
    checked = 0
    try:
        for sample in samples:
            got = client.get(f"/v1/customers/{sample.id}")
            view = schemas.Customer.model_validate(got).model_dump(mode="json")
            expected = sample.expected
            if with_orders:
                view, expected = {**view, "metrics": None}, {**expected, "metrics": None}
            if view != expected:
                raise VerificationError(
                    f"customer {sample.number} reads back as\n{view}\nnot\n{sample.expected}"
                )
            window = {
                "created_after": sample.created_at.isoformat(),
                "created_before": (sample.created_at + timedelta(microseconds=1)).isoformat(),
            }
            queries = {
                f"q={sample.query}": ({"q": sample.query, **window}, False),
                "email": ({"email": sample.email}, True),
                "external_id": (
                    {"external_id": f"{SHOP_SOURCE}:{shop_user_id(sample.number)}"},
                    True,
                ),
            }
            for label, (params, alone) in queries.items():
                found = [
                    item["id"] for item in client.get(f"/v1/customers?{urlencode(params)}")["data"]
                ]
                if str(sample.id) not in found or (alone and len(found) != 1):
                    raise VerificationError(f"customer {sample.number}: {label} found {found}")
            checked += 4
        for cursor in cursors:
            params = {"lifecycle_stage": LIST_STAGE, "sort": LIST_SORT}
            if cursor is not None:
                params["cursor"] = cursor
            page = client.get(f"/v1/customers?{urlencode(params)}")["data"]
            if not page or any(item["lifecycle_stage"] != LIST_STAGE for item in page):
                raise VerificationError(f"the list from cursor {cursor} holds {page[:2]}")
            checked += 1
    finally:
        client.close()
    return checked


class _ApiClient:
    def __init__(self, port: int, token: str) -> None:
        self.connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str) -> Any:
        self.connection.request("GET", path, headers=self.headers)
        response = self.connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise VerificationError(f"GET {path}: {response.status} {body[:300]!r}")
        return json.loads(body)

    def close(self) -> None:
        self.connection.close()
