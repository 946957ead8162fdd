"""Segment membership at scale: `python -m bench.segments` (`--help` for the options).

Loads `--customers` customers with about five orders each into a fresh PostgreSQL database (the
loaders of `bench.run`), defines `--segments` dynamic segments with varied filters (metrics, tags,
lifecycle, and behaviour conditions on orders), then measures, in this process:

- follow: re-evaluating every segment for one customer, as a unit of work that changed the
  customer does before it commits (p50 and p99 over `--samples` random customers), against the
  same session reading that customer by primary key (the baseline);
- sweep: the worker bringing every segment in line with its filter over all customers, from
  empty (the first computation, which also announces each member), in seconds.

Targets (the segments issue, at 1,000,000 customers and 5,000,000 orders): follow under 20 ms p50
with 50 segments; a full sweep of 50 segments under 2 minutes.
"""

import argparse
import asyncio
import random
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import select

from app.config import Settings
from app.core.context import Actor, Context
from app.db.session import create_database
from app.domain.customer.entities import Customer
from app.domain.outbox.touches import EVERYTHING
from app.domain.segment.membership import Membership
from app.domain.segment.schemas import SegmentCreate, SegmentKind
from app.domain.segment.service import SegmentService
from app.domain.segment.worker import SegmentWorker
from bench.database import NEEDS_ORDERS, fresh_database, prepare
from bench.loadgen import percentile_ms

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


async def measure(url: str, workspace_id: UUID, segments: int, samples: int) -> None:
    database = create_database(Settings(database_url=url))
    context = Context(workspace_id, Actor.cli())
    try:
        async with database.writer() as session, session.begin():
            service = SegmentService(session, context)
            for number, raw in enumerate(segment_filters(segments)):
                await service.create(
                    SegmentCreate(name=f"bench {number}", kind=SegmentKind.DYNAMIC, filter=raw)
                )
        worker = SegmentWorker(database.writer, sweep_every=timedelta(days=1))
        started = time.perf_counter()
        while await worker.run_once():
            pass
        sweep = time.perf_counter() - started

        async with database.reader() as session:
            ids = list(
                (
                    await session.execute(
                        select(Customer.id)
                        .where(Customer.workspace_id == workspace_id)
                        .limit(50_000)
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
    finally:
        await database.dispose()
    follow_p50, read_p50 = percentile_ms(follows, 0.5), percentile_ms(reads, 0.5)
    print(f"segments at {len(ids)}+ customers, {segments} dynamic segments")
    print(
        f"  follow one customer: p50 {follow_p50:.1f} ms, p99 {percentile_ms(follows, 0.99):.1f} ms"
        f" (baseline: read the customer by key, p50 {read_p50:.2f} ms; "
        f"ratio {follow_p50 / read_p50:.0f}x); target p50 < {TARGET_FOLLOW_P50_MS:.0f} ms: "
        f"{'met' if follow_p50 < TARGET_FOLLOW_P50_MS else 'MISSED'}"
    )
    print(
        f"  full sweep from empty: {sweep:.1f} s ({sweep / segments:.2f} s per segment); "
        f"target < {TARGET_SWEEP_SECONDS:.0f} s: "
        f"{'met' if sweep < TARGET_SWEEP_SECONDS else 'MISSED'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--segments", type=int, default=50)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as workdir,
        fresh_database("postgresql", Path(workdir)) as url,
    ):
        fixture = prepare(
            "postgresql",
            url,
            customers=args.customers,
            progress=print,
            needs=frozenset({NEEDS_ORDERS}),
        )
        asyncio.run(measure(url, fixture.workspace_id, args.segments, args.samples))


if __name__ == "__main__":
    main()
