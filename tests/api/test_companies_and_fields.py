"""Companies and custom field definitions over HTTP."""

from typing import Any

from httpx import AsyncClient

from tests.api.factories import make_company, make_customer, make_field
from tests.conftest import Tenant


async def test_company_crud_with_contacts(client: AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/v1/companies",
        json={
            "name": "株式会社さくら",
            "name_kana": "サクラ",
            "domain": "Sakura.Example.JP",
            "industry": "小売",
            "employee_count": 120,
            "phone": "03-1234-5678",
            "tags": ["key-account"],
        },
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    company = response.json()
    assert company["domain"] == "sakura.example.jp"
    assert company["phone"] == "+81312345678"
    path = f"/v1/companies/{company['id']}"
    updated = await client.patch(
        path, json={"employee_count": 150}, headers={**tenant.headers, "If-Match": '"1"'}
    )
    assert updated.json()["employee_count"] == 150
    contact = await make_customer(client, tenant, company_id=company["id"])
    blocked = await client.delete(path, headers=tenant.headers)
    assert blocked.status_code == 409
    assert blocked.json()["contact_count"] == 1
    await client.patch(
        f"/v1/customers/{contact['id']}", json={"company_id": None}, headers=tenant.headers
    )
    assert (await client.delete(path, headers=tenant.headers)).status_code == 204
    assert (await client.get(path, headers=tenant.headers)).status_code == 404


async def test_company_search_by_q_filters_and_dsl(client: AsyncClient, tenant: Tenant) -> None:
    await make_company(client, tenant, name="ヤマト運輸", industry="物流", employee_count=1000)
    await make_company(client, tenant, name="小さな本屋", industry="小売", employee_count=3)

    async def names(path: str, body: dict[str, Any] | None = None) -> list[str]:
        if body is None:
            response = await client.get(path, headers=tenant.headers)
        else:
            response = await client.post(path, json=body, headers=tenant.headers)
        assert response.status_code == 200, response.text
        return [company["name"] for company in response.json()["data"]]

    assert await names("/v1/companies?q=ﾔﾏﾄ") == ["ヤマト運輸"]
    assert await names("/v1/companies?industry=小売") == ["小さな本屋"]
    assert await names("/v1/companies?sort=name") == ["ヤマト運輸", "小さな本屋"]
    assert await names(
        "/v1/companies/search",
        {"filter": {"field": "employee_count", "op": "gte", "value": 100}},
    ) == ["ヤマト運輸"]
    bad = await client.post(
        "/v1/companies/search",
        json={"filter": {"field": "revenue", "op": "gt", "value": 1}},
        headers=tenant.headers,
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["body", "filter", "field"]


async def test_custom_field_values_are_validated_by_type(
    client: AsyncClient, tenant: Tenant
) -> None:
    await make_field(client, tenant, key="store", type="enum", options=["shibuya", "ginza"])
    await make_field(client, tenant, key="interests", type="multi_enum", options=["tea", "sweets"])
    await make_field(client, tenant, key="budget", type="money", label="予算")
    await make_field(client, tenant, key="member_since", type="date", label="入会日")
    await make_field(client, tenant, key="newsletter", type="boolean", label="メルマガ")
    good = {
        "store": "ginza",
        "interests": ["tea", "tea", "sweets"],
        "budget": {"amount": 50000, "currency": "JPY"},
        "member_since": "2020-04-01",
        "newsletter": True,
    }
    customer = await make_customer(client, tenant, attributes=good)
    assert customer["attributes"]["interests"] == ["tea", "sweets"]
    bad_values = {
        "store": "osaka",
        "interests": ["golf"],
        "budget": {"amount": 1.5, "currency": "JPY"},
        "member_since": "April",
        "newsletter": "yes",
    }
    for key, value in bad_values.items():
        response = await client.post(
            "/v1/customers", json={"attributes": {key: value}}, headers=tenant.headers
        )
        assert response.status_code == 422, (key, response.text)
        assert response.json()["errors"][0]["loc"] == ["body", "attributes", key]
    wrong_currency = await client.post(
        "/v1/customers",
        json={"attributes": {"budget": {"amount": 1, "currency": "YEN"}}},
        headers=tenant.headers,
    )
    assert wrong_currency.status_code == 422


async def test_required_fields_and_definition_rules(client: AsyncClient, tenant: Tenant) -> None:
    await make_field(client, tenant, key="member_no", label="会員番号", required=True)
    missing = await client.post("/v1/customers", json={}, headers=tenant.headers)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["loc"] == ["body", "attributes", "member_no"]
    assert await make_customer(client, tenant, attributes={"member_no": "M-1"})
    duplicate = await client.post(
        "/v1/fields",
        json={"object": "customer", "key": "member_no", "label": "x", "type": "text"},
        headers=tenant.headers,
    )
    assert duplicate.status_code == 409
    no_options = await client.post(
        "/v1/fields",
        json={"object": "customer", "key": "rank", "label": "ランク", "type": "enum"},
        headers=tenant.headers,
    )
    assert no_options.status_code == 422
    assert no_options.json()["errors"][0]["loc"] == ["body", "options"]
    bad_key = await client.post(
        "/v1/fields",
        json={"object": "customer", "key": "Bad Key", "label": "x", "type": "text"},
        headers=tenant.headers,
    )
    assert bad_key.status_code == 422


async def test_deleting_a_field_removes_its_values(client: AsyncClient, tenant: Tenant) -> None:
    field = await make_field(client, tenant, key="temp_note")
    await make_field(client, tenant, key="kept", label="残す")
    customer = await make_customer(client, tenant, attributes={"temp_note": "x", "kept": "y"})
    listed = await client.get("/v1/fields?object=customer", headers=tenant.headers)
    assert {f["key"] for f in listed.json()["data"]} == {"temp_note", "kept"}
    deleted = await client.delete(f"/v1/fields/{field['id']}", headers=tenant.headers)
    assert deleted.status_code == 204
    reread = await client.get(f"/v1/customers/{customer['id']}", headers=tenant.headers)
    assert reread.json()["attributes"] == {"kept": "y"}


async def test_company_attributes_use_company_fields(client: AsyncClient, tenant: Tenant) -> None:
    await make_field(client, tenant, object="company", key="tier", type="enum", options=["a", "b"])
    company = await make_company(client, tenant, attributes={"tier": "a"})
    assert company["attributes"] == {"tier": "a"}
    rejected = await client.post(
        "/v1/customers", json={"attributes": {"tier": "a"}}, headers=tenant.headers
    )
    assert rejected.status_code == 422
