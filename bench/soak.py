"""Soak: the mixed load (bench.scenarios "mixed") against a served app for a long time, sampling
what would leak — each server process's memory, open file descriptors and threads, and the
database's connections — and saying whether they stayed flat.

    .venv/bin/python -m bench.soak --minutes 30                      # PostgreSQL if configured
    .venv/bin/python -m bench.soak --database sqlite --minutes 5 --rate 200

Not part of CI. Prints a sample every --sample-seconds and a verdict per measure: the lowest
value of the last fifth of the samples against the lowest of the first fifth (taken after the
warm-up). A pool opens and closes connections and files with the load, so the counts swing between
levels; what a leak raises is the level they come back down to.
"""

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from bench.database import Fixture, fresh_database, postgres_url, prepare
from bench.loadgen import LoadResult, encode_request, generate_load, percentile_ms
from bench.run import APPS, OURS, _run_async
from bench.scenarios import SCENARIOS, Request
from bench.server import Server, group_processes, running_server

# How much a measure may grow from the first fifth of the run to the last and still be flat:
# memory settles in allocator arenas and caches, so it gets a margin; counts get a small one.
RSS_GROWTH_ALLOWED = 0.10
COUNT_GROWTH_ALLOWED = 2


@dataclass(frozen=True, slots=True)
class Sample:
    elapsed: float
    rss_mib: float  # all server processes together
    largest_rss_mib: float  # the biggest one (DESIGN: a serve process stays under 150 MiB)
    fds: int
    threads: int
    connections: int | None  # to the database, PostgreSQL only
    processes: int


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgresql"),
        default="postgresql" if postgres_url() else "sqlite",
    )
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=300.0, help="offered requests/s")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--sample-seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before sampling")
    return parser.parse_args(argv)


def _status_field(process: Path, name: str) -> int:
    for line in (process / "status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


async def _connections(url: str) -> int | None:
    if not url.startswith("postgresql"):
        return None
    parsed = make_url(url)
    connection = await asyncpg.connect(
        parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            parsed.database,
        )
        return count
    finally:
        await connection.close()


async def _sample(server: Server, url: str, started: float) -> Sample:
    rss_kib = largest_kib = fds = threads = 0
    processes = [entry for entry, _ in group_processes(server.process.pid)]
    for process in processes:
        try:
            resident = _status_field(process, "VmRSS")
            rss_kib += resident
            largest_kib = max(largest_kib, resident)
            threads += _status_field(process, "Threads")
            fds += sum(1 for _ in (process / "fd").iterdir())
        except OSError:
            continue
    return Sample(
        elapsed=time.monotonic() - started,
        rss_mib=rss_kib / 1024,
        largest_rss_mib=largest_kib / 1024,
        fds=fds,
        threads=threads,
        connections=await _connections(url),
        processes=len(processes),
    )


def _verdicts(samples: list[Sample]) -> list[tuple[str, float, float, bool]]:
    """(measure, first-fifth floor, last-fifth floor, flat?) per measure."""
    fifth = max(1, len(samples) // 5)
    first, last = samples[:fifth], samples[-fifth:]
    rows = []
    measures: list[tuple[str, str, float | None]] = [
        ("RSS MiB", "rss_mib", None),
        ("largest RSS MiB", "largest_rss_mib", None),
        ("open fds", "fds", COUNT_GROWTH_ALLOWED),
        ("threads", "threads", COUNT_GROWTH_ALLOWED),
        ("DB connections", "connections", COUNT_GROWTH_ALLOWED),
    ]
    for label, name, allowed in measures:
        before = [getattr(sample, name) for sample in first]
        after = [getattr(sample, name) for sample in last]
        if None in before or None in after:
            continue
        early, late = min(before), min(after)
        flat = (
            late <= early * (1 + RSS_GROWTH_ALLOWED) if allowed is None else late <= early + allowed
        )
        rows.append((label, early, late, flat))
    return rows


def soak(args: argparse.Namespace, fixture: Fixture, server: Server) -> bool:
    source = SCENARIOS["mixed"].ours(fixture, random.Random(0))

    def next_request() -> bytes:
        request: Request = source()
        return encode_request(
            request.method,
            request.path,
            host=server.host,
            token=fixture.api_key,
            body=request.body,
        )

    samples: list[Sample] = []
    seconds = args.minutes * 60

    async def sample_until_done(load: "asyncio.Task[LoadResult]") -> None:
        started = time.monotonic()
        await asyncio.sleep(min(args.warmup, seconds / 5))
        while not load.done():
            sample = await _sample(server, fixture.url, started)
            samples.append(sample)
            connections = "-" if sample.connections is None else str(sample.connections)
            print(
                f"{sample.elapsed:7.0f} s  RSS {sample.rss_mib:7.1f} MiB "
                f"(largest {sample.largest_rss_mib:5.1f})  fds {sample.fds:4d}  "
                f"threads {sample.threads:4d}  DB connections {connections:>3}  "
                f"({sample.processes} processes)",
                flush=True,
            )
            await asyncio.sleep(args.sample_seconds)

    async def run() -> LoadResult:
        load = asyncio.create_task(
            generate_load(
                server.port,
                next_request,
                expected_status=200,
                connections=args.connections,
                warmup_seconds=0,
                seconds=seconds,
                max_requests=sys.maxsize,
                rate=args.rate,
            )
        )
        await sample_until_done(load)
        return await load

    result = _run_async(run())
    print(
        f"\n{args.database}, {args.workers} workers, {args.minutes:g} min at an offered "
        f"{args.rate:g} requests/s: {result.throughput:,.0f} requests/s achieved, "
        f"p50 {percentile_ms(result.latencies, 0.5):.1f} ms, "
        f"p99 {percentile_ms(result.latencies, 0.99):.1f} ms, "
        f"{result.errors} errors {result.error_samples}"
    )
    flat = True
    for label, early, late, steady in _verdicts(samples):
        flat &= steady
        print(f"{label:>15}: {early:8.1f} -> {late:8.1f}  {'flat' if steady else 'GROWING'}")
    return flat and result.errors == 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kokyaku-soak-") as directory:
        workdir = Path(directory)
        with fresh_database(args.database, workdir) as url:
            print(f"{args.database}: loading {args.customers:,} customers", flush=True)
            fixture = prepare(args.database, url, customers=args.customers)
            with running_server(
                OURS, APPS[OURS], database_url=url, workers=args.workers, log_dir=workdir
            ) as server:
                return 0 if soak(args, fixture, server) else 1


if __name__ == "__main__":
    sys.exit(main())
