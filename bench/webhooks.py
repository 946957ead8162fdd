"""Webhook delivery under load: `python -m bench.webhooks` (`--help` for the options).

Starts a fresh database, our app (dispatcher off) and `--workers` `kokyaku worker` processes, and
a receiver process (bench/receiver.py) on loopback, then measures:

- throughput: `--events` customer.created events are committed first (batch creates), then the
  workers start; deliveries per second from the first arrival to the last. The baseline, in the
  same run, is the same number of POSTs of a delivery's size sent straight to a fresh receiver
  with what the workers send with and as hard as they may: `--workers` processes, each an httpx
  client keeping connections alive, as many requests in flight as a worker allows one endpoint.
  It measures the receiver and the HTTP client together, without the database, signing or checks.
- latency: once a first event went through fresh workers, customers created one by one at
  `--rate` per second for `--seconds`; for each, the time from our 201 (the commit is done) to
  the receiver's arrival, as p50 and p99.

Targets (the webhooks issue, on PostgreSQL): ≥ 500 deliveries/s with two workers; commit to
delivery p50 < 200 ms and p99 < 1 s at 100 events/s.
"""

import argparse
import asyncio
import contextlib
import inspect
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from app.config import Settings
from app.db import migrations
from app.db.session import create_database
from app.domain.webhook.dispatcher import Dispatcher
from bench.database import bench_workspace, fresh_database
from bench.loadgen import LOOPBACK, percentile_ms
from bench.server import PROJECT_ROOT, free_port, running_server, stop_process_group

BATCH = 1000
TARGET_PER_SECOND = 500.0
TARGET_P50_MS = 200.0
TARGET_P99_MS = 1000.0
SETTLE_SECONDS = 300.0
ENVIRONMENT = {"KOKYAKU_DISPATCHER": "off", "KOKYAKU_WEBHOOK_ALLOW_PRIVATE": "true"}


@contextmanager
def _process(
    command: list[str], log: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop_process_group(process)


@contextmanager
def _receiver(workdir: Path, name: str) -> Iterator[tuple[int, Path]]:
    """A receiver process; yields its port and the file its arrivals are in once it stopped."""
    port, out = free_port(), workdir / f"{name}.json"
    command = [sys.executable, "-m", "bench.receiver", "--port", str(port), "--out", str(out)]
    with _process(command, workdir / f"{name}.log", {}):
        _wait_for_port(port)
        yield port, out


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"http://{LOOPBACK}:{port}/count", timeout=1)
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def _arrived(port: int) -> int:
    return int(httpx.get(f"http://{LOOPBACK}:{port}/count", timeout=5).text)


def _wait_for(port: int, count: int) -> None:
    deadline = time.monotonic() + SETTLE_SECONDS
    while _arrived(port) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {_arrived(port)} of {count} deliveries arrived")
        time.sleep(0.1)


async def _workspace(url: str) -> str:
    database = create_database(Settings(database_url=url), pooled=False)
    try:
        async with database.writer() as session, session.begin():
            _, secret = await bench_workspace(session)
    finally:
        await database.dispose()
    return secret


# What one worker allows in flight to one endpoint (and the connections it keeps to it).
IN_FLIGHT = inspect.signature(Dispatcher).parameters["per_endpoint"].default


async def _send_straight(port: int, count: int, body: bytes) -> tuple[float, float]:
    """`count` POSTs straight to a receiver, IN_FLIGHT at a time over kept-alive connections;
    the wall-clock time of the first request and of the last answer."""
    url = f"http://{LOOPBACK}:{port}/hooks"
    left = iter(range(count))
    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    async with httpx.AsyncClient(limits=limits) as client:

        async def sender() -> None:
            for _ in left:
                response = await client.post(
                    url, content=body, headers={"content-type": "application/json"}
                )
                response.raise_for_status()

        started = time.time()
        await asyncio.gather(*(sender() for _ in range(IN_FLIGHT)))
        return started, time.time()


def _sender_process(port: int, count: int, body: bytes) -> tuple[float, float]:
    return asyncio.run(_send_straight(port, count, body))


