"""Finding customers: Japanese-aware `?q=`, simple filters, sorting, and the filter DSL."""

from typing import Any

import pytest
from httpx import AsyncClient

from tests.api.factories import make_company, make_customer, make_field
from tests.conftest import Tenant


async def _names(client: AsyncClient, tenant: Tenant, query: str) -> list[str]:
    response = await client.get(f"/v1/customers?{query}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return [customer["display_name"] for customer in response.json()["data"]]


async def _search(client: AsyncClient, tenant: Tenant, filter_: Any, **extra: Any) -> Any:
    return await client.post(
        "/v1/customers/search", json={"filter": filter_, **extra}, headers=tenant.headers
    )


@pytest.fixture
async def yamada(client: AsyncClient, tenant: Tenant) -> dict[str, Any]:
    company = await make_company(
        client, tenant, name="株式会社さくら商事", name_kana="サクラショウジ"
    )
    await make_customer(client, tenant, family_name="佐藤", given_name="花子", emails=["h@x.jp"])
    return await make_customer(
        client,
        tenant,
        family_name="山田",
        given_name="太郎",
        family_name_kana="ヤマダ",
        given_name_kana="タロウ",
        emails=["taro@example.jp"],
        phones=["+819012345678"],
        company_id=company["id"],
    )


@pytest.mark.parametrize(
    "q",
    [
        "ﾔﾏﾀﾞ",
        "ヤマダ",
        "やまだ",
        "山田",
        "山田 太郎",
        "やまだたろう",
        "TARO@EXAMPLE.JP",
        "09012345678",
        "090-1234-5678",
        "+819012345678",
        "さくら",
        "ｻｸﾗｼｮｳｼﾞ",
    ],
)
async def test_q_matches_names_kana_emails_phones_and_company(
    client: AsyncClient, tenant: Tenant, yamada: dict[str, Any], q: str
) -> None:
    assert await _names(client, tenant, f"q={q}") == ["山田 太郎"]


async def test_q_does_not_match_unrelated_text(
    client: AsyncClient, tenant: Tenant, yamada: dict[str, Any]
) -> None:
    assert await _names(client, tenant, "q=たなか") == []
    assert await _names(client, tenant, "q=%25") == []  # a LIKE wildcard is matched literally


async def test_simple_filters(client: AsyncClient, tenant: Tenant) -> None:
    company = await make_company(client, tenant)
    await make_customer(client, tenant, display_name="A", tags=["vip"], lifecycle_stage="lead")
    await make_customer(
        client, tenant, display_name="B", company_id=company["id"], external_ids={"shop": "u-2"}
    )
    await make_customer(client, tenant, display_name="C", emails=["c@example.jp"])
    assert await _names(client, tenant, "tag=vip") == ["A"]
    assert await _names(client, tenant, "lifecycle_stage=lead") == ["A"]
    assert await _names(client, tenant, f"company_id={company['id']}") == ["B"]
    assert await _names(client, tenant, "external_id=shop:u-2") == ["B"]
    assert await _names(client, tenant, "email=C@Example.jp") == ["C"]
    bad = await client.get("/v1/customers?external_id=nocolon", headers=tenant.headers)
    assert bad.status_code == 422
    contacts = await client.get(f"/v1/companies/{company['id']}/customers", headers=tenant.headers)
    assert [c["display_name"] for c in contacts.json()["data"]] == ["B"]


async def test_sort_by_display_name_pages_at_any_depth(client: AsyncClient, tenant: Tenant) -> None:
    names = ["い", "あ", "お", "え", "う"]
    for name in names:
        await make_customer(client, tenant, display_name=name)
    collected: list[str] = []
    cursor = ""
    while True:
        response = await client.get(
            f"/v1/customers?sort=-display_name&limit=2{cursor}", headers=tenant.headers
        )
        body = response.json()
        collected += [customer["display_name"] for customer in body["data"]]
        if body["next_cursor"] is None:
            break
        cursor = f"&cursor={body['next_cursor']}"
    assert collected == sorted(names, reverse=True)


async def test_dsl_conditions_and_groups(client: AsyncClient, tenant: Tenant) -> None:
    await make_field(
        client, tenant, key="favorite_store", type="enum", options=["shibuya", "ginza"]
    )
    await make_field(client, tenant, key="points", type="number", label="ポイント")
    company = await make_company(client, tenant, name="大手商事", employee_count=500)
    await make_customer(
        client,
        tenant,
        display_name="A",
        tags=["vip", "tea"],
        attributes={"favorite_store": "shibuya", "points": 120},
        company_id=company["id"],
        birthday="1990-01-01",
    )
    await make_customer(
        client,
        tenant,
        display_name="B",
        tags=["tea"],
        attributes={"favorite_store": "ginza", "points": 10},
        consents={"email": {"granted": True}},
    )
    await make_customer(client, tenant, display_name="C", phones=["09011112222"])

    async def names(filter_: Any) -> list[str]:
        response = await _search(client, tenant, filter_)
        assert response.status_code == 200, response.text
        return [customer["display_name"] for customer in response.json()["data"]]

    assert await names({"field": "tags", "op": "contains", "value": "vip"}) == ["A"]
    assert await names({"field": "tags", "op": "in", "value": ["vip", "tea"]}) == ["A", "B"]
    assert await names({"field": "tags", "op": "all_of", "value": ["vip", "tea"]}) == ["A"]
    assert await names({"field": "tags", "op": "is_not_set"}) == ["C"]
    assert await names({"field": "attributes.points", "op": "gte", "value": 100}) == ["A"]
    assert await names({"field": "attributes.points", "op": "between", "value": [5, 20]}) == ["B"]
    assert await names({"field": "attributes.favorite_store", "op": "eq", "value": "ginza"}) == [
        "B"
    ]
    assert await names({"field": "company.employee_count", "op": "gt", "value": 100}) == ["A"]
    assert await names({"field": "company.name", "op": "contains", "value": "大手"}) == ["A"]
    assert await names({"field": "consents.email", "op": "eq", "value": True}) == ["B"]
    assert await names({"field": "phones", "op": "contains", "value": "090-1111-2222"}) == ["C"]
    assert await names({"field": "birthday", "op": "lt", "value": "2000-01-01"}) == ["A"]
    assert await names({"field": "created_at", "op": "within_last", "value": "1d"}) == [
        "A",
        "B",
        "C",
    ]
    assert await names({"not": {"field": "attributes.points", "op": "gt", "value": 50}}) == [
        "B",
        "C",
    ]
    assert await names(
        {
            "any": [
                {"field": "display_name", "op": "eq", "value": "C"},
                {
                    "all": [
                        {"field": "tags", "op": "contains", "value": "tea"},
                        {"field": "attributes.points", "op": "lt", "value": 50},
                    ]
                },
            ]
        }
    ) == ["B", "C"]


@pytest.mark.parametrize(
    ("filter_", "loc"),
    [
        ({"field": "salary", "op": "eq", "value": 1}, ["body", "filter", "field"]),
        ({"field": "tags", "op": "gt", "value": "x"}, ["body", "filter", "op"]),
        (
            {
                "all": [
                    {"field": "tags", "op": "contains", "value": "x"},
                    {"field": "birthday", "op": "eq", "value": "yesterday"},
                ]
            },
            ["body", "filter", "all", 1, "value"],
        ),
        (
            {"field": "created_at", "op": "within_last", "value": "3 days"},
            ["body", "filter", "value"],
        ),
        ({"field": "attributes.nope", "op": "eq", "value": 1}, ["body", "filter", "field"]),
        ({"any": []}, ["body", "filter", "any"]),
        (
            {"field": "tags", "op": "contains", "value": "x", "extra": 1},
            ["body", "filter", "extra"],
        ),
        (
            {
                "not": {
                    "not": {
                        "not": {
                            "not": {
                                "not": {
                                    "not": {
                                        "not": {
                                            "not": {
                                                "not": {"not": {"field": "tags", "op": "is_set"}}
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            },
            [
                "body",
                "filter",
                "not",
                "not",
                "not",
                "not",
                "not",
                "not",
                "not",
                "not",
                "not",
                "not",
            ],
        ),
        ({"all": [{"field": "tags", "op": "is_set"}] * 201}, ["body", "filter", "all", 200]),
        (
            {"field": "lifecycle_stage", "op": "eq", "value": "astronaut"},
            ["body", "filter", "value"],
        ),
    ],
)
async def test_bad_filters_answer_422_naming_the_path(
    client: AsyncClient, tenant: Tenant, filter_: Any, loc: list[Any]
) -> None:
    response = await _search(client, tenant, filter_)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert loc in [error["loc"] for error in response.json()["errors"]]


async def test_sql_shaped_values_are_only_values(client: AsyncClient, tenant: Tenant) -> None:
    await make_customer(client, tenant, display_name="O'Brien; DROP TABLE customer; --")
    tricky = "O'Brien; DROP TABLE customer; --"
    for filter_ in (
        {"field": "display_name", "op": "eq", "value": tricky},
        {"field": "display_name", "op": "contains", "value": "'; DROP"},
        {"field": "external_ids.shop", "op": "eq", "value": "' OR 1=1 --"},
    ):
        response = await _search(client, tenant, filter_)
        assert response.status_code == 200
    injected_key = await _search(
        client, tenant, {"field": "external_ids.a') OR 1=1 --", "op": "eq", "value": "x"}
    )
    assert injected_key.status_code == 422
    still_there = await client.get("/v1/customers", headers=tenant.headers)
    assert len(still_there.json()["data"]) == 1


async def test_search_pages_with_body_cursor(client: AsyncClient, tenant: Tenant) -> None:
    for index in range(3):
        await make_customer(client, tenant, display_name=f"P{index}", tags=["page"])
    filter_ = {"field": "tags", "op": "contains", "value": "page"}
    first = (await _search(client, tenant, filter_, limit=2, sort="display_name")).json()
    assert [c["display_name"] for c in first["data"]] == ["P0", "P1"]
    rest = await _search(
        client, tenant, filter_, limit=2, sort="display_name", cursor=first["next_cursor"]
    )
    assert [c["display_name"] for c in rest.json()["data"]] == ["P2"]
    bad_sort = await _search(client, tenant, filter_, sort="salary")
    assert bad_sort.status_code == 422
    assert bad_sort.json()["errors"][0]["loc"] == ["body", "sort"]


@pytest.mark.parametrize("descending", [False, True])
async def test_sort_by_custom_field_pages_with_empty_values_last(
    client: AsyncClient, tenant: Tenant, descending: bool
) -> None:
    await make_field(client, tenant, key="points", type="number", label="ポイント")
    points = {"A": 30, "B": None, "C": 10, "D": 30, "E": None, "F": 20}
    for name, value in points.items():
        attributes = {"points": value} if value is not None else {}
        await make_customer(client, tenant, display_name=name, attributes=attributes)
    sort = "-attributes.points" if descending else "attributes.points"
    collected: list[str] = []
    cursor = ""
    for _ in range(10):
        response = await client.get(
            f"/v1/customers?sort={sort}&limit=2{cursor}", headers=tenant.headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        collected += [customer["display_name"] for customer in body["data"]]
        if body["next_cursor"] is None:
            break
        cursor = f"&cursor={body['next_cursor']}"
    valued = sorted(
        (name for name, value in points.items() if value is not None),
        key=lambda name: (points[name], name),
        reverse=descending,
    )
    empty = sorted((n for n, v in points.items() if v is None), reverse=descending)
    assert collected == valued + empty
    searched = await _search(client, tenant, None, sort=sort, limit=6)
    assert [c["display_name"] for c in searched.json()["data"]] == valued + empty
    unknown = await client.get("/v1/customers?sort=attributes.nope", headers=tenant.headers)
    assert unknown.status_code == 422
