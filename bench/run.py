"""The benchmark runner: `python -m bench.run` (or `make bench`); `--help` lists the options.

For each database it seeds a fresh database (`--customers` of them bulk-loaded, see bench/data.py),
starts our app and the bare baseline under uvicorn with the same worker count, reads a sample of
the loaded customers back through our API, loads each app in turn from this process (`--repeat`
times, alternating), and prints the medians, the ratio ours/bare and the scenario's targets (DESIGN
§13 and the customers issue).
"""

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import statistics
import sys
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from sqlalchemy.engine import make_url

from bench.data import VerificationError, verify_through_api
from bench.database import Fixture, fresh_database, postgres_url, prepare
from bench.loadgen import LoadError, LoadResult, encode_request, generate_load, probe
from bench.scenarios import SCENARIOS, Request, RequestBuilder, Scenario
from bench.server import Server, ServerError, running_server

OURS = "kokyaku"
BARE = "bare"
APPS = {OURS: "app.main:create_app", BARE: "bench.bare_app:create_bare_app"}
DATABASES = ("sqlite", "postgresql")
DEFAULT_CONNECTIONS = 32
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Measurement:
    """One measured window against one server."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    seconds: float
    server_cpu: float | None  # cores busy on average, all worker processes together
    client_cpu: float  # cores the load generator kept busy
    error_samples: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Figure:
    """The medians of `--repeat` measurements of one app in one configuration."""

    scenario: str
    database: str
    workers: int
    app: str
    runs: tuple[Measurement, ...]

    @property
    def requests_per_second(self) -> float:
        return statistics.median(run.requests_per_second for run in self.runs)

    @property
    def p50_ms(self) -> float:
        return statistics.median(run.p50_ms for run in self.runs)

    @property
    def p99_ms(self) -> float:
        return statistics.median(run.p99_ms for run in self.runs)

    @property
    def errors(self) -> int:
        return sum(run.errors for run in self.runs)

    @property
    def server_cpu(self) -> float | None:
        known = [run.server_cpu for run in self.runs if run.server_cpu is not None]
        return statistics.median(known) if known else None

    @property
    def client_cpu(self) -> float:
        return statistics.median(run.client_cpu for run in self.runs)

    def summary(self, items_per_request: int = 1) -> dict[str, object]:
        return {
            "requests_per_second": round(self.requests_per_second, 1),
            "items_per_second": round(self.requests_per_second * items_per_request, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "errors": self.errors,
            "server_cpu_cores": _round(self.server_cpu, 2),
            "client_cpu_cores": round(self.client_cpu, 2),
            "runs": [_rounded(asdict(run)) for run in self.runs],
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    scenario: Scenario
    ours: Figure
    bare: Figure
    connections: int
    customers: int

    @property
    def ratio(self) -> float:
        bare = self.bare.requests_per_second
        return self.ours.requests_per_second / bare if bare > 0 else 0.0

    @property
    def items_per_second(self) -> float:
        return self.ours.requests_per_second * self.scenario.items_per_request

    def targets(self) -> list[tuple[str, bool]]:
        """Each target of the scenario for this database, and whether our figures meet it."""
        scenario, database = self.scenario, self.ours.database
        found: list[tuple[str, bool]] = []
        if scenario.min_ratio is not None:
            found.append((f"ratio >= {scenario.min_ratio:.2f}", self.ratio >= scenario.min_ratio))
        if (max_p50 := scenario.max_p50_ms.get(database)) is not None:
            found.append((f"p50 < {max_p50:g} ms", self.ours.p50_ms < max_p50))
        if (max_p99 := scenario.max_p99_ms.get(database)) is not None:
            found.append((f"p99 < {max_p99:g} ms", self.ours.p99_ms < max_p99))
        if (min_items := scenario.min_items_per_second.get(database)) is not None:
            found.append((f">= {min_items:,.0f} items/s", self.items_per_second >= min_items))
        return found

    @property
    def meets_target(self) -> bool:
        return all(met for _, met in self.targets())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Measure Kokyaku against a bare FastAPI baseline over loopback (DESIGN §13).",
    )
    default_database = "both" if postgres_url() else "sqlite"
    parser.add_argument(
        "--database",
        choices=[*DATABASES, "both"],
        default=default_database,
        help="both needs KOKYAKU_BENCH_POSTGRES_URL or KOKYAKU_TEST_POSTGRES_URL "
        f"(default here: {default_database})",
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        nargs="+",
        default=[1],
        help="uvicorn worker processes, for both apps; several values run in turn (default: 1)",
    )
    parser.add_argument(
        "--seconds", type=_positive_float, default=10.0, help="each measured window (default: 10)"
    )
    parser.add_argument(
        "--warmup",
        type=_non_negative_float,
        default=2.0,
        help="seconds before each window (default: 2)",
    )
    parser.add_argument(
        "--connections",
        type=_positive_int,
        help="keep-alive connections for every scenario (default: the scenario's own, "
        f"else {DEFAULT_CONNECTIONS})",
    )
    parser.add_argument(
        "--customers",
        type=_positive_int,
        default=100_000,
        help="customers to load into each database (default: 100,000; the issue's targets are "
        "for 1,000,000 on PostgreSQL)",
    )
    parser.add_argument(
        "--repeat", type=_positive_int, default=3, help="windows per app, for medians (default: 3)"
    )
    parser.add_argument(
        "--max-requests",
        type=_positive_int,
        default=2_000_000,
        help="end a window early after this many successful requests",
    )
    parser.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        nargs="+",
        default=list(SCENARIOS),
        help="default: all registered scenarios; they run in registration order, writes last",
    )
    parser.add_argument(
        "--keep-database",
        action="store_true",
        help="leave the PostgreSQL database in place for EXPLAIN and profiling (its URL is "
        "printed; drop it when done)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    return parser.parse_args(argv)


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError("must be above 0")
    return number


def _non_negative_float(value: str) -> float:
    number = float(value)
    if not number >= 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    databases = DATABASES if args.database == "both" else (args.database,)
    if "postgresql" in databases and postgres_url() is None:
        print("PostgreSQL needs KOKYAKU_BENCH_POSTGRES_URL (or _TEST_) to be set.", file=sys.stderr)
        return 2
    scenarios = [scenario for name, scenario in SCENARIOS.items() if name in args.scenario]
    # SIGTERM ends the run like Ctrl-C does: through the `finally` blocks that stop the servers
    # and drop the database.
    signal.signal(signal.SIGTERM, _exit_on_signal)

    comparisons: list[Comparison] = []
    loads: list[Fixture] = []
    try:
        with tempfile.TemporaryDirectory(prefix="kokyaku-bench-") as workdir:
            for database in databases:
                comparisons += _bench_database(database, Path(workdir), scenarios, args, loads)
    except (LoadError, ServerError, VerificationError) as error:
        print(f"\nBENCHMARK FAILED: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nInterrupted; the servers are stopped and the database removed.", file=sys.stderr)
        return 130

    print()
    print(format_table(comparisons))
    print(_footnote(comparisons, args))
    for fixture in loads:
        print(_load_summary(fixture))
    if args.json is not None:
        report = _report(comparisons, loads, args)
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))
        print(f"Figures written to {args.json}")
    errors = sum(c.ours.errors + c.bare.errors for c in comparisons)
    if errors:
        print(f"\n!!! {errors} REQUESTS FAILED: THESE FIGURES ARE NOT VALID !!!")
        for comparison in comparisons:
            for figure in (comparison.ours, comparison.bare):
                for run in figure.runs:
                    for sample in run.error_samples:
                        print(f"    {_label(figure)}: {sample}")
        return 1
    return 0


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _bench_database(
    database: str,
    workdir: Path,
    scenarios: list[Scenario],
    args: argparse.Namespace,
    loads: list[Fixture],
) -> list[Comparison]:
    comparisons: list[Comparison] = []
    scenarios = [s for s in scenarios if s.databases is None or database in s.databases]
    if not scenarios:
        return comparisons
    needs = frozenset().union(*(scenario.needs for scenario in scenarios))
    with fresh_database(database, workdir, keep=args.keep_database) as url:
        _progress(f"{database}: migrating and seeding a fresh database")
        if args.keep_database and database == "postgresql":
            _progress(f"{database}: kept after the run: {make_url(url).database}")
        fixture = prepare(database, url, customers=args.customers, progress=_progress, needs=needs)
        loads.append(fixture)
        _progress(_load_summary(fixture))
        for turn, workers in enumerate(args.workers):
            with (
                running_server(
                    OURS, APPS[OURS], database_url=url, workers=workers, log_dir=workdir
                ) as ours,
                running_server(
                    BARE, APPS[BARE], database_url=url, workers=workers, log_dir=workdir
                ) as bare,
            ):
                if turn == 0:  # later turns find what the write scenarios changed
                    checked = verify_through_api(
                        ours.port,
                        fixture.api_key,
                        fixture.load.samples,
                        fixture.list_cursors,
                        with_orders=fixture.orders is not None,
                    )
                    _progress(
                        f"{database}: {checked} reads of {len(fixture.load.samples)} loaded "
                        "customers through the API agree with what was generated"
                    )
                for scenario in scenarios:
                    comparisons.append(_compare(scenario, fixture, workers, ours, bare, args))
    return comparisons


def _compare(
    scenario: Scenario,
    fixture: Fixture,
    workers: int,
    ours: Server,
    bare: Server,
    args: argparse.Namespace,
) -> Comparison:
    runs: dict[str, list[Measurement]] = {OURS: [], BARE: []}
    connections = args.connections or scenario.connections or DEFAULT_CONNECTIONS
    for repeat in range(args.repeat):
        # Alternating keeps slow drift of the machine from favouring one side; the same seed
        # gives both the same sequence of requests.
        for server, builder, token in (
            (ours, scenario.ours, fixture.api_key),
            (bare, scenario.bare, None),
        ):
            measurement = _measure(
                server, scenario, builder, fixture, token, random.Random(repeat), connections, args
            )
            runs[server.name].append(measurement)
            _progress(
                f"{fixture.database}, {workers} worker(s), {scenario.name}, {server.name} "
                f"{repeat + 1}/{args.repeat}: {measurement.requests_per_second:,.0f} requests/s, "
                f"p50 {measurement.p50_ms:.1f} ms, p99 {measurement.p99_ms:.1f} ms, "
                f"{measurement.errors} errors"
            )

    def figure(app: str) -> Figure:
        return Figure(scenario.name, fixture.database, workers, app, tuple(runs[app]))

    return Comparison(scenario, figure(OURS), figure(BARE), connections, fixture.customers)


def _measure(
    server: Server,
    scenario: Scenario,
    builder: RequestBuilder,
    fixture: Fixture,
    token: str | None,
    rng: random.Random,
    connections: int,
    args: argparse.Namespace,
) -> Measurement:
    source = builder(fixture, rng)

    def next_request() -> bytes:
        request: Request = source()
        return encode_request(
            request.method, request.path, host=server.host, token=token, body=request.body
        )

    async def load() -> tuple[float | None, float | None, LoadResult]:
        answer = await probe(server.port, next_request(), scenario.expected_status)
        check = scenario.check_ours if token is not None else None
        if check is not None and (problem := check(answer)) is not None:
            raise LoadError(f"{scenario.name}: {problem}")
        # The server's CPU is read around the whole load and averaged over warm-up and window:
        # enough to tell a saturated server from one starved by the machine or the client.
        cpu_before = server.cpu_seconds()
        result = await generate_load(
            server.port,
            next_request,
            expected_status=scenario.expected_status,
            connections=connections,
            warmup_seconds=args.warmup,
            seconds=args.seconds,
            max_requests=args.max_requests,
            rate=scenario.rate,
        )
        return cpu_before, server.cpu_seconds(), result

    cpu_before, cpu_after, result = _run_async(load())
    server_cpu = None
    if cpu_before is not None and cpu_after is not None:
        server_cpu = (cpu_after - cpu_before) / (args.warmup + result.seconds)
    return Measurement(
        requests_per_second=result.throughput,
        p50_ms=result.percentile_ms(0.50),
        p99_ms=result.percentile_ms(0.99),
        requests=result.successes,
        errors=result.errors,
        seconds=result.seconds,
        server_cpu=server_cpu,
        client_cpu=result.client_cpu_seconds / result.seconds if result.seconds > 0 else 0.0,
        error_samples=tuple(result.error_samples),
    )


def _run_async(main: Coroutine[Any, Any, T]) -> T:
    """Runs `main` on a fresh event loop, where SIGTERM cancels it and then ends the runner.

    A Python signal handler that raises inside uvloop's protocol callbacks is swallowed by the
    transport, so while the loop runs, SIGTERM goes through the loop instead.
    """

    async def cancellable() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await main
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    try:
        with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
            return runner.run(cancellable())
    except asyncio.CancelledError:
        raise SystemExit(128 + signal.SIGTERM) from None
    finally:
        signal.signal(signal.SIGTERM, _exit_on_signal)


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop when installed (it comes with uvicorn[standard]): a cheaper client per request."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def format_table(comparisons: list[Comparison]) -> str:
    header = (
        "scenario",
        "database",
        "customers",
        "workers",
        "conns",
        "app",
        "requests/s",
        "items/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "cpu srv/cli",
        "ratio",
        "targets",
    )
    rows: list[tuple[str, ...]] = [header]
    for comparison in comparisons:
        verdicts = "; ".join(
            f"{target} {'ok' if met else 'MISSED'}" for target, met in comparison.targets()
        )
        rows.append(
            (
                *_figure_cells(comparison, comparison.ours),
                f"{comparison.ratio:.2f}",
                verdicts or "-",
            )
        )
        rows.append((*_figure_cells(comparison, comparison.bare), "", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    left_aligned = {0, 1, 5, 13}
    lines = [
        "  ".join(
            cell.ljust(width) if i in left_aligned else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _figure_cells(comparison: Comparison, figure: Figure) -> tuple[str, ...]:
    server_cpu = "-" if figure.server_cpu is None else f"{figure.server_cpu:.2f}"
    items = comparison.scenario.items_per_request
    return (
        figure.scenario,
        figure.database,
        f"{comparison.customers:,}",
        str(figure.workers),
        str(comparison.connections),
        figure.app,
        f"{figure.requests_per_second:,.1f}",
        f"{figure.requests_per_second * items:,.0f}" if items > 1 else "",
        f"{figure.p50_ms:.2f}",
        f"{figure.p99_ms:.2f}",
        str(figure.errors),
        f"{server_cpu}/{figure.client_cpu:.2f}",
    )


def _footnote(comparisons: list[Comparison], args: argparse.Namespace) -> str:
    lines = [
        f"Medians of {args.repeat} windows of {args.seconds:g} s after {args.warmup:g} s warm-up, "
        f"on {os.cpu_count()} CPUs. ratio = kokyaku/bare requests/s; items/s = requests/s x "
        "items per request; cpu = cores busy (server processes / load generator)."
    ]
    if any(c.ours.workers >= (os.cpu_count() or 1) for c in comparisons):
        lines.append(
            "With as many workers as CPUs, server and load generator share the cores: compare "
            "the ratio, not the absolute figures."
        )
    return "\n".join(lines)


def _load_summary(fixture: Fixture) -> str:
    load = fixture.load
    index = f", {load.index_seconds:.1f} s of it indexes and ANALYZE" if load.index_seconds else ""
    return (
        f"{fixture.database}: loaded {load.customers:,} customers and {load.identities:,} "
        f"identities in {load.seconds:.1f} s ({load.rows_per_second:,.0f} customers/s{index}; "
        f"generating took {load.generate_cpu_seconds:.1f} CPU-s, "
        f"{load.customers / max(load.generate_cpu_seconds, 1e-9):,.0f} customers per CPU-s); "
        f"{fixture.service_checked} customers stored alike by the service and the loader"
        + (
            f"; {fixture.timeline_entries:,} interactions of one customer"
            if fixture.timeline_entries
            else ""
        )
        + (
            f"; {fixture.deals.deals:,} deals with {fixture.deals.changes:,} stage changes in "
            f"{fixture.deals.seconds:.1f} s"
            if fixture.deals
            else ""
        )
    )


def _label(figure: Figure) -> str:
    return f"{figure.scenario} {figure.database} {figure.workers}w {figure.app}"


def _report(
    comparisons: list[Comparison], loads: list[Fixture], args: argparse.Namespace
) -> dict[str, object]:
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "seconds": args.seconds,
            "warmup_seconds": args.warmup,
            "connections": args.connections,
            "repeat": args.repeat,
            "customers": args.customers,
        },
        "loads": [
            {
                "database": fixture.database,
                "customers": fixture.load.customers,
                "identities": fixture.load.identities,
                "seconds": round(fixture.load.seconds, 2),
                "customers_per_second": round(fixture.load.rows_per_second, 1),
                "generate_cpu_seconds": round(fixture.load.generate_cpu_seconds, 2),
                "index_seconds": round(fixture.load.index_seconds, 2),
            }
            for fixture in loads
        ],
        "results": [
            {
                "scenario": c.scenario.name,
                "summary": c.scenario.summary,
                "database": c.ours.database,
                "workers": c.ours.workers,
                "connections": c.connections,
                "customers": c.customers,
                OURS: c.ours.summary(c.scenario.items_per_request),
                BARE: c.bare.summary(c.scenario.items_per_request),
                "ratio": round(c.ratio, 3),
                "targets": {target: met for target, met in c.targets()},
                "meets_target": c.meets_target,
            }
            for c in comparisons
        ],
    }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _rounded(values: dict[str, object]) -> dict[str, object]:
    return {key: round(v, 3) if isinstance(v, float) else v for key, v in values.items()}


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
