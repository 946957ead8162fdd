"""Faults with real processes and real databases: nothing half-applied, nothing lost, no 500."""

import asyncio
import itertools
import os
import pwd
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from app.db import migrations
from app.db.session import create_database
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
    env = {
        **os.environ,
        "KOKYAKU_DATABASE_URL": database_url,
        "KOKYAKU_DISPATCHER": "off",
        "KOKYAKU_RATE_LIMIT": "1000000",
    }
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server.poll() is None:
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
    server = await asyncio.to_thread(_serve, database_url, port, tmp_path / "serve.log")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            sending = asyncio.create_task(
                http.post("/v1/events/batch", json={"items": events}, headers=tenant.headers)
            )
            await asyncio.sleep(delay)
            server.send_signal(signal.SIGKILL)
            server.wait(10)
            [outcome] = await asyncio.gather(sending, return_exceptions=True)
    finally:
        if server.poll() is None:
            server.kill()
    if isinstance(outcome, httpx.Response):
        # A fast machine answered before the kill: then the whole batch is in.
        assert outcome.status_code == 200, outcome.text
        assert await _orders(client, tenant, run) == BATCH
    else:
        assert isinstance(outcome, httpx.TransportError), outcome
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


def _postgres_bindir() -> Path | None:
    """Where initdb and pg_ctl live: `pg_config --bindir`, else the newest Debian-style install."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        found = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False, timeout=10
        )
        candidates.append(Path(found.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


@dataclass(frozen=True)
class PrivatePostgres:
    """A PostgreSQL server of the test's own, on a free port, that it may stop and start."""

    bindir: Path
    directory: Path
    port: int
    user: str | None  # initdb and postgres refuse to run as root: they run as this user then

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _pg(self, *arguments: str) -> None:
        completed = subprocess.run(
            [str(self.bindir / arguments[0]), *arguments[1:]],
            user=self.user,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr

    def initialise(self) -> None:
        self._pg(
            "initdb", "-D", str(self.directory / "data"), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        self._pg(
            "pg_ctl", "start", "-D", str(self.directory / "data"), "-l",
            str(self.directory / "server.log"), "-w", "-t", "60", "-o", options,
        )  # fmt: skip

    def stop(self, mode: str) -> None:
        self._pg("pg_ctl", "stop", "-D", str(self.directory / "data"), "-m", mode, "-w", "-t", "60")


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    bindir = _postgres_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    user = None
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres").pw_name
        except KeyError:
            pytest.skip("running as root, which initdb refuses, and there is no postgres user")
    directory = Path(tempfile.mkdtemp(prefix="kokyaku-pg-"))
    if user is not None:
        shutil.chown(directory, user)
    server = PrivatePostgres(bindir, directory, free_port(), user)
    try:
        server.initialise()
        server.start()
        migrations.upgrade(server.url)
        yield server
    finally:
        if (directory / "data" / "postmaster.pid").exists():
            server.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_postgres_restarted_under_load_answers_503_then_recovers_with_nothing_lost(
    private_postgres: PrivatePostgres, tmp_path: Path, mode: str
) -> None:
    database = create_database(settings_for(private_postgres.url))
    try:
        tenant = await make_tenant(database)
    finally:
        await database.dispose()
    port = free_port()
    server = await asyncio.to_thread(_serve, private_postgres.url, port, tmp_path / "serve.log")
    created: list[str] = []
    answers: list[tuple[str, int, str]] = []  # (phase, status, media type)
    phase = "up"
    loading = True
    names = itertools.count()
    answered = asyncio.Event()

    async def load(http: httpx.AsyncClient) -> None:
        while loading:
            name = f"restart-{mode}-{next(names)}"
            response = await http.post(
                "/v1/customers", json={"display_name": name}, headers=tenant.headers
            )
            answers.append((phase, response.status_code, response.headers["content-type"]))
            answered.set()
            if response.status_code == 201:
                created.append(response.json()["id"])
                read = await http.get(f"/v1/customers/{created[-1]}", headers=tenant.headers)
                answers.append((phase, read.status_code, read.headers["content-type"]))

    async def answered_since(count: int, status: int) -> None:
        """Waits until `count` answers with `status` came after the call."""
        start = len(answers)
        while sum(1 for _, code, _ in answers[start:] if code == status) < count:
            answered.clear()
            await answered.wait()

    try:
        # The bound on every request: a request that waits on a dead database must not hang.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as http:
            clients = [asyncio.create_task(load(http)) for _ in range(6)]
            await asyncio.wait_for(answered_since(30, 201), 60)
            phase = "stopping"
            await asyncio.to_thread(private_postgres.stop, mode)
            phase = "down"
            await asyncio.wait_for(answered_since(20, 503), 60)
            unready = await http.get("/readyz")
            assert unready.status_code == 503, unready.text
            phase = "starting"
            await asyncio.to_thread(private_postgres.start)
            phase = "restarted"
            # Recovered without a restart of the service: successes again, from the same process.
            await asyncio.wait_for(answered_since(30, 201), 60)
            loading = False
            await asyncio.gather(*clients)
            assert (await http.get("/readyz")).status_code == 200
            assert server.poll() is None
    finally:
        loading = False
        server.terminate()
        server.wait(10)

    unexpected = [
        answer
        for answer in answers
        if answer[1] not in (200, 201)
        and (answer[1], answer[2]) != (503, "application/problem+json")
    ]
    assert not unexpected, unexpected[:10]
    assert any(answer == ("down", 503, "application/problem+json") for answer in answers)
    connection = await asyncpg.connect(private_postgres.url.replace("+asyncpg", ""))
    try:
        stored = {
            str(row["id"])
            for row in await connection.fetch(
                "SELECT id FROM customer WHERE workspace_id = $1", tenant.id
            )
        }
    finally:
        await connection.close()
    # Every 201 was committed and survived the restart (a 503 may have committed too).
    assert set(created) <= stored


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"


def _sqlite_file_state(path: Path) -> tuple[str, int]:
    """PRAGMA integrity_check and the number of customers, read by a connection of our own."""
    with sqlite3.connect(path) as connection:
        [[integrity]] = connection.execute("PRAGMA integrity_check").fetchall()
        [[customers]] = connection.execute("SELECT count(*) FROM customer").fetchall()
    connection.close()
    return integrity, customers


async def _sqlite_with_customers(path: Path, count: int) -> tuple[str, Tenant]:
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(migrations.upgrade, url)
    app = create_app(settings_for(url))
    async with client_for(app) as http:
        tenant = await make_tenant(app.state.database)
        for number in range(count):
            created = await http.post(
                "/v1/customers", json={"display_name": f"保存 {number}"}, headers=tenant.headers
            )
            assert created.status_code == 201, created.text
    return url, tenant


async def test_read_only_sqlite_answers_503_for_writes_and_keeps_the_file_intact(
    tmp_path: Path,
) -> None:
    path = tmp_path / "kokyaku.db"
    _, tenant = await _sqlite_with_customers(path, 5)
    # mode=ro is what a read-only file or mount gives SQLite (SQLITE_READONLY on the first
    # write), and holds for root too, whom file permissions do not stop.
    read_only = create_app(settings_for(f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true"))
    async with client_for(read_only) as http:
        listed = await http.get("/v1/customers", headers=tenant.headers)
        assert listed.status_code == 200, listed.text
        [first, *_] = listed.json()["data"]
        _assert_unavailable(
            await http.post("/v1/customers", json={"display_name": "新規"}, headers=tenant.headers)
        )
        _assert_unavailable(
            await http.patch(
                f"/v1/customers/{first['id']}",
                json={"display_name": "変更"},
                headers=tenant.headers,
            )
        )
        _assert_unavailable(
            await http.delete(f"/v1/customers/{first['id']}", headers=tenant.headers)
        )
        assert (await http.get("/v1/customers", headers=tenant.headers)).json() == listed.json()
    assert _sqlite_file_state(path) == ("ok", 5)


async def test_full_sqlite_answers_503_keeps_what_was_committed_and_recovers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "kokyaku.db"
    url, tenant = await _sqlite_with_customers(path, 5)
    app = create_app(settings_for(url))
    write_engine = app.state.database.write_engine.sync_engine

    def cap_the_file(dbapi_connection: Any, _record: object) -> None:
        # The database may not grow past its size now: SQLite answers SQLITE_FULL, the error
        # a full disk gives, on the first write that needs a new page.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA page_count")
        [[pages]] = cursor.fetchall()
        cursor.execute(f"PRAGMA max_page_count = {pages}")
        cursor.close()

    event.listen(write_engine, "connect", cap_the_file)
    created = 0
    async with client_for(app) as http:
        for number in range(2000):
            response = await http.post(
                "/v1/customers",
                json={"display_name": f"満杯 {number} " + "x" * 150},
                headers=tenant.headers,
            )
            if response.status_code != 201:
                _assert_unavailable(response)
                break
            created += 1
        else:
            pytest.fail("the capped database never filled up")
        listed = await http.get("/v1/customers?limit=200", headers=tenant.headers)
        assert len(listed.json()["data"]) == 5 + created
        assert _sqlite_file_state(path) == ("ok", 5 + created)

        # Space again (a new connection without the cap): the same app writes, no restart.
        event.remove(write_engine, "connect", cap_the_file)
        await app.state.database.write_engine.dispose()
        again = await http.post(
            "/v1/customers", json={"display_name": "空き"}, headers=tenant.headers
        )
        assert again.status_code == 201, again.text
    assert _sqlite_file_state(path) == ("ok", 6 + created)
