"""The `kokyaku` command as scripts use it: real processes on a real database."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.main import create_app
from tests.api.test_conventions import client_for
from tests.conftest import free_port, settings_for


def kokyaku(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KOKYAKU_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_workspace_and_key_creation_print_for_scripts(database_url: str) -> None:
    name = f"cli-{os.getpid()}-{id(database_url)}"
    created = kokyaku(database_url, "workspace", "create", name)
    assert created.returncode == 0, created.stderr
    duplicate = kokyaku(database_url, "workspace", "create", name)
    assert duplicate.returncode == 1
    assert "exists" in duplicate.stderr

    issued = kokyaku(
        database_url, "apikey", "create", "--workspace", name, "--scopes", "users:read"
    )
    assert issued.returncode == 0, issued.stderr
    secret = issued.stdout.strip()
    assert issued.stdout == secret + "\n"
    assert secret.startswith("kky_")

    async with client_for(create_app(settings_for(database_url))) as http:
        allowed = await http.get("/v1/users", headers={"Authorization": f"Bearer {secret}"})
        denied = await http.get("/v1/api-keys", headers={"Authorization": f"Bearer {secret}"})
    assert allowed.status_code == 200
    assert denied.status_code == 403


def test_unknown_scope_and_workspace_are_refused(database_url: str) -> None:
    bad_scope = kokyaku(
        database_url, "apikey", "create", "--workspace", "x", "--scopes", "everything"
    )
    assert bad_scope.returncode == 2
    assert bad_scope.stdout == ""
    unknown = kokyaku(
        database_url, "apikey", "create", "--workspace", "no-such", "--scopes", "admin"
    )
    assert unknown.returncode == 1
    assert unknown.stdout == ""


def test_openapi_export_writes_the_document(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    result = kokyaku("sqlite+aiosqlite://", "openapi", "--output", str(target))
    assert result.returncode == 0, result.stderr
    assert '"/v1/users"' in target.read_text(encoding="utf-8")


def test_serve_bootstraps_an_empty_database_and_serves(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    assert kokyaku(database_url, "migrate").returncode == 0
    port = free_port()
    env = {**os.environ, "KOKYAKU_DATABASE_URL": database_url, "KOKYAKU_LOG_LEVEL": "INFO"}
    server = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        banner = "".join(server.stdout.readline() for _ in range(3))
        secret = re.search(r"kky_[\w-]+", banner)
        assert secret is not None, banner
        response = _wait_for(f"http://127.0.0.1:{port}/v1/users", secret.group(0))
        assert response.status_code == 200
        assert response.json() == {"data": [], "next_cursor": None}
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=20)
    logged = [json.loads(line) for line in errors.splitlines() if line.startswith("{")]
    assert any(entry.get("route") == "/v1/users" for entry in logged)
    assert not any("unsupported" in entry["msg"] for entry in logged)
    assert not any(entry["level"] == "error" for entry in logged)


def _wait_for(url: str, secret: str) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        try:
            return httpx.get(url, headers={"Authorization": f"Bearer {secret}"}, timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


async def test_seed_fills_a_workspace_with_a_japanese_shop(database_url: str) -> None:
    workspace = f"seed-{os.getpid()}-{time.monotonic_ns()}"
    seeded = kokyaku(
        database_url, "seed", "--workspace", workspace, "--customers", "120", "--companies", "4"
    )
    assert seeded.returncode == 0, seeded.stderr
    issued = kokyaku(
        database_url, "apikey", "create", "--workspace", workspace, "--scopes", "customers:read"
    )
    headers = {"Authorization": f"Bearer {issued.stdout.strip()}"}
    async with client_for(create_app(settings_for(database_url))) as http:
        customers = await http.get("/v1/customers?limit=200", headers=headers)
        companies = await http.get("/v1/companies", headers=headers)
    people = customers.json()["data"]
    assert len(people) == 120
    assert len(companies.json()["data"]) == 4
    with_readings = [person for person in people if person["family_name_kana"]]
    assert len(with_readings) > len(people) // 2
    assert all(person["phones"][0].startswith("+81") for person in people if person["phones"])


def test_metrics_rebuild_runs_over_a_workspace(database_url: str) -> None:
    workspace = f"rebuild-{os.getpid()}-{time.monotonic_ns()}"
    assert (
        kokyaku(database_url, "seed", "--workspace", workspace, "--customers", "30").returncode == 0
    )
    rebuilt = kokyaku(database_url, "metrics", "rebuild", "--workspace", workspace)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "Recomputed the metrics of 30 customers." in rebuilt.stderr
