"""Faults with real processes and real databases: nothing half-applied, nothing lost, no 500."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from app.db import migrations
from app.main import create_app
from tests.api.test_conventions import client_for
from tests.conftest import Tenant, free_port, make_tenant, settings_for

BATCH = 1000


def _order_events(run: str) -> list[dict[str, object]]:
    return [
        {
            "event_id": f"{run}-{number}",
            "type": "order.completed",
            "occurred_at": "2026-11-01T10:00:00+09:00",
            "customer": {"external_id": f"{run}-u{number % 400}"},
            "order": {
                "order_id": f"{run}-o{number}",
                "currency": "JPY",
                "lines": [
                    {"sku": "TEA-1", "quantity": 1, "unit_price": 1200},
                    {"sku": "CUP-2", "quantity": 2, "unit_price": 800},
                    {"sku": "SWT-3", "quantity": 1, "unit_price": 600},
                ],
            },
        }
        for number in range(BATCH)
    ]


def _serve(database_url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KOKYAKU_DATABASE_URL": database_url, "KOKYAKU_DISPATCHER": "off"}
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise AssertionError(log.read_text())


async def _orders(client: httpx.AsyncClient, tenant: Tenant, run: str) -> int:
    count, cursor = 0, None
    while True:
        query = "/v1/orders?limit=200" + (f"&cursor={cursor}" if cursor else "")
        body = (await client.get(query, headers=tenant.headers)).json()
        count += sum(1 for order in body["data"] if order["order_id"].startswith(f"{run}-"))
        if body["next_cursor"] is None:
            return count
        cursor = body["next_cursor"]


@pytest.mark.parametrize("delay", [0.05, 0.4])
async def test_a_batch_cut_off_by_kill_9_is_all_or_nothing_and_its_retry_applies_once(
    client: httpx.AsyncClient, tenant: Tenant, database_url: str, tmp_path: Path, delay: float
) -> None:
    run = f"kill{int(delay * 100)}{os.getpid()}"
    events = _order_events(run)
    port = free_port()
    server = _serve(database_url, port, tmp_path / "serve.log")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            sending = asyncio.create_task(
                http.post("/v1/events/batch", json={"items": events}, headers=tenant.headers)
            )
            await asyncio.sleep(delay)
            server.send_signal(signal.SIGKILL)
            server.wait(10)
            with pytest.raises(httpx.TransportError):
                await sending
    finally:
        if server.poll() is None:
            server.kill()
    assert await _orders(client, tenant, run) in (0, BATCH)

    retried = await client.post("/v1/events/batch", json={"items": events}, headers=tenant.headers)
    assert retried.status_code == 200, retried.text
    statuses = {result["status"] for result in retried.json()["results"]}
    assert statuses <= {"accepted", "duplicate"}
    assert await _orders(client, tenant, run) == BATCH
    customer = await client.get(f"/v1/customers?external_id=shop:{run}-u7", headers=tenant.headers)
    [buyer] = customer.json()["data"]
    assert buyer["metrics"]["order_count"] == len(range(7, BATCH, 400))


async def test_lost_database_connections_answer_503_then_recover(
    backend: str, unmigrated_database_url: str
) -> None:
    if backend != "postgresql":
        pytest.skip("an embedded SQLite has no connections to lose")
    await asyncio.to_thread(migrations.upgrade, unmigrated_database_url)
    app = create_app(settings_for(unmigrated_database_url))
    async with client_for(app) as http:
        tenant = await make_tenant(app.state.database)
        for _ in range(5):  # the pool holds live connections now
            assert (await http.get("/v1/customers", headers=tenant.headers)).status_code == 200
        name = make_url(unmigrated_database_url).database
        admin = await asyncpg.connect(
            make_url(unmigrated_database_url)
            .set(drivername="postgresql", database="postgres")
            .render_as_string(hide_password=False)
        )
        try:
            terminated = await admin.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
        finally:
            await admin.close()
        statuses = []
        for _ in range(20):
            response = await http.post(
                "/v1/customers", json={"display_name": "再接続"}, headers=tenant.headers
            )
            statuses.append(response.status_code)
            if response.status_code != 201:
                assert response.status_code == 503, response.text
                assert response.headers["content-type"] == "application/problem+json"
        assert terminated >= 1
        # A request that met a dead connection answers 503 (the pool may also notice first).
        assert statuses[-5:] == [201] * 5  # recovered without a restart
