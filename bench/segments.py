"""Segment membership at scale: `python -m bench.segments` (`--help` for the options).

Loads `--customers` customers with about five orders each into a fresh PostgreSQL database (the
loaders of `bench.run`), or takes a database already loaded that way (`--database-url`, e.g. a
copy of one kept by `bench.run --keep-database`; its workspace "bench" is used, the segments made
here are deleted again at the end), defines `--segments` dynamic segments with varied filters
(metrics, tags, lifecycle, and behaviour conditions on orders), then measures, in this process:

- preview: counting and sampling the `segments.preview` scenario's filter (lapsed big spenders)
  as `POST /v1/segments/preview` does, against the same SQL written by hand (the baseline);
- follow: re-evaluating every segment for one customer, as a unit of work that changed the
  customer does before it commits (p50 and p99 over `--samples` random customers), against the
  same session reading that customer by primary key (the baseline);
- fill and sweep: the worker filling every new segment (silently), then sweeping all of them
  again as it does periodically, in seconds: a segment whose filter can drift (a period
  relative to now; 3 of the 5 kinds here) is re-evaluated over all customers, the others are
  followed live and only get their size kept.

Targets (the segments issue, at 1,000,000 customers and 5,000,000 orders): preview under 1 s p50;
follow under 20 ms p50 with 50 segments; a full sweep of 50 segments under 2 minutes.
"""

import argparse
import asyncio
import random
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from app.config import Settings
from app.core.context import Actor, Context
from app.db.session import Database, create_database
from app.domain.access.service import WorkspaceService
from app.domain.customer.entities import Customer
from app.domain.outbox.touches import EVERYTHING
from app.domain.segment.membership import Membership, drifts
from app.domain.segment.schemas import SegmentCreate, SegmentKind
from app.domain.segment.service import SegmentService
from app.domain.segment.worker import SegmentWorker
from bench.bare_app import PREVIEW_COUNT_SQL, PREVIEW_SAMPLE_SQL
from bench.database import BENCH_WORKSPACE, NEEDS_ORDERS, fresh_database, prepare
from bench.loadgen import percentile_ms
from bench.scenarios import LAPSED_BIG_SPENDERS

TARGET_PREVIEW_P50_MS = 1000.0
TARGET_FOLLOW_P50_MS = 20.0
TARGET_SWEEP_SECONDS = 120.0


def _spent(n: int) -> dict[str, Any]:
    return {"field": "metrics.total_spent", "op": "gt", "value": 5_000 * (n + 1)}


def _recent_repeat(n: int) -> dict[str, Any]:
    within = {"field": "occurred_at", "op": "within_last", "value": f"{90 + 30 * n}d"}
    return {"field": "orders", "op": "count_gte", "value": 2 + n % 4, "where": within}


def _lapsed(n: int) -> dict[str, Any]:
    within = {"field": "occurred_at", "op": "within_last", "value": f"{30 + 10 * n}d"}
    return {
        "all": [
            {"field": "orders", "op": "count_gte", "value": 2},
            {"field": "orders", "op": "has_none", "where": within},
        ]
    }


def _recent(n: int) -> dict[str, Any]:
    return {"field": "metrics.last_order_at", "op": "within_last", "value": f"{7 * (n + 1)}d"}


def _loyal(n: int) -> dict[str, Any]:
    return {
        "any": [
            {"field": "tags", "op": "contains", "value": "vip"},
            {"field": "metrics.order_count", "op": "gte", "value": 5 + n % 5},
        ]
    }


