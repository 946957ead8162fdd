"""The caller's workspace, the audit log and the event feed."""

from httpx import AsyncClient

from tests.api.factories import read_feed
from tests.conftest import Tenant


async def test_workspace_is_read_and_renamed_with_if_match(
    client: AsyncClient, tenant: Tenant
) -> None:
    current = await client.get("/v1/workspace", headers=tenant.headers)
    assert current.json()["name"] == tenant.name
    etag = current.headers["etag"]
    renamed = await client.patch(
        "/v1/workspace",
        json={"name": tenant.name + "-renamed"},
        headers={**tenant.headers, "If-Match": etag},
    )
    assert renamed.status_code == 200
    stale = await client.patch(
        "/v1/workspace", json={"name": "again"}, headers={**tenant.headers, "If-Match": etag}
    )
    assert stale.status_code == 412


async def test_workspace_names_are_unique(
    client: AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    response = await client.patch(
        "/v1/workspace", json={"name": other_tenant.name}, headers=tenant.headers
    )
    assert response.status_code == 409


async def test_audit_log_records_who_changed_what_from_which_request(
    client: AsyncClient, tenant: Tenant
) -> None:
    created = await client.post(
        "/v1/users",
        json={"name": "Audit", "email": "audit@example.jp", "role": "sales"},
        headers={**tenant.headers, "X-Request-Id": "req-audit-1"},
    )
    user_id = created.json()["id"]
    await client.patch(
        f"/v1/users/{user_id}",
        json={"role": "support"},
        headers={**tenant.headers, "X-Request-Id": "req-audit-2"},
    )
    log = await client.get(
        f"/v1/audit-log?subject_type=user&subject_id={user_id}", headers=tenant.headers
    )
    assert log.status_code == 200
    entries = log.json()["data"]
    assert [entry["type"] for entry in entries] == ["user.updated", "user.created"]
    assert [entry["request_id"] for entry in entries] == ["req-audit-2", "req-audit-1"]
    assert entries[0]["changes"] == {"role": {"old": "sales", "new": "support"}}
    assert entries[0]["actor_kind"] == "api_key"
    keys = await client.get("/v1/api-keys", headers=tenant.headers)
    assert entries[0]["actor_api_key_id"] == keys.json()["data"][0]["id"]


async def test_audit_log_is_confined_to_the_workspace(
    client: AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    await client.post(
        "/v1/users",
        json={"name": "Other", "email": "o@example.jp", "role": "sales"},
        headers=other_tenant.headers,
    )
    log = await client.get("/v1/audit-log?limit=200", headers=tenant.headers)
    assert {entry["type"] for entry in log.json()["data"]} <= {
        "workspace.created",
        "pipeline.created",
        "api_key.created",
    }


async def test_feed_pages_in_order_and_resumes_from_its_cursor(
    client: AsyncClient, tenant: Tenant
) -> None:
    for index in range(3):
        await client.post(
            "/v1/users",
            json={"name": f"F{index}", "email": f"f{index}@example.jp", "role": "sales"},
            headers=tenant.headers,
        )
    await read_feed(client, tenant, at_least=6)
    first = (await client.get("/v1/events/feed?limit=3", headers=tenant.headers)).json()
    assert [event["type"] for event in first["data"]] == [
        "workspace.created",
        "pipeline.created",
        "api_key.created",
    ]
    assert first["has_more"] is True
    rest = (
        await client.get(f"/v1/events/feed?after={first['next_cursor']}", headers=tenant.headers)
    ).json()
    assert [event["data"]["name"] for event in rest["data"]] == ["F0", "F1", "F2"]
    assert rest["has_more"] is False
    idle = (
        await client.get(f"/v1/events/feed?after={rest['next_cursor']}", headers=tenant.headers)
    ).json()
    assert idle == {"data": [], "next_cursor": rest["next_cursor"], "has_more": False}


async def test_feed_rejects_a_malformed_cursor(client: AsyncClient, tenant: Tenant) -> None:
    response = await client.get("/v1/events/feed?after=garbage", headers=tenant.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "after"]
