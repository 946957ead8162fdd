"""Timelines and pipelines at scale: interactions and deals with their stage history, in bulk.

Rows are built as the services store them (`InteractionService.create`, `PipelineService`'s deal
moves): a deal's status is its stage's kind, `stage_changed_at` its last move, `closed_at` set for
won and lost deals, and every move a `deal_stage_change` row from the previous stage with the
seconds spent in it (the creation enters the first stage, from no stage). PostgreSQL gets COPY with
indexes and foreign keys rebuilt afterwards, as for the customers (bench/data.py).
"""

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from sqlalchemy import JSON, Table, insert, select

from app.core.clock import utcnow
from app.core.ids import uuid7
from app.db.session import Database
from app.domain.interaction.entities import Interaction
from app.domain.pipeline.entities import Deal, DealStageChange, Pipeline, Stage
from bench.data import Progress, _Deferred, asyncpg_dsn

INTERACTION_TABLE: Table = Interaction.__table__  # type: ignore[assignment]
DEAL_TABLE: Table = Deal.__table__  # type: ignore[assignment]
CHANGE_TABLE: Table = DealStageChange.__table__  # type: ignore[assignment]
TIMELINE_ENTRIES = 10_000
DEALS = 100_000
DEAL_CHUNK = 10_000
INTERACTION_TYPES = ("note", "call", "email", "meeting", "message", "visit")
CHANGED_BY = "cli"  # Actor.cli().kind: what the service writes without an API key


@dataclass(frozen=True, slots=True)
class DealLoad:
    pipeline_id: UUID
    deals: int
    changes: int
    seconds: float


def _columns(table: Table) -> tuple[str, ...]:
    return tuple(column.name for column in table.columns)


def _json_columns(table: Table) -> frozenset[str]:
    return frozenset(c.name for c in table.columns if isinstance(c.type, JSON))


async def load_timeline(
    database: Database, workspace_id: UUID, customer_id: UUID, *, count: int = TIMELINE_ENTRIES
) -> int:
    """`count` interactions of `customer_id` over the past two years, as the service creates
    them (no task or support fields; search text from subject and body)."""
    rng = random.Random("kokyaku-bench/timeline")
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for number in range(count):
        occurred = now - timedelta(days=730) * rng.random()
        subject = f"対応 {number}"
        rows.append(
            {
                "workspace_id": workspace_id,
                "id": uuid7(),
                "type": rng.choice(INTERACTION_TYPES),
                "customer_id": customer_id,
                "subject": subject,
                "body": None,
                "occurred_at": occurred,
                "created_at": occurred,
                "updated_at": occurred,
                "version": 1,
                "search_text": subject,
            }
        )
    async with database.write_engine.begin() as connection:
        for start in range(0, len(rows), 2000):
            await connection.execute(insert(INTERACTION_TABLE), rows[start : start + 2000])
    return len(rows)


async def default_pipeline(database: Database, workspace_id: UUID) -> tuple[UUID, list[Stage]]:
    """The pipeline every new workspace starts with, and its stages in order."""
    async with database.writer() as session:
        pipeline = (
            await session.execute(select(Pipeline).where(Pipeline.workspace_id == workspace_id))
        ).scalar_one()
        stages = (
            (
                await session.execute(
                    select(Stage)
                    .where(Stage.workspace_id == workspace_id, Stage.pipeline_id == pipeline.id)
                    .order_by(Stage.position)
                )
            )
            .scalars()
            .all()
        )
        return pipeline.id, list(stages)