def _baseline(port: int, count: int, body: bytes, processes: int) -> float:
    """POSTs per second straight to a receiver from `processes` sender processes."""
    shares = [count // processes + (n < count % processes) for n in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        spans = pool.starmap(_sender_process, [(port, share, body) for share in shares])
    return count / (max(end for _, end in spans) - min(start for start, _ in spans))


def _load(path: Path) -> list[tuple[float, str]]:
    return [(moment, customer_id) for moment, customer_id in json.loads(path.read_text())]


def run(kind: str, events: int, workers: int, rate: float, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as temporary, fresh_database(kind, Path(temporary)) as url:
        workdir = Path(temporary)
        migrations.upgrade(url)
        secret = asyncio.run(_workspace(url))
        headers = {"Authorization": f"Bearer {secret}"}
        worker_env = {**ENVIRONMENT, "KOKYAKU_DATABASE_URL": url}
        worker = [sys.executable, "-m", "app", "worker"]
        with (
            running_server(
                "kokyaku",
                "app.main:create_app",
                database_url=url,
                workers=1,
                log_dir=workdir,
                settings=ENVIRONMENT,
            ) as server,
            httpx.Client(base_url=f"http://{server.host}", headers=headers, timeout=60) as api,
        ):
            with _receiver(workdir, "throughput") as (port, arrivals_file):
                endpoint = api.post(
                    "/v1/webhooks",
                    json={
                        "url": f"http://{LOOPBACK}:{port}/hooks",
                        "event_types": ["customer.created"],
                        "ordered": False,
                    },
                )
                endpoint.raise_for_status()
                for start in range(0, events, BATCH):
                    items = [{"display_name": f"配信 {n}"} for n in range(start, start + BATCH)]
                    api.post("/v1/customers/batch", json={"items": items}).raise_for_status()
                with contextlib.ExitStack() as running:
                    for number in range(workers):
                        running.enter_context(
                            _process(worker, workdir / f"worker-{number}.log", worker_env)
                        )
                    _wait_for(port, events)
                api.patch(f"/v1/webhooks/{endpoint.json()['id']}", json={"enabled": False})
            arrivals = sorted(moment for moment, _ in _load(arrivals_file))
            ours = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
            with _receiver(workdir, "baseline") as (port, _):
                sample = json.dumps({"type": "customer.created", "data": {"id": "x" * 36}}).encode()
                bare = _baseline(port, events, sample.ljust(1500), workers)

            with _receiver(workdir, "latency") as (port, arrivals_file):
                api.post(
                    "/v1/webhooks",
                    json={
                        "url": f"http://{LOOPBACK}:{port}/hooks",
                        "event_types": ["customer.created"],
                    },
                ).raise_for_status()
                committed: dict[str, float] = {}
                with contextlib.ExitStack() as running:
                    for number in range(workers):
                        running.enter_context(
                            _process(worker, workdir / f"worker-l{number}.log", worker_env)
                        )
                    # The clock starts once a first event went through: the workers are up,
                    # listening and connected.
                    api.post("/v1/customers", json={"display_name": "準備"}).raise_for_status()
                    _wait_for(port, 1)
                    interval, next_at = 1 / rate, time.perf_counter()
                    for number in range(int(rate * seconds)):
                        next_at += interval
                        created = api.post("/v1/customers", json={"display_name": f"遅延 {number}"})
                        created.raise_for_status()
                        committed[created.json()["id"]] = time.time()
                        time.sleep(max(0.0, next_at - time.perf_counter()))
                    _wait_for(port, len(committed) + 1)
            delays = [
                moment - committed[customer_id]
                for moment, customer_id in _load(arrivals_file)
                if customer_id in committed
            ]

    p50, p99 = percentile_ms(delays, 0.5), percentile_ms(delays, 0.99)
    print(f"webhooks on {kind}, {workers} workers")
    print(
        f"  throughput  {ours:8.0f} deliveries/s  (straight POSTs {bare:.0f}/s, "
        f"ratio {ours / bare:.2f}; target >= {TARGET_PER_SECOND:.0f}/s: "
        f"{_verdict(ours >= TARGET_PER_SECOND)})"
    )
    print(
        f"  commit to delivery at {rate:.0f}/s: p50 {p50:.0f} ms "
        f"(target < {TARGET_P50_MS:.0f}: {_verdict(p50 < TARGET_P50_MS)}), "
        f"p99 {p99:.0f} ms (target < {TARGET_P99_MS:.0f}: {_verdict(p99 < TARGET_P99_MS)})"
    )


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--events", type=int, default=10_000, help="for the throughput run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=100.0, help="events/s for the latency run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the latency run")
    args = parser.parse_args()
    run(args.database, args.events, args.workers, args.rate, args.seconds)


if __name__ == "__main__":
    main()
