"""Small builders and readers of test data through the public API."""

import asyncio
import uuid
from typing import Any

from httpx import AsyncClient

from tests.conftest import Tenant


async def post_created(
    client: AsyncClient, tenant: Tenant, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def make_customer(client: AsyncClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "family_name": "山田",
        "given_name": "太郎",
        "emails": [f"{uuid.uuid4().hex[:12]}@example.jp"],
    }
    body.update(fields)
    return await post_created(client, tenant, "/v1/customers", body)


async def make_company(client: AsyncClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "株式会社テスト"}
    body.update(fields)
    return await post_created(client, tenant, "/v1/companies", body)


async def make_user(client: AsyncClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "佐藤 花子",
        "email": f"{uuid.uuid4().hex[:12]}@example.jp",
        "role": "sales",
    }
    body.update(fields)
    return await post_created(client, tenant, "/v1/users", body)


async def make_field(client: AsyncClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"object": "customer", "key": "favorite_store", "label": "よく行く店舗"}
    body.update(fields)
    body.setdefault("type", "text")
    return await post_created(client, tenant, "/v1/fields", body)


async def read_feed(
    client: AsyncClient, tenant: Tenant, *, prefix: str = "", at_least: int = 1
) -> list[dict[str, Any]]:
    """The workspace's events whose type starts with `prefix`, once `at_least` are visible.

    On PostgreSQL the feed holds back events while an older write transaction anywhere on the
    server is still open, so a reader polls, as a real poller would.
    """
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        response = await client.get("/v1/events/feed?limit=200", headers=tenant.headers)
        assert response.status_code == 200, response.text
        events = [e for e in response.json()["data"] if e["type"].startswith(prefix)]
        if len(events) >= at_least or asyncio.get_running_loop().time() > deadline:
            return events
        await asyncio.sleep(0.05)


async def make_interaction(
    client: AsyncClient, tenant: Tenant, customer_id: str, **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "note", "customer_id": customer_id, "body": "メモ"}
    body.update(fields)
    return await post_created(client, tenant, "/v1/interactions", body)