def segment_filters(count: int) -> list[dict[str, Any]]:
    """`count` filters of the kinds shops write, with varied thresholds."""
    kinds = [_spent, _recent_repeat, _lapsed, _recent, _loyal]
    return [kinds[i % len(kinds)](i // len(kinds)) for i in range(count)]


async def measure_preview(database: Database, context: Context, runs: int) -> None:
    """The preview scenario's filter through the service, then by hand, `runs` times each."""
    ours, bare = [], []
    for _ in range(runs):
        async with database.reader() as session:
            started = time.perf_counter()
            count, _sample = await SegmentService(session, context).preview(LAPSED_BIG_SPENDERS, 10)
            ours.append(time.perf_counter() - started)
        async with database.reader() as session:
            started = time.perf_counter()
            bare_count = await session.scalar(PREVIEW_COUNT_SQL, {"w": context.workspace_id})
            (await session.execute(PREVIEW_SAMPLE_SQL, {"w": context.workspace_id})).all()
            bare.append(time.perf_counter() - started)
    if count != bare_count:
        raise RuntimeError(f"preview counted {count}, the hand-written SQL {bare_count}")
    ours_p50, bare_p50 = percentile_ms(ours, 0.5), percentile_ms(bare, 0.5)
    print(
        f"  preview (lapsed big spenders, {count} match): p50 {ours_p50:.0f} ms "
        f"(baseline: the same SQL by hand, p50 {bare_p50:.0f} ms; "
        f"ratio {ours_p50 / bare_p50:.2f}); "
        f"target p50 < {TARGET_PREVIEW_P50_MS:.0f} ms: "
        f"{'met' if ours_p50 < TARGET_PREVIEW_P50_MS else 'MISSED'}"
    )


async def measure(url: str, segments: int, samples: int, preview_runs: int) -> None:
    database = create_database(Settings(database_url=url))
    try:
        async with database.reader() as session:
            workspace = await WorkspaceService(session, Actor.cli()).by_name(BENCH_WORKSPACE)
            customers = await session.scalar(
                select(func.count()).where(Customer.workspace_id == workspace.id)
            )
        context = Context(workspace.id, Actor.cli())
        print(f"segments at {customers:,} customers, {segments} dynamic segments")
        await measure_preview(database, context, preview_runs)
        created = []
        async with database.writer() as session, session.begin():
            service = SegmentService(session, context)
            for number, raw in enumerate(segment_filters(segments)):
                segment = await service.create(
                    SegmentCreate(name=f"bench {number}", kind=SegmentKind.DYNAMIC, filter=raw)
                )
                created.append(segment.id)
        try:
            await measure_membership(database, context, segments, samples)
        finally:
            async with database.writer() as session, session.begin():
                service = SegmentService(session, context)
                for segment_id in created:
                    await service.delete(segment_id, expected_versions=None)
    finally:
        await database.dispose()


async def measure_membership(
    database: Database, context: Context, segments: int, samples: int
) -> None:
    workspace_id = context.workspace_id
    worker = SegmentWorker(database.writer, sweep_every=timedelta(days=1))
    started = time.perf_counter()
    while await worker.run_once():
        pass
    fill = time.perf_counter() - started
    # Every segment due again at once: the periodic sweep, which finds the few changes.
    sweeper = SegmentWorker(database.writer, sweep_every=timedelta(0))
    started, swept = time.perf_counter(), 0
    while swept < segments:
        swept += await sweeper.run_once()
    sweep = time.perf_counter() - started
    drifting = sum(drifts(raw) for raw in segment_filters(segments))

    async with database.reader() as session:
        ids = list(
            (
                await session.execute(
                    select(Customer.id).where(Customer.workspace_id == workspace_id).limit(50_000)
                )
            ).scalars()
        )
    chosen = random.Random(7).sample(ids, min(samples, len(ids)))
    follows, reads = [], []
    for customer_id in chosen:
        async with database.writer() as session, session.begin():
            started = time.perf_counter()
            await session.get(Customer, (workspace_id, customer_id))
            reads.append(time.perf_counter() - started)
            session.expunge_all()
            started = time.perf_counter()
            await Membership(session, context).follow({customer_id: set(EVERYTHING)})
            follows.append(time.perf_counter() - started)
            await session.rollback()
    follow_p50, read_p50 = percentile_ms(follows, 0.5), percentile_ms(reads, 0.5)
    print(
        f"  follow one customer: p50 {follow_p50:.1f} ms, p99 {percentile_ms(follows, 0.99):.1f} ms"
        f" (baseline: read the customer by key, p50 {read_p50:.2f} ms; "
        f"ratio {follow_p50 / read_p50:.0f}x); target p50 < {TARGET_FOLLOW_P50_MS:.0f} ms: "
        f"{'met' if follow_p50 < TARGET_FOLLOW_P50_MS else 'MISSED'}"
    )
    print(
        f"  first filling of every segment (silent): {fill:.1f} s; "
        f"full sweep: {sweep:.1f} s ({drifting} of {segments} segments drift and were "
        f"re-evaluated, {sweep / max(drifting, 1):.2f} s each); "
        f"target < {TARGET_SWEEP_SECONDS:.0f} s: "
        f"{'met' if sweep < TARGET_SWEEP_SECONDS else 'MISSED'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument(
        "--database-url",
        help="a database already loaded by the bench loaders (customers and orders) to use "
        "instead of loading a fresh one; the segments made here are deleted at the end",
    )
    parser.add_argument("--segments", type=int, default=50)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--preview-runs", type=int, default=5)
    args = parser.parse_args()
    if args.database_url:
        asyncio.run(measure(args.database_url, args.segments, args.samples, args.preview_runs))
        return
    with (
        tempfile.TemporaryDirectory() as workdir,
        fresh_database("postgresql", Path(workdir)) as url,
    ):
        prepare(
            "postgresql",
            url,
            customers=args.customers,
            progress=print,
            needs=frozenset({NEEDS_ORDERS}),
        )
        asyncio.run(measure(url, args.segments, args.samples, args.preview_runs))


if __name__ == "__main__":
    main()
