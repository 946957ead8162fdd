"""API keys: shown once, stored hashed, scoped, expiring and revocable."""

from datetime import timedelta

from httpx import AsyncClient
from sqlalchemy import select

from app.core.clock import utcnow
from app.domain.access.entities import ApiKey
from app.domain.access.scopes import Scope
from tests.conftest import Tenant


async def test_created_key_is_shown_once_and_works(client: AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/v1/api-keys",
        json={"name": "shop sync", "scopes": ["users:read", "events:write"]},
        headers=tenant.headers,
    )
    assert response.status_code == 201
    created = response.json()
    secret = created["secret"]
    assert secret.startswith("kky_")
    assert secret.startswith(created["prefix"])
    assert created["scopes"] == ["events:write", "users:read"]

    fetched = await client.get(f"/v1/api-keys/{created['id']}", headers=tenant.headers)
    assert "secret" not in fetched.json()
    listed = await client.get("/v1/api-keys", headers=tenant.headers)
    assert all("secret" not in key for key in listed.json()["data"])

    own = await client.get("/v1/users", headers={"Authorization": f"Bearer {secret}"})
    assert own.status_code == 200


async def test_only_a_hash_of_the_key_is_stored(client: AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/v1/api-keys", json={"name": "k", "scopes": ["admin"]}, headers=tenant.headers
    )
    secret = response.json()["secret"]
    async with tenant.database.reader() as session:
        stored = (await session.execute(select(ApiKey.secret_hash, ApiKey.prefix))).all()
    assert all(secret not in (secret_hash, prefix) for secret_hash, prefix in stored)


async def test_revoked_key_answers_401(client: AsyncClient, tenant: Tenant) -> None:
    created = await client.post(
        "/v1/api-keys", json={"name": "temp", "scopes": ["users:read"]}, headers=tenant.headers
    )
    key = created.json()
    headers = {"Authorization": f"Bearer {key['secret']}"}
    assert (await client.get("/v1/users", headers=headers)).status_code == 200
    revoked = await client.delete(f"/v1/api-keys/{key['id']}", headers=tenant.headers)
    assert revoked.status_code == 204
    response = await client.get("/v1/users", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    shown = await client.get(f"/v1/api-keys/{key['id']}", headers=tenant.headers)
    assert shown.json()["revoked_at"] is not None


async def test_expired_key_answers_401(client: AsyncClient, tenant: Tenant) -> None:
    soon = utcnow() + timedelta(milliseconds=300)
    secret = await tenant.key(Scope.USERS_READ, expires_at=soon.isoformat())
    headers = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/v1/users", headers=headers)).status_code == 200
    async with tenant.database.writer() as session, session.begin():
        key = (await session.execute(select(ApiKey).where(ApiKey.expires_at == soon))).scalar_one()
        key.expires_at = utcnow() - timedelta(seconds=1)
    assert (await client.get("/v1/users", headers=headers)).status_code == 401


async def test_expiry_in_the_past_is_rejected(client: AsyncClient, tenant: Tenant) -> None:
    past = (utcnow() - timedelta(days=1)).isoformat()
    response = await client.post(
        "/v1/api-keys",
        json={"name": "old", "scopes": ["admin"], "expires_at": past},
        headers=tenant.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "expires_at"]


async def test_unknown_scope_is_rejected(client: AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/v1/api-keys", json={"name": "x", "scopes": ["root"]}, headers=tenant.headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "scopes", 0]


async def test_bad_credentials_answer_401(client: AsyncClient) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer kky_not-a-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
    ):
        response = await client.get("/v1/users", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_missing_scope_answers_403_naming_it(client: AsyncClient, tenant: Tenant) -> None:
    headers = await tenant.headers_with(Scope.USERS_READ)
    response = await client.get("/v1/api-keys", headers=headers)
    assert response.status_code == 403
    problem = response.json()
    assert problem["required_scope"] == "admin"
    assert "admin" in problem["detail"]


async def test_keys_of_another_workspace_are_invisible(
    client: AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    created = await client.post(
        "/v1/api-keys", json={"name": "theirs", "scopes": ["admin"]}, headers=other_tenant.headers
    )
    key_id = created.json()["id"]
    assert (await client.get(f"/v1/api-keys/{key_id}", headers=tenant.headers)).status_code == 404
    assert (
        await client.delete(f"/v1/api-keys/{key_id}", headers=tenant.headers)
    ).status_code == 404
    listed = await client.get("/v1/api-keys", headers=tenant.headers)
    assert key_id not in {key["id"] for key in listed.json()["data"]}
