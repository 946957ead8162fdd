"""The shared API conventions of DESIGN §5: problems, limits, request ids, idempotency, CORS."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.api.middleware import request_fingerprint
from app.core.idempotency import IdempotencyStore
from app.db.session import Database
from app.main import create_app
from tests.conftest import Tenant, make_tenant, settings_for

PROBLEM = "application/problem+json"


@asynccontextmanager
async def client_for(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://kokyaku.test") as http:
            yield http


def user_body(**fields: Any) -> dict[str, Any]:
    return {
        "name": "山田 太郎",
        "email": f"{uuid.uuid4().hex}@example.jp",
        "role": "sales",
        **fields,
    }


async def test_unknown_route_and_method_are_problems(client: AsyncClient, tenant: Tenant) -> None:
    missing = await client.get("/v1/nothing-here", headers=tenant.headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    wrong_method = await client.put("/v1/users", headers=tenant.headers)
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"] == PROBLEM
    assert wrong_method.json()["status"] == 405


async def test_malformed_id_and_json_are_422(client: AsyncClient, tenant: Tenant) -> None:
    bad_id = await client.get("/v1/users/not-a-uuid", headers=tenant.headers)
    assert bad_id.status_code == 422
    assert bad_id.json()["errors"][0]["loc"] == ["path", "user_id"]
    bad_json = await client.post(
        "/v1/users",
        content=b'{"name": ',
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert bad_json.status_code == 422
    assert bad_json.headers["content-type"] == PROBLEM


async def test_non_json_body_is_415(client: AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/v1/users",
        content=b"name=x",
        headers={**tenant.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert response.headers["content-type"] == PROBLEM


async def test_oversized_body_is_413_declared_or_streamed(
    client: AsyncClient, tenant: Tenant
) -> None:
    big = b'{"name": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    declared = await client.post(
        "/v1/users", content=big, headers={**tenant.headers, "Content-Type": "application/json"}
    )
    assert declared.status_code == 413
    assert declared.headers["content-type"] == PROBLEM

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 1 << 20):
            yield big[start : start + (1 << 20)]

    streamed = await client.post(
        "/v1/users",
        content=chunks(),
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413
    assert streamed.json()["status"] == 413


async def test_unexpected_failure_is_a_500_problem_without_internals(database_url: str) -> None:
    app = create_app(settings_for(database_url))

    async def explode() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/v1/explode", explode)
    async with client_for(app) as http:
        response = await http.get("/v1/explode", headers={"X-Request-Id": "trace-500"})
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    assert response.headers["x-request-id"] == "trace-500"


async def test_request_id_is_echoed_or_generated(client: AsyncClient) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    generated = await client.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    unsafe = await client.get("/healthz", headers={"X-Request-Id": "a b\tc"})
    assert unsafe.headers["x-request-id"] != "a b\tc"


async def test_every_v1_response_carries_rate_limit_headers(
    client: AsyncClient, tenant: Tenant
) -> None:
    for response in (
        await client.get("/v1/users", headers=tenant.headers),
        await client.get("/v1/users"),
        await client.get("/v1/users/not-a-uuid", headers=tenant.headers),
    ):
        assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= set(
            response.headers
        )


@pytest.mark.parametrize("redis_url", [None, "redis://127.0.0.1:6379/0"])
async def test_rate_limit_answers_429_with_retry_after(
    database_url: str, database: Database, redis_url: str | None
) -> None:
    tenant = await make_tenant(database)
    app = create_app(settings_for(database_url, rate_limit=3, redis_url=redis_url))
    async with client_for(app) as http:
        answers = [await http.get("/v1/users", headers=tenant.headers) for _ in range(4)]
        other = await make_tenant(database)
        unaffected = await http.get("/v1/users", headers=other.headers)
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["ratelimit-remaining"] for r in answers] == ["2", "1", "0", "0"]
    limited = answers[-1]
    assert limited.headers["content-type"] == PROBLEM
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert unaffected.status_code == 200


async def test_cors_allows_only_configured_origins(database_url: str) -> None:
    app = create_app(settings_for(database_url, cors_origins="https://crm.example.jp"))
    preflight_headers = {"Access-Control-Request-Method": "PATCH"}
    async with client_for(app) as http:
        allowed = await http.options(
            "/v1/users", headers={"Origin": "https://crm.example.jp", **preflight_headers}
        )
        denied = await http.options(
            "/v1/users", headers={"Origin": "https://evil.example", **preflight_headers}
        )
    assert allowed.headers["access-control-allow-origin"] == "https://crm.example.jp"
    assert "access-control-allow-origin" not in denied.headers


async def test_cors_wildcard_is_refused() -> None:
    with pytest.raises(ValueError, match="explicitly"):
        settings_for("sqlite+aiosqlite://", cors_origins="*")


class TestIdempotency:
    async def test_replays_the_first_outcome(self, client: AsyncClient, tenant: Tenant) -> None:
        headers = {**tenant.headers, "Idempotency-Key": "create-user-1"}
        body = user_body()
        first = await client.post("/v1/users", json=body, headers=headers)
        again = await client.post("/v1/users", json=body, headers=headers)
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["location"] == first.headers["location"]
        assert again.headers["idempotent-replayed"] == "true"
        listed = await client.get("/v1/users", headers=tenant.headers)
        assert len(listed.json()["data"]) == 1

    async def test_same_key_with_another_body_is_422(
        self, client: AsyncClient, tenant: Tenant
    ) -> None:
        headers = {**tenant.headers, "Idempotency-Key": "k-mismatch"}
        await client.post("/v1/users", json=user_body(), headers=headers)
        response = await client.post("/v1/users", json=user_body(), headers=headers)
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]

    async def test_rejected_validation_stores_nothing(
        self, client: AsyncClient, tenant: Tenant
    ) -> None:
        headers = {**tenant.headers, "Idempotency-Key": "k-invalid"}
        invalid = await client.post("/v1/users", json={"name": ""}, headers=headers)
        assert invalid.status_code == 422
        fixed = await client.post("/v1/users", json=user_body(), headers=headers)
        assert fixed.status_code == 201

    async def test_key_in_flight_is_409(self, client: AsyncClient, tenant: Tenant) -> None:
        body = user_body()
        keys = await client.get("/v1/api-keys", headers=tenant.headers)
        admin_key_id = uuid.UUID(keys.json()["data"][0]["id"])
        store = IdempotencyStore(tenant.database.writer, ttl=timedelta(days=1))
        fingerprint = request_fingerprint(
            "/v1/users", b"", httpx.Request("POST", "/", json=body).read()
        )
        await store.claim(tenant.id, admin_key_id, "k-busy", fingerprint)
        response = await client.post(
            "/v1/users", json=body, headers={**tenant.headers, "Idempotency-Key": "k-busy"}
        )
        assert response.status_code == 409
        assert response.headers["content-type"] == PROBLEM

    async def test_concurrent_copies_create_once(self, client: AsyncClient, tenant: Tenant) -> None:
        headers = {**tenant.headers, "Idempotency-Key": "k-race"}
        body = user_body()
        answers = await asyncio.gather(
            *(client.post("/v1/users", json=body, headers=headers) for _ in range(8))
        )
        assert {r.status_code for r in answers} <= {201, 409}
        assert sum(1 for r in answers if r.status_code == 201) >= 1
        listed = await client.get("/v1/users", headers=tenant.headers)
        assert len(listed.json()["data"]) == 1

    async def test_keys_are_scoped_to_the_api_key(
        self, client: AsyncClient, tenant: Tenant
    ) -> None:
        other_headers = await tenant.headers_with("users:write")
        body = user_body()
        first = await client.post(
            "/v1/users", json=body, headers={**tenant.headers, "Idempotency-Key": "shared"}
        )
        second = await client.post(
            "/v1/users", json=body, headers={**other_headers, "Idempotency-Key": "shared"}
        )
        assert first.status_code == 201
        assert second.status_code == 409  # a real second create: the email is taken
        assert "idempotent-replayed" not in second.headers

    async def test_overlong_key_is_422(self, client: AsyncClient, tenant: Tenant) -> None:
        response = await client.post(
            "/v1/users", json=user_body(), headers={**tenant.headers, "Idempotency-Key": "k" * 256}
        )
        assert response.status_code == 422


async def test_nul_characters_are_refused_on_both_databases(
    client: AsyncClient, tenant: Tenant
) -> None:
    in_body = await client.post(
        "/v1/customers",
        json={"family_name": "山\x00田", "attributes": {}, "tags": ["ok", "b\x00d"]},
        headers=tenant.headers,
    )
    assert in_body.status_code == 422
    assert {tuple(e["loc"]) for e in in_body.json()["errors"]} == {
        ("body", "family_name"),
        ("body", "tags"),
    }
    in_filter = await client.post(
        "/v1/customers/search",
        json={"filter": {"field": "display_name", "op": "eq", "value": "\x00"}},
        headers=tenant.headers,
    )
    assert in_filter.status_code == 422
    in_query = await client.get("/v1/customers?q=%00", headers=tenant.headers)
    assert in_query.status_code == 422
    assert in_query.headers["content-type"] == PROBLEM
    assert "x-request-id" in in_query.headers


async def test_a_body_that_is_not_utf8_is_a_documented_400(
    client: AsyncClient, tenant: Tenant
) -> None:
    response = await client.post(
        "/v1/users",
        content=b'{"name": "\xff"}',
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
