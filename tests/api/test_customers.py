"""Customers over HTTP: the record, its normalisation, identities, conventions and events."""

from typing import Any

from httpx import AsyncClient

from tests.api.factories import make_company, make_customer, make_field, make_user, read_feed
from tests.conftest import Tenant


async def test_create_normalises_and_reads_back_every_field(
    client: AsyncClient, tenant: Tenant
) -> None:
    owner = await make_user(client, tenant)
    company = await make_company(client, tenant, name="株式会社ヤマダ")
    body: dict[str, Any] = {
        "family_name": "山田",
        "given_name": "太郎",
        "family_name_kana": "ヤマダ",
        "given_name_kana": "タロウ",
        "emails": ["Taro@Example.JP", "taro@example.jp", "yamada@work.example.jp"],
        "phones": ["090-1234-5678", "+81 3-1234-5678"],
        "external_ids": {"shop": "u-1001"},
        "address": {"postal_code": "150-0002", "prefecture": "東京都", "city": "渋谷区"},
        "birthday": "1990-04-01",
        "company_id": company["id"],
        "owner_id": owner["id"],
        "lifecycle_stage": "customer",
        "tags": ["vip", "newsletter", "vip"],
        "consents": {
            "email": {"granted": True, "at": "2026-11-01T09:00:00+09:00", "source": "checkout"}
        },
    }
    response = await client.post("/v1/customers", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    customer = response.json()
    assert customer["display_name"] == "山田 太郎"
    assert customer["emails"] == ["taro@example.jp", "yamada@work.example.jp"]
    assert customer["phones"] == ["+819012345678", "+81312345678"]
    assert customer["external_ids"] == {"shop": "u-1001"}
    assert customer["address"] == {
        "postal_code": "150-0002",
        "prefecture": "東京都",
        "city": "渋谷区",
        "country": "JP",
    }
    assert customer["tags"] == ["vip", "newsletter"]
    assert customer["consents"]["email"] == {
        "granted": True,
        "at": "2026-11-01T00:00:00Z",
        "source": "checkout",
    }
    assert customer["metrics"]["order_count"] == 0
    assert customer["metrics"]["total_spent"] == 0
    assert customer["metrics"]["last_order_at"] is None
    assert customer["version"] == 1
    assert response.headers["location"] == f"/v1/customers/{customer['id']}"
    fetched = await client.get(response.headers["location"], headers=tenant.headers)
    assert fetched.json() == customer


async def test_duplicate_email_or_external_id_answers_409_with_existing_id(
    client: AsyncClient, tenant: Tenant
) -> None:
    first = await make_customer(
        client, tenant, emails=["hanako@example.jp"], external_ids={"shop": "u-1"}
    )
    for body in (
        {"emails": ["HANAKO@example.jp"]},
        {"external_ids": {"shop": "u-1"}},
    ):
        response = await client.post("/v1/customers", json=body, headers=tenant.headers)
        assert response.status_code == 409, body
        assert response.json()["existing_id"] == first["id"]
    other_source = await client.post(
        "/v1/customers", json={"external_ids": {"pos": "u-1"}}, headers=tenant.headers
    )
    assert other_source.status_code == 201


async def test_invalid_fields_answer_422_at_their_paths(
    client: AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    foreign_company = await make_company(client, other_tenant)
    cases: list[tuple[dict[str, Any], list[Any]]] = [
        ({"phones": ["+81 90 1234 5678", "12"]}, ["body", "phones", 1]),
        ({"emails": ["not-an-email"]}, ["body", "emails", 0]),
        ({"family_name_kana": "Yamada"}, ["body", "family_name_kana"]),
        ({"birthday": "2999-01-01"}, ["body", "birthday"]),
        ({"company_id": foreign_company["id"]}, ["body", "company_id"]),
        ({"lifecycle_stage": "astronaut"}, ["body", "lifecycle_stage"]),
        ({"external_ids": {"Shop!": "x"}}, ["body", "external_ids", "Shop!", "[key]"]),
        ({"metrics": {"order_count": 5}}, ["body", "metrics"]),
        ({"attributes": {"undeclared": 1}}, ["body", "attributes", "undeclared"]),
    ]
    for body, loc in cases:
        response = await client.post("/v1/customers", json=body, headers=tenant.headers)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert loc in [error["loc"] for error in response.json()["errors"]], response.text
    listed = await client.get("/v1/customers", headers=tenant.headers)
    assert listed.json()["data"] == []


async def test_patch_merges_objects_replaces_lists_and_clears_nullable_fields(
    client: AsyncClient, tenant: Tenant
) -> None:
    await make_field(client, tenant, key="favorite_store")
    await make_field(client, tenant, key="shoe_size", type="number", label="靴のサイズ")
    customer = await make_customer(
        client,
        tenant,
        tags=["a", "b"],
        birthday="1985-05-05",
        external_ids={"shop": "u-9", "pos": "p-9"},
        attributes={"favorite_store": "shibuya", "shoe_size": 26.5},
        consents={"email": {"granted": True}},
    )
    response = await client.patch(
        f"/v1/customers/{customer['id']}",
        json={
            "tags": ["c"],
            "birthday": None,
            "external_ids": {"pos": None, "line": "L-1"},
            "attributes": {"shoe_size": None},
            "consents": {"sms": {"granted": False, "source": "form"}},
        },
        headers={**tenant.headers, "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["tags"] == ["c"]
    assert updated["birthday"] is None
    assert updated["external_ids"] == {"shop": "u-9", "line": "L-1"}
    assert updated["attributes"] == {"favorite_store": "shibuya"}
    assert set(updated["consents"]) == {"email", "sms"}
    assert updated["version"] == 2
    stale = await client.patch(
        f"/v1/customers/{customer['id']}",
        json={"tags": []},
        headers={**tenant.headers, "If-Match": '"1"'},
    )
    assert stale.status_code == 412
    cleared = await client.patch(
        f"/v1/customers/{customer['id']}", json={"emails": None}, headers=tenant.headers
    )
    assert cleared.status_code == 422


async def test_removed_identities_are_free_for_others(client: AsyncClient, tenant: Tenant) -> None:
    customer = await make_customer(client, tenant, emails=["moving@example.jp"])
    await client.patch(
        f"/v1/customers/{customer['id']}",
        json={"emails": ["new@example.jp"]},
        headers=tenant.headers,
    )
    other = await client.post(
        "/v1/customers", json={"emails": ["moving@example.jp"]}, headers=tenant.headers
    )
    assert other.status_code == 201


async def test_updates_emit_events_with_old_and_new_values(
    client: AsyncClient, tenant: Tenant
) -> None:
    customer = await make_customer(client, tenant, lifecycle_stage="lead")
    await client.patch(
        f"/v1/customers/{customer['id']}",
        json={"lifecycle_stage": "customer"},
        headers=tenant.headers,
    )
    events = await read_feed(client, tenant, prefix="customer.", at_least=2)
    assert [e["type"] for e in events] == ["customer.created", "customer.updated"]
    assert events[1]["changes"] == {"lifecycle_stage": {"old": "lead", "new": "customer"}}
    assert events[1]["data"]["lifecycle_stage"] == "customer"


async def test_workspace_lifecycle_stages_govern_customers(
    client: AsyncClient, tenant: Tenant
) -> None:
    response = await client.patch(
        "/v1/workspace",
        json={"lifecycle_stages": ["inquiry", "member"]},
        headers=tenant.headers,
    )
    assert response.json()["lifecycle_stages"] == ["inquiry", "member"]
    assert (await make_customer(client, tenant, lifecycle_stage="member"))["lifecycle_stage"]
    rejected = await client.post(
        "/v1/customers", json={"lifecycle_stage": "customer"}, headers=tenant.headers
    )
    assert rejected.status_code == 422


async def test_customers_of_another_workspace_are_invisible(
    client: AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = await make_customer(client, other_tenant, emails=["theirs@example.jp"])
    path = f"/v1/customers/{theirs['id']}"
    assert (await client.get(path, headers=tenant.headers)).status_code == 404
    patch = await client.patch(path, json={"tags": ["x"]}, headers=tenant.headers)
    assert patch.status_code == 404
    search = await client.get("/v1/customers?q=theirs", headers=tenant.headers)
    assert search.json()["data"] == []
    mine = await client.post(
        "/v1/customers", json={"emails": ["theirs@example.jp"]}, headers=tenant.headers
    )
    assert mine.status_code == 201


async def test_expand_embeds_company_and_owner_only_when_asked(
    client: AsyncClient, tenant: Tenant
) -> None:
    owner = await make_user(client, tenant, name="営業 一郎")
    company = await make_company(client, tenant, name="株式会社エキスパンド")
    customer = await make_customer(client, tenant, company_id=company["id"], owner_id=owner["id"])
    await make_customer(client, tenant)
    path = f"/v1/customers/{customer['id']}"
    plain = (await client.get(path, headers=tenant.headers)).json()
    assert "company" not in plain
    assert "owner" not in plain
    expanded = (await client.get(f"{path}?expand=company,owner", headers=tenant.headers)).json()
    assert expanded["company"]["name"] == "株式会社エキスパンド"
    assert expanded["owner"]["name"] == "営業 一郎"
    listed = await client.get("/v1/customers?expand=company", headers=tenant.headers)
    companies = [c.get("company") for c in listed.json()["data"]]
    assert companies[0]["id"] == company["id"]
    assert companies[1] is None
    assert all("owner" not in c for c in listed.json()["data"])
    unknown = await client.get(f"{path}?expand=orders", headers=tenant.headers)
    assert unknown.status_code == 422
