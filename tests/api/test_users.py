"""Team members over HTTP: the full resource conventions on a simple resource."""

import uuid
from typing import Any

from httpx import AsyncClient

from app.domain.access.scopes import Scope
from tests.api.factories import read_feed
from tests.conftest import Tenant


async def create_user(client: AsyncClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    body = {"name": "佐藤 花子", "email": f"user-{uuid.uuid4().hex}@example.jp", "role": "sales"}
    body.update(fields)
    response = await client.post("/v1/users", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def test_create_answers_201_with_location_etag_and_normalised_email(
    client: AsyncClient, tenant: Tenant
) -> None:
    response = await client.post(
        "/v1/users",
        json={"name": "佐藤 花子", "email": "Hanako@Example.JP", "role": "sales"},
        headers=tenant.headers,
    )
    assert response.status_code == 201
    user = response.json()
    assert response.headers["location"] == f"/v1/users/{user['id']}"
    assert response.headers["etag"] == '"1"'
    assert user["email"] == "hanako@example.jp"
    assert user["name"] == "佐藤 花子"
    assert user["version"] == 1
    assert user["active"] is True
    assert user["created_at"].endswith("Z")


async def test_get_returns_the_user_with_its_etag(client: AsyncClient, tenant: Tenant) -> None:
    user = await create_user(client, tenant)
    response = await client.get(f"/v1/users/{user['id']}", headers=tenant.headers)
    assert response.status_code == 200
    assert response.json() == user
    assert response.headers["etag"] == '"1"'


async def test_duplicate_email_answers_409_naming_the_existing_user(
    client: AsyncClient, tenant: Tenant
) -> None:
    user = await create_user(client, tenant, email="dup@example.jp")
    response = await client.post(
        "/v1/users",
        json={"name": "別人", "email": "DUP@example.jp", "role": "support"},
        headers=tenant.headers,
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["existing_id"] == user["id"]


async def test_same_email_is_allowed_in_another_workspace(
    client: AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    await create_user(client, tenant, email="shared@example.jp")
    await create_user(client, other_tenant, email="shared@example.jp")


async def test_invalid_fields_answer_422_with_their_paths(
    client: AsyncClient, tenant: Tenant
) -> None:
    response = await client.post(
        "/v1/users",
        json={"name": "", "email": "not-an-email", "role": "sales", "salary": 1},
        headers=tenant.headers,
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "urn:kokyaku:problem:validation-failed"
    locations = {tuple(error["loc"]) for error in problem["errors"]}
    assert locations == {("body", "name"), ("body", "email"), ("body", "salary")}
    listed = await client.get("/v1/users", headers=tenant.headers)
    assert listed.json()["data"] == []


async def test_patch_changes_only_sent_fields_and_bumps_version(
    client: AsyncClient, tenant: Tenant
) -> None:
    user = await create_user(client, tenant, role="sales")
    response = await client.patch(
        f"/v1/users/{user['id']}", json={"role": "manager"}, headers=tenant.headers
    )
    assert response.status_code == 200
    updated = response.json()
    assert updated["role"] == "manager"
    assert updated["name"] == user["name"]
    assert updated["version"] == 2
    assert response.headers["etag"] == '"2"'


async def test_patch_with_stale_if_match_answers_412_and_changes_nothing(
    client: AsyncClient, tenant: Tenant
) -> None:
    user = await create_user(client, tenant, role="sales")
    path = f"/v1/users/{user['id']}"
    first = await client.patch(
        path, json={"role": "manager"}, headers={**tenant.headers, "If-Match": '"1"'}
    )
    assert first.status_code == 200
    stale = await client.patch(
        path, json={"role": "support"}, headers={**tenant.headers, "If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert stale.json()["current_etag"] == '"2"'
    current = await client.get(path, headers=tenant.headers)
    assert current.json()["role"] == "manager"


async def test_patch_rejects_null_for_required_fields(client: AsyncClient, tenant: Tenant) -> None:
    user = await create_user(client, tenant)
    response = await client.patch(
        f"/v1/users/{user['id']}", json={"name": None}, headers=tenant.headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "name"]


async def test_patch_to_an_email_in_use_answers_409(client: AsyncClient, tenant: Tenant) -> None:
    await create_user(client, tenant, email="taken@example.jp")
    user = await create_user(client, tenant, email="free@example.jp")
    response = await client.patch(
        f"/v1/users/{user['id']}", json={"email": "taken@example.jp"}, headers=tenant.headers
    )
    assert response.status_code == 409


async def test_delete_answers_204_then_404(client: AsyncClient, tenant: Tenant) -> None:
    user = await create_user(client, tenant)
    path = f"/v1/users/{user['id']}"
    stale = await client.delete(path, headers={**tenant.headers, "If-Match": '"7"'})
    assert stale.status_code == 412
    deleted = await client.delete(path, headers={**tenant.headers, "If-Match": '"1"'})
    assert deleted.status_code == 204
    assert (await client.get(path, headers=tenant.headers)).status_code == 404


async def test_list_pages_with_cursor_and_link_header(client: AsyncClient, tenant: Tenant) -> None:
    created = [await create_user(client, tenant, email=f"p{i}@example.jp") for i in range(5)]
    seen: list[str] = []
    url: str | None = "/v1/users?limit=2"
    pages = 0
    while url is not None:
        response = await client.get(url, headers=tenant.headers)
        assert response.status_code == 200
        body = response.json()
        seen.extend(user["id"] for user in body["data"])
        pages += 1
        if body["next_cursor"] is None:
            assert "link" not in response.headers
            url = None
        else:
            link = response.headers["link"]
            assert link.endswith('>; rel="next"')
            url = link[1 : link.index(">")]
    assert pages == 3
    assert seen == [user["id"] for user in created]


async def test_list_sorts_descending_and_by_name(client: AsyncClient, tenant: Tenant) -> None:
    for name in ("Chiba", "Aoki", "Baba"):
        await create_user(client, tenant, name=name, email=f"{name}@example.jp")
    newest_first = await client.get("/v1/users?sort=-created_at", headers=tenant.headers)
    assert [u["name"] for u in newest_first.json()["data"]] == ["Baba", "Aoki", "Chiba"]
    by_name = await client.get("/v1/users?sort=name&limit=2", headers=tenant.headers)
    assert [u["name"] for u in by_name.json()["data"]] == ["Aoki", "Baba"]
    rest = await client.get(
        f"/v1/users?sort=name&limit=2&cursor={by_name.json()['next_cursor']}",
        headers=tenant.headers,
    )
    assert [u["name"] for u in rest.json()["data"]] == ["Chiba"]


async def test_list_filters_by_role_and_active(client: AsyncClient, tenant: Tenant) -> None:
    await create_user(client, tenant, role="sales", email="s@example.jp")
    await create_user(client, tenant, role="support", email="t@example.jp", active=False)
    sales = await client.get("/v1/users?role=sales", headers=tenant.headers)
    assert [u["role"] for u in sales.json()["data"]] == ["sales"]
    inactive = await client.get("/v1/users?active=false", headers=tenant.headers)
    assert [u["email"] for u in inactive.json()["data"]] == ["t@example.jp"]


async def test_list_rejects_unknown_sort_and_foreign_cursor(
    client: AsyncClient, tenant: Tenant
) -> None:
    unknown = await client.get("/v1/users?sort=salary", headers=tenant.headers)
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["loc"] == ["query", "sort"]
    for _ in range(2):
        await create_user(client, tenant)
    page = await client.get("/v1/users?limit=1&sort=name", headers=tenant.headers)
    cursor = page.json()["next_cursor"]
    mismatched = await client.get(f"/v1/users?cursor={cursor}", headers=tenant.headers)
    assert mismatched.status_code == 422
    garbage = await client.get("/v1/users?cursor=!!!", headers=tenant.headers)
    assert garbage.status_code == 422


async def test_limit_is_bounded(client: AsyncClient, tenant: Tenant) -> None:
    for limit in (0, 201):
        response = await client.get(f"/v1/users?limit={limit}", headers=tenant.headers)
        assert response.status_code == 422


async def test_read_scope_cannot_write(client: AsyncClient, tenant: Tenant) -> None:
    headers = await tenant.headers_with(Scope.USERS_READ)
    assert (await client.get("/v1/users", headers=headers)).status_code == 200
    response = await client.post(
        "/v1/users", json={"name": "a", "email": "a@example.jp", "role": "x"}, headers=headers
    )
    assert response.status_code == 403
    assert response.json()["required_scope"] == "users:write"


async def test_changes_are_recorded_as_events_with_old_and_new_values(
    client: AsyncClient, tenant: Tenant
) -> None:
    user = await create_user(client, tenant, role="sales")
    await client.patch(f"/v1/users/{user['id']}", json={"role": "vip"}, headers=tenant.headers)
    await client.delete(f"/v1/users/{user['id']}", headers=tenant.headers)
    events = await read_feed(client, tenant, prefix="user.", at_least=3)
    assert [e["type"] for e in events] == ["user.created", "user.updated", "user.deleted"]
    assert events[1]["changes"] == {"role": {"old": "sales", "new": "vip"}}
    assert events[1]["data"]["role"] == "vip"
    assert all(e["data"]["id"] == user["id"] for e in events)
