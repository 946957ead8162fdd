"""Batch upsert, merge, duplicates, erase and export of customers."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from httpx import AsyncClient
from sqlalchemy import event

from tests.api.factories import make_customer, read_feed
from tests.conftest import Tenant


@contextmanager
def counting_statements(tenant: Tenant) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = tenant.database.write_engine.sync_engine

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def _batch(client: AsyncClient, tenant: Tenant, items: list[dict[str, Any]]) -> Any:
    response = await client.post(
        "/v1/customers/batch", json={"items": items}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    return response.json()["results"]


async def test_batch_creates_updates_and_fails_items_independently(
    client: AsyncClient, tenant: Tenant
) -> None:
    known = await make_customer(
        client, tenant, emails=["known@example.jp"], external_ids={"shop": "u-1"}, tags=["old"]
    )
    results = await _batch(
        client,
        tenant,
        [
            {"external_ids": {"shop": "u-1"}, "tags": ["new"], "emails": ["second@example.jp"]},
            {"emails": ["fresh@example.jp"], "family_name": "新規"},
            {"emails": ["not an email"]},
            {"emails": ["FRESH@example.jp"], "given_name": "二郎"},
            {"emails": ["known@example.jp"], "external_ids": {"shop": "u-other"}},
        ],
    )
    assert [r["status"] for r in results] == ["updated", "created", "error", "created", "error"]
    assert results[0]["id"] == known["id"]
    assert results[3]["id"] == results[1]["id"]  # the second item upserted the first's customer
    assert results[2]["error"]["status"] == 422
    assert results[2]["error"]["errors"][0]["loc"] == ["body", "items", 2, "emails", 0]
    assert results[4]["error"]["status"] == 409
    updated = (await client.get(f"/v1/customers/{known['id']}", headers=tenant.headers)).json()
    assert updated["emails"] == ["known@example.jp", "second@example.jp"]
    assert updated["tags"] == ["new"]
    assert updated["version"] == 2
    assert updated["updated_at"] > known["updated_at"]
    fresh = (await client.get(f"/v1/customers/{results[1]['id']}", headers=tenant.headers)).json()
    assert (fresh["family_name"], fresh["given_name"]) == ("新規", "二郎")
    events = await read_feed(client, tenant, prefix="customer.", at_least=3)
    types = [e["type"] for e in events]
    assert types == ["customer.created", "customer.updated", "customer.created"]


async def test_batch_queries_do_not_grow_with_the_batch(
    client: AsyncClient, tenant: Tenant
) -> None:
    def items(count: int, prefix: str) -> list[dict[str, Any]]:
        return [
            {"emails": [f"{prefix}{i}@example.jp"], "external_ids": {"shop": f"{prefix}{i}"}}
            for i in range(count)
        ]

    with counting_statements(tenant) as small:
        await _batch(client, tenant, items(5, "s"))
    with counting_statements(tenant) as large:
        await _batch(client, tenant, items(200, "l"))
    lookups_small = [s for s in small if s.lstrip().upper().startswith("SELECT")]
    lookups_large = [s for s in large if s.lstrip().upper().startswith("SELECT")]
    assert len(lookups_large) == len(lookups_small)
    assert len(large) <= len(small) + 10  # inserts are batched too, not one per item


async def test_an_unchanged_upsert_keeps_its_version(client: AsyncClient, tenant: Tenant) -> None:
    known = await make_customer(client, tenant, external_ids={"shop": "same"}, tags=["t"])
    results = await _batch(client, tenant, [{"external_ids": {"shop": "same"}, "tags": ["t"]}])
    assert results[0]["status"] == "updated"
    again = await client.get(f"/v1/customers/{known['id']}", headers=tenant.headers)
    assert again.json()["version"] == 1


async def test_batch_rejects_more_than_1000_items(client: AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/v1/customers/batch", json={"items": [{}] * 1001}, headers=tenant.headers
    )
    assert response.status_code == 422


async def test_merge_keeps_both_histories_and_redirects_the_other(
    client: AsyncClient, tenant: Tenant
) -> None:
    survivor = await make_customer(
        client,
        tenant,
        emails=["a@example.jp"],
        phones=["09011112222"],
        tags=["vip"],
        external_ids={"shop": "u-1"},
        attributes={},
    )
    other = await make_customer(
        client,
        tenant,
        family_name=None,
        emails=["b@example.jp"],
        phones=["09033334444"],
        tags=["tea"],
        external_ids={"pos": "p-1", "shop": "u-2"},
        birthday="1991-02-03",
    )
    response = await client.post(
        f"/v1/customers/{survivor['id']}/merge",
        json={"other_id": other["id"]},
        headers={**tenant.headers, "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    merged = response.json()
    assert merged["emails"] == ["a@example.jp", "b@example.jp"]
    assert merged["phones"] == ["+819011112222", "+819033334444"]
    assert merged["tags"] == ["vip", "tea"]
    assert merged["external_ids"] == {"pos": "p-1", "shop": "u-1"}
    assert merged["birthday"] == "1991-02-03"
    gone = await client.get(f"/v1/customers/{other['id']}", headers=tenant.headers)
    assert gone.status_code == 404
    assert gone.json()["merged_into"] == survivor["id"]
    found = await client.get("/v1/customers?email=b@example.jp", headers=tenant.headers)
    assert [c["id"] for c in found.json()["data"]] == [survivor["id"]]
    merges = await read_feed(client, tenant, prefix="customer.merged")
    assert merges[0]["data"]["merged_id"] == other["id"]
    assert merges[0]["changes"]["emails"]["new"] == ["a@example.jp", "b@example.jp"]


async def test_merge_rejects_itself_unknown_and_stale(client: AsyncClient, tenant: Tenant) -> None:
    customer = await make_customer(client, tenant)
    path = f"/v1/customers/{customer['id']}/merge"
    itself = await client.post(path, json={"other_id": customer["id"]}, headers=tenant.headers)
    assert itself.status_code == 422
    unknown = await client.post(
        path, json={"other_id": "01900000-0000-7000-8000-000000000000"}, headers=tenant.headers
    )
    assert unknown.status_code == 422
    other = await make_customer(client, tenant)
    stale = await client.post(
        path, json={"other_id": other["id"]}, headers={**tenant.headers, "If-Match": '"9"'}
    )
    assert stale.status_code == 412


async def test_chained_merges_point_at_the_last_survivor(
    client: AsyncClient, tenant: Tenant
) -> None:
    first, second, third = [await make_customer(client, tenant) for _ in range(3)]
    await client.post(
        f"/v1/customers/{second['id']}/merge",
        json={"other_id": first["id"]},
        headers=tenant.headers,
    )
    await client.post(
        f"/v1/customers/{third['id']}/merge",
        json={"other_id": second["id"]},
        headers=tenant.headers,
    )
    response = await client.get(f"/v1/customers/{first['id']}", headers=tenant.headers)
    assert response.json()["merged_into"] == third["id"]


async def test_duplicates_by_phone_and_by_name_and_birthday(
    client: AsyncClient, tenant: Tenant
) -> None:
    a = await make_customer(client, tenant, phones=["09055556666"], family_name="鈴木")
    b = await make_customer(client, tenant, phones=["090-5555-6666"], family_name="高橋")
    c = await make_customer(
        client, tenant, family_name="田中", given_name="一郎", birthday="1980-01-01"
    )
    d = await make_customer(
        client, tenant, family_name="田中", given_name="一郎", birthday="1980-01-01"
    )
    await make_customer(
        client, tenant, family_name="田中", given_name="一郎", birthday="1981-01-01"
    )
    response = await client.get("/v1/customers/duplicates", headers=tenant.headers)
    pairs = {(p["reason"], frozenset(p["customer_ids"])) for p in response.json()["data"]}
    assert pairs == {
        ("phone", frozenset({a["id"], b["id"]})),
        ("name_and_birthday", frozenset({c["id"], d["id"]})),
    }


async def test_export_then_erase_leaves_no_personal_data(
    client: AsyncClient, tenant: Tenant
) -> None:
    customer = await make_customer(
        client, tenant, family_name="消去", emails=["erase-me@example.jp"], phones=["09077778888"]
    )
    await client.patch(
        f"/v1/customers/{customer['id']}", json={"tags": ["x"]}, headers=tenant.headers
    )
    export = await client.get(f"/v1/customers/{customer['id']}/export", headers=tenant.headers)
    assert export.status_code == 200
    document = export.json()
    assert document["customer"]["emails"] == ["erase-me@example.jp"]
    assert {i["kind"] for i in document["identities"]} == {"email", "phone"}
    assert [e["type"] for e in document["events"]] == ["customer.created", "customer.updated"]

    erased = await client.delete(
        f"/v1/customers/{customer['id']}?erase=true", headers=tenant.headers
    )
    assert erased.status_code == 204
    assert (
        await client.get(f"/v1/customers/{customer['id']}", headers=tenant.headers)
    ).status_code == 404
    feed = await client.get("/v1/events/feed?limit=200", headers=tenant.headers)
    audit = await client.get("/v1/audit-log?limit=200", headers=tenant.headers)
    for text in (feed.text, audit.text):
        assert "erase-me" not in text
        assert "消去" not in text
        assert "09077778888" not in text
    reuse = await client.post(
        "/v1/customers", json={"emails": ["erase-me@example.jp"]}, headers=tenant.headers
    )
    assert reuse.status_code == 201


async def test_plain_delete_keeps_history(client: AsyncClient, tenant: Tenant) -> None:
    customer = await make_customer(client, tenant, family_name="履歴")
    deleted = await client.delete(f"/v1/customers/{customer['id']}", headers=tenant.headers)
    assert deleted.status_code == 204
    deletions = await read_feed(client, tenant, prefix="customer.deleted")
    assert deletions[0]["data"]["family_name"] == "履歴"
