"""The `kokyaku` command as scripts use it: real processes on a real database."""

import os
import subprocess
import sys
from pathlib import Path

from app.main import create_app
from tests.api.test_conventions import client_for
from tests.conftest import settings_for


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
