"""Health, readiness, metrics, offline docs, and the committed OpenAPI document."""

import json
from pathlib import Path

from fastapi import FastAPI
from httpx import AsyncClient

from app.main import create_app
from tests.api.test_conventions import client_for
from tests.conftest import Tenant, settings_for

OPENAPI_PATH = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


async def test_healthz(client: AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_when_migrated(client: AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200


async def test_readyz_is_503_on_an_unmigrated_database(unmigrated_database_url: str) -> None:
    async with client_for(create_app(settings_for(unmigrated_database_url))) as http:
        response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"


async def test_metrics_count_requests_by_route(client: AsyncClient, tenant: Tenant) -> None:
    await client.get("/v1/users", headers=tenant.headers)
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert 'kokyaku_http_requests_total{method="GET",route="/v1/users",status="200"}' in (
        response.text
    )
    assert "kokyaku_http_request_duration_seconds_bucket" in response.text


async def test_docs_are_served_without_internet_access(client: AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in page.text
    assert "//cdn" not in page.text
    script = await client.get("/docs-assets/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert len(script.content) > 100_000


def test_committed_openapi_matches_the_app(app: FastAPI) -> None:
    committed = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    assert committed == app.openapi(), "openapi/openapi.json is stale: run `make openapi`"


def test_every_v1_operation_documents_its_problems(app: FastAPI) -> None:
    schema = app.openapi()
    for path, operations in schema["paths"].items():
        if not path.startswith("/v1"):
            continue
        for method, operation in operations.items():
            responses = operation["responses"]
            for status in ("401", "403", "422", "429"):
                content = responses[status]["content"]
                assert "application/problem+json" in content, f"{method} {path} {status}"
            assert operation.get("security"), f"{method} {path} declares no security"