def _deal_rows(
    rng: random.Random,
    number: int,
    *,
    workspace_id: UUID,
    pipeline_id: UUID,
    stages: Sequence[Stage],
    customer_ids: Sequence[UUID],
    owner_ids: Sequence[UUID],
    now: datetime,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One deal and its moves: ~25% still open, 45% won, 30% lost; some move back once."""
    open_stages = [s for s in stages if s.kind == "open"]
    won = next(s for s in stages if s.kind == "won")
    lost = next(s for s in stages if s.kind == "lost")
    outcome = rng.random()
    reached = rng.randrange(len(open_stages)) + 1
    path: list[Stage] = list(open_stages[:reached])
    if reached > 1 and rng.random() < 0.1:
        path += [open_stages[reached - 2], open_stages[reached - 1]]  # back and forth again
    if outcome < 0.45:
        path = [*open_stages, won]
    elif outcome < 0.75:
        path.append(lost)
    created = now - timedelta(days=365) * rng.random()
    span = (now - created) * rng.random()
    steps = sorted(rng.random() for _ in range(len(path) - 1))
    times = [created, *(created + span * step for step in steps)]
    deal_id = uuid7()
    changes = []
    for index, (stage, at) in enumerate(zip(path, times, strict=True)):
        previous = path[index - 1] if index else None
        changes.append(
            {
                "workspace_id": workspace_id,
                "id": uuid7(),
                "deal_id": deal_id,
                "pipeline_id": pipeline_id,
                "from_stage_id": previous.id if previous else None,
                "to_stage_id": stage.id,
                "changed_at": at,
                "changed_by": CHANGED_BY,
                "seconds_in_previous_stage": (
                    int((at - times[index - 1]).total_seconds()) if index else None
                ),
            }
        )
    final, last = path[-1], times[-1]
    deal = {
        "workspace_id": workspace_id,
        "id": deal_id,
        "name": f"案件 {number}",
        "pipeline_id": pipeline_id,
        "stage_id": final.id,
        "status": final.kind,
        "amount": rng.randrange(10, 5000) * 1000,
        "currency": "JPY",
        "customer_id": rng.choice(customer_ids) if rng.random() < 0.8 else None,
        "company_id": None,
        "owner_id": rng.choice(owner_ids) if rng.random() < 0.9 else None,
        "expected_close_date": (created + timedelta(days=rng.randrange(14, 180))).date(),
        "source": None,
        "lost_reason": "価格" if final.kind == "lost" else None,
        "attributes": {},
        "stage_changed_at": last,
        "closed_at": last if final.kind != "open" else None,
        "created_at": created,
        "updated_at": last,
        "version": len(path),
    }
    return deal, changes


async def load_deals(
    database: Database,
    url: str,
    *,
    workspace_id: UUID,
    customer_ids: Sequence[UUID],
    owner_ids: Sequence[UUID],
    count: int = DEALS,
    progress: Progress | None = None,
) -> DealLoad:
    """`count` deals in the workspace's default pipeline, with ~5 stage changes each (COPY on
    PostgreSQL, executemany on SQLite)."""
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    pipeline_id, stages = await default_pipeline(database, workspace_id)
    rng = random.Random("kokyaku-bench/deals")
    now = utcnow()
    postgres = database.dialect == "postgresql"
    connection: Any = await asyncpg.connect(asyncpg_dsn(url)) if postgres else None
    deferred = None
    changes = 0
    try:
        if connection is not None:
            await connection.execute("SET synchronous_commit = off")
            deferred = await _Deferred.drop(connection, (DEAL_TABLE.name, CHANGE_TABLE.name))
        for start in range(0, count, DEAL_CHUNK):
            deals: list[dict[str, Any]] = []
            moves: list[dict[str, Any]] = []
            for number in range(start, min(count, start + DEAL_CHUNK)):
                deal, history = _deal_rows(
                    rng,
                    number + 1,
                    workspace_id=workspace_id,
                    pipeline_id=pipeline_id,
                    stages=stages,
                    customer_ids=customer_ids,
                    owner_ids=owner_ids,
                    now=now,
                )
                deals.append(deal)
                moves += history
            if connection is not None:
                await _copy(connection, DEAL_TABLE, deals)
                await _copy(connection, CHANGE_TABLE, moves)
            else:
                async with database.write_engine.begin() as sqlite:
                    await sqlite.execute(insert(DEAL_TABLE), deals)
                    await sqlite.execute(insert(CHANGE_TABLE), moves)
            changes += len(moves)
            say(f"  {start + len(deals):,} of {count:,} deals, {changes:,} stage changes loaded")
        if connection is not None and deferred is not None:
            say("  rebuilding deal indexes and foreign keys; VACUUM ANALYZE, as autovacuum would")
            await deferred.restore(connection)
            await connection.execute(f"VACUUM ANALYZE {DEAL_TABLE.name}, {CHANGE_TABLE.name}")
    finally:
        if connection is not None:
            await connection.close()
    return DealLoad(pipeline_id, count, changes, time.perf_counter() - started)


async def _copy(connection: Any, table: Table, rows: list[dict[str, Any]]) -> None:
    columns = _columns(table)
    as_text = _json_columns(table)
    records = [
        tuple(
            orjson.dumps(row.get(name)).decode() if name in as_text else row.get(name)
            for name in columns
        )
        for row in rows
    ]
    await connection.copy_records_to_table(table.name, records=records, columns=columns)
