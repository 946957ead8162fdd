"""Segments over HTTP: definitions, previews, live membership with enter/exit events, the
worker's recomputation and sweep, static members, and where membership shows."""

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import update

from app.domain.commerce.entities import Order
from app.domain.customer.entities import Customer
from app.domain.segment.worker import SegmentWorker
from tests.api.factories import make_customer, post_created
from tests.conftest import Tenant

REPEAT_BUYERS = {"field": "orders", "op": "count_gte", "value": 2}
VIP = {"field": "tags", "op": "contains", "value": "vip"}


def _ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat().replace("+00:00", "Z")


async def _order(
    client: AsyncClient, tenant: Tenant, email: str, number: str, *, days_ago: int = 1
) -> None:
    response = await client.post(
        "/v1/events",
        json={
            "event_id": f"evt-{number}",
            "type": "order.completed",
            "occurred_at": _ago(days_ago),
            "customer": {"email": email},
            "order": {
                "order_id": f"ord-{number}",
                "currency": "JPY",
                "lines": [{"sku": "TEA-1", "category": "お茶", "quantity": 1, "unit_price": 3000}],
            },
        },
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text


async def _segment(client: AsyncClient, tenant: Tenant, **body: Any) -> dict[str, Any]:
    return await post_created(client, tenant, "/v1/segments", body)


async def _members(client: AsyncClient, tenant: Tenant, segment_id: str) -> set[str]:
    response = await client.get(
        f"/v1/segments/{segment_id}/customers?limit=100", headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    return {customer["id"] for customer in response.json()["data"]}


async def _segment_events(
    client: AsyncClient, tenant: Tenant, at_least: int = 0
) -> list[tuple[str, str, str]]:
    """(type, segment id, customer id) of every segment.entered / exited so far, in order.

    On PostgreSQL the feed hands out events only once no older transaction is still running
    anywhere on the server, so a reader expecting `at_least` events polls, as a poller would.
    """
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        found = await _read_segment_events(client, tenant)
        if len(found) >= at_least or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.05)


async def _read_segment_events(client: AsyncClient, tenant: Tenant) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    cursor = None
    while True:
        query = "/v1/events/feed?limit=200" + (f"&after={cursor}" if cursor else "")
        response = await client.get(query, headers=tenant.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        found += [
            (event["type"], event["data"]["segment"]["id"], event["data"]["customer"]["id"])
            for event in body["data"]
            if event["type"] in ("segment.entered", "segment.exited")
        ]
        if not body["has_more"]:
            return found
        cursor = body["next_cursor"]


def _worker(app: FastAPI) -> SegmentWorker:
    worker: SegmentWorker = app.state.segment_worker
    return worker


async def test_a_dynamic_segment_fills_in_the_background_then_follows_every_change(
    app: FastAPI, client: AsyncClient, tenant: Tenant
) -> None:
    loyal = await make_customer(client, tenant, emails=["loyal@example.jp"])
    await _order(client, tenant, "loyal@example.jp", "1")
    await _order(client, tenant, "loyal@example.jp", "2")
    newcomer = await make_customer(client, tenant, emails=["new@example.jp"])
    await _order(client, tenant, "new@example.jp", "3")

    segment = await _segment(
        client, tenant, name="リピーター", kind="dynamic", filter=REPEAT_BUYERS
    )
    assert segment["status"] == "computing"
    while await _worker(app).run_once():
        pass
    ready = (await client.get(f"/v1/segments/{segment['id']}", headers=tenant.headers)).json()
    assert ready["status"] == "ready"
    assert ready["member_count"] == 1
    assert ready["computed_at"] is not None
    assert await _members(client, tenant, segment["id"]) == {loyal["id"]}

    # A second order makes the newcomer a repeat buyer in the same request: no worker needed.
    await _order(client, tenant, "new@example.jp", "4")
    assert await _members(client, tenant, segment["id"]) == {loyal["id"], newcomer["id"]}
    # Cancelling it takes them out again.
    cancelled = await client.post(
        "/v1/events",
        json={
            "event_id": "evt-cancel-4",
            "type": "order.cancelled",
            "occurred_at": _ago(0),
            "customer": {"email": "new@example.jp"},
            "order": {"order_id": "ord-4"},
        },
        headers=tenant.headers,
    )
    assert cancelled.status_code == 201, cancelled.text
    assert await _members(client, tenant, segment["id"]) == {loyal["id"]}

    # Filling the new segment announced nobody: the loyal customer did not just change.
    assert await _segment_events(client, tenant, 2) == [
        ("segment.entered", segment["id"], newcomer["id"]),
        ("segment.exited", segment["id"], newcomer["id"]),
    ]
    counted = (await client.get(f"/v1/segments/{segment['id']}", headers=tenant.headers)).json()
    assert counted["member_count"] == 1

    # A sweep finds nothing to change, so it announces nothing.
    while await SegmentWorker(_worker(app).sessions, sweep_every=timedelta(0)).run_once():
        break
    assert len(await _segment_events(client, tenant, 2)) == 2


async def test_customer_changes_move_customers_in_and_out(
    app: FastAPI, client: AsyncClient, tenant: Tenant
) -> None:
    segment = await _segment(client, tenant, name="VIP", kind="dynamic", filter=VIP)
    while await _worker(app).run_once():
        pass
    customer = await make_customer(client, tenant, tags=["vip"])
    assert await _members(client, tenant, segment["id"]) == {customer["id"]}
    updated = await client.patch(
        f"/v1/customers/{customer['id']}", json={"tags": ["newsletter"]}, headers=tenant.headers
    )
    assert updated.status_code == 200, updated.text
    assert await _members(client, tenant, segment["id"]) == set()

    listed = await client.get(f"/v1/customers/{customer['id']}/segments", headers=tenant.headers)
    assert listed.json() == []
    await client.patch(
        f"/v1/customers/{customer['id']}", json={"tags": ["vip"]}, headers=tenant.headers
    )
    listed = await client.get(f"/v1/customers/{customer['id']}/segments", headers=tenant.headers)
    assert [(s["id"], s["name"], s["kind"]) for s in listed.json()] == [
        (segment["id"], "VIP", "dynamic")
    ]

    timeline = await client.get(
        f"/v1/customers/{customer['id']}/timeline?kind=segment", headers=tenant.headers
    )
    assert [(e["type"], e["data"]["segment_name"]) for e in timeline.json()["data"]] == [
        ("segment.entered", "VIP"),
        ("segment.exited", "VIP"),
        ("segment.entered", "VIP"),
    ]

    # Membership is a field of the DSL too.
    in_vip = await client.post(
        "/v1/customers/search",
        json={"filter": {"field": "segments", "op": "contains", "value": segment["id"]}},
        headers=tenant.headers,
    )
    assert [c["id"] for c in in_vip.json()["data"]] == [customer["id"]]

    deleted = await client.delete(f"/v1/customers/{customer['id']}", headers=tenant.headers)
    assert deleted.status_code == 204
    assert await _members(client, tenant, segment["id"]) == set()


async def test_a_new_filter_announces_only_the_difference(
    app: FastAPI, client: AsyncClient, tenant: Tenant
) -> None:
    both = await make_customer(client, tenant, tags=["vip", "店舗"])
    only_vip = await make_customer(client, tenant, tags=["vip"])
    only_store = await make_customer(client, tenant, tags=["店舗"])
    segment = await _segment(client, tenant, name="tagged", kind="dynamic", filter=VIP)
    while await _worker(app).run_once():
        pass
    before = await _segment_events(client, tenant)
    assert before == []  # the first filling is silent

    response = await client.patch(
        f"/v1/segments/{segment['id']}",
        json={"filter": {"field": "tags", "op": "contains", "value": "店舗"}},
        headers={**tenant.headers, "If-Match": f'"{segment["version"]}"'},
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "computing"
    while await _worker(app).run_once():
        pass
    after = (await _segment_events(client, tenant, len(before) + 2))[len(before) :]
    assert sorted(after) == sorted(
        [
            ("segment.entered", segment["id"], only_store["id"]),
            ("segment.exited", segment["id"], only_vip["id"]),
        ]
    )
    assert await _members(client, tenant, segment["id"]) == {both["id"], only_store["id"]}

    stale = await client.patch(
        f"/v1/segments/{segment['id']}",
        json={"name": "stale"},
        headers={**tenant.headers, "If-Match": f'"{segment["version"]}"'},
    )
    assert stale.status_code == 412

    sizes = await client.get(f"/v1/segments/{segment['id']}/sizes", headers=tenant.headers)
    assert sizes.json() == [{"day": datetime.now(UTC).date().isoformat(), "member_count": 2}]


async def test_static_segments_take_members_by_api(client: AsyncClient, tenant: Tenant) -> None:
    first = await make_customer(client, tenant)
    second = await make_customer(client, tenant)
    segment = await _segment(client, tenant, name="イベント招待", kind="static")
    assert segment["status"] == "ready"

    added = await client.post(
        f"/v1/segments/{segment['id']}/members",
        json={"customer_ids": [first["id"], second["id"]]},
        headers=tenant.headers,
    )
    assert added.json() == {"changed": 2, "unchanged": 0}
    again = await client.post(
        f"/v1/segments/{segment['id']}/members",
        json={"customer_ids": [first["id"]]},
        headers=tenant.headers,
    )
    assert again.json() == {"changed": 0, "unchanged": 1}
    removed = await client.post(
        f"/v1/segments/{segment['id']}/members/remove",
        json={"customer_ids": [second["id"]]},
        headers=tenant.headers,
    )
    assert removed.json() == {"changed": 1, "unchanged": 0}
    assert await _members(client, tenant, segment["id"]) == {first["id"]}
    assert Counter(kind for kind, _, _ in await _segment_events(client, tenant, 3)) == {
        "segment.entered": 2,
        "segment.exited": 1,
    }

    unknown = await client.post(
        f"/v1/segments/{segment['id']}/members",
        json={"customer_ids": [second["id"], "01900000-0000-7000-8000-000000000000"]},
        headers=tenant.headers,
    )
    assert unknown.status_code == 422
    assert ["body", "customer_ids", 1] in [e["loc"] for e in unknown.json()["errors"]]
    assert await _members(client, tenant, segment["id"]) == {first["id"]}

    dynamic = await _segment(client, tenant, name="dyn", kind="dynamic", filter=VIP)
    refused = await client.post(
        f"/v1/segments/{dynamic['id']}/members",
        json={"customer_ids": [first["id"]]},
        headers=tenant.headers,
    )
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"


async def test_preview_counts_and_samples_without_saving(
    client: AsyncClient, tenant: Tenant
) -> None:
    for _ in range(3):
        await make_customer(client, tenant, tags=["vip"])
    await make_customer(client, tenant)
    response = await client.post(
        "/v1/segments/preview", json={"filter": VIP, "sample_size": 2}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["count"] == 3
    assert len(response.json()["sample"]) == 2
    listed = await client.get("/v1/segments", headers=tenant.headers)
    assert listed.json()["data"] == []


async def test_bad_definitions_answer_with_problems_and_store_nothing(
    client: AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    cases: list[tuple[dict[str, Any], int, list[Any] | None]] = [
        ({"name": "x", "kind": "dynamic"}, 422, ["body", "filter"]),
        ({"name": "x", "kind": "static", "filter": VIP}, 422, ["body", "filter"]),
        (
            {"name": "x", "kind": "dynamic", "filter": {"field": "salary", "op": "gt", "value": 1}},
            422,
            ["body", "filter", "field"],
        ),
        (
            {
                "name": "x",
                "kind": "dynamic",
                "filter": {
                    "field": "orders",
                    "op": "has",
                    "where": {"field": "occurred_at", "op": "within_last", "value": "lately"},
                },
            },
            422,
            ["body", "filter", "where", "value"],
        ),
        ({"name": "x", "kind": "sometimes"}, 422, ["body", "kind"]),
    ]
    for body, status, loc in cases:
        response = await client.post("/v1/segments", json=body, headers=tenant.headers)
        assert response.status_code == status, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert loc in [error["loc"] for error in response.json()["errors"]]
    await _segment(client, tenant, name="taken", kind="static")
    duplicate = await client.post(
        "/v1/segments", json={"name": "taken", "kind": "static"}, headers=tenant.headers
    )
    assert duplicate.status_code == 409
    listed = await client.get("/v1/segments", headers=tenant.headers)
    assert [s["name"] for s in listed.json()["data"]] == ["taken"]

    theirs = await _segment(client, other_tenant, name="theirs", kind="static")
    customer = await make_customer(client, tenant)
    for method, path, body in (
        ("GET", f"/v1/segments/{theirs['id']}", None),
        ("POST", f"/v1/segments/{theirs['id']}/members", {"customer_ids": [customer["id"]]}),
    ):
        response = await client.request(method, path, json=body, headers=tenant.headers)
        assert response.status_code == 404
    mine = await _segment(client, tenant, name="mine", kind="static")
    other_customer = await make_customer(client, other_tenant)
    foreign = await client.post(
        f"/v1/segments/{mine['id']}/members",
        json={"customer_ids": [other_customer["id"]]},
        headers=tenant.headers,
    )
    assert foreign.status_code == 422


async def test_concurrent_orders_announce_entering_once(
    app: FastAPI, client: AsyncClient, tenant: Tenant
) -> None:
    customer = await make_customer(client, tenant, emails=["busy@example.jp"])
    await _order(client, tenant, "busy@example.jp", "first")
    segment = await _segment(client, tenant, name="repeat", kind="dynamic", filter=REPEAT_BUYERS)
    while await _worker(app).run_once():
        pass
    await asyncio.gather(
        *(_order(client, tenant, "busy@example.jp", f"burst-{n}") for n in range(6))
    )
    assert await _members(client, tenant, segment["id"]) == {customer["id"]}
    assert await _segment_events(client, tenant, 1) == [
        ("segment.entered", segment["id"], customer["id"])
    ]


async def test_a_customer_an_order_creates_enters_segments_in_that_request(
    app: FastAPI, client: AsyncClient, tenant: Tenant
) -> None:
    # The new customer is written under a savepoint; segments follow at the request's commit.
    buyers = {"field": "orders", "op": "count_gte", "value": 1}
    segment = await _segment(client, tenant, name="購入者", kind="dynamic", filter=buyers)
    while await _worker(app).run_once():
        pass
    await _order(client, tenant, "first-time@example.jp", "newcomer")
    [member] = await _members(client, tenant, segment["id"])
    customer = (await client.get(f"/v1/customers/{member}", headers=tenant.headers)).json()
    assert customer["emails"] == ["first-time@example.jp"]
    assert await _segment_events(client, tenant, 1) == [("segment.entered", segment["id"], member)]


async def test_static_members_follow_a_merge_and_leave_on_deletion(
    client: AsyncClient, tenant: Tenant
) -> None:
    survivor = await make_customer(client, tenant)
    merged = await make_customer(client, tenant)
    gone = await make_customer(client, tenant)
    segment = await _segment(client, tenant, name="招待客", kind="static")
    await client.post(
        f"/v1/segments/{segment['id']}/members",
        json={"customer_ids": [merged["id"], gone["id"]]},
        headers=tenant.headers,
    )
    response = await client.post(
        f"/v1/customers/{survivor['id']}/merge",
        json={"other_id": merged["id"]},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    deleted = await client.delete(f"/v1/customers/{gone['id']}", headers=tenant.headers)
    assert deleted.status_code == 204
    assert await _members(client, tenant, segment["id"]) == {survivor["id"]}
    current = await client.get(f"/v1/segments/{segment['id']}", headers=tenant.headers)
    assert current.json()["member_count"] == 1


async def test_a_change_of_one_customer_leaves_the_others_of_the_unit_where_they_are(
    app: FastAPI, client: AsyncClient, tenant: Tenant
) -> None:
    """One batch orders for a customer and posts a page view for a buyer: the segment reading
    orders is re-evaluated for the first, and the buyer, whose orders did not change, stays."""
    buyer = await make_customer(client, tenant, emails=["buyer@example.jp"])
    await _order(client, tenant, "buyer@example.jp", "buyer-1")
    newcomer = await make_customer(client, tenant, emails=["newcomer@example.jp"])
    segment = await _segment(
        client, tenant, name="buyers", kind="dynamic", filter={"field": "orders", "op": "has"}
    )
    while await _worker(app).run_once():
        pass
    assert await _members(client, tenant, segment["id"]) == {buyer["id"]}
    order = {
        "event_id": "evt-newcomer-1",
        "type": "order.completed",
        "occurred_at": _ago(1),
        "customer": {"email": "newcomer@example.jp"},
        "order": {
            "order_id": "ord-newcomer-1",
            "currency": "JPY",
            "lines": [{"sku": "TEA-1", "quantity": 1, "unit_price": 3000}],
        },
    }
    view = {
        "event_id": "evt-buyer-view",
        "type": "page.viewed",
        "occurred_at": _ago(0),
        "customer": {"email": "buyer@example.jp"},
        "properties": {"path": "/sale"},
    }
    response = await client.post(
        "/v1/events/batch", json={"items": [order, view]}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    assert await _members(client, tenant, segment["id"]) == {buyer["id"], newcomer["id"]}


async def test_the_sweep_recomputes_segments_that_drift_and_passes_the_others_by(
    app: FastAPI, client: AsyncClient, tenant: Tenant
) -> None:
    buyer = await make_customer(client, tenant, emails=["buyer@example.jp"], tags=["vip"])
    await _order(client, tenant, "buyer@example.jp", "recent", days_ago=1)
    within_30_days = {"field": "occurred_at", "op": "within_last", "value": "30d"}
    recent = await _segment(
        client,
        tenant,
        name="最近の購入者",
        kind="dynamic",
        filter={"field": "orders", "op": "has", "where": within_30_days},
    )
    vip = await _segment(client, tenant, name="VIP", kind="dynamic", filter=VIP)
    while await _worker(app).run_once():
        pass
    assert await _members(client, tenant, recent["id"]) == {buyer["id"]}
    assert await _members(client, tenant, vip["id"]) == {buyer["id"]}
    filled = (await client.get(f"/v1/segments/{vip['id']}", headers=tenant.headers)).json()

    # The order ages past 30 days and the tag goes, both with no event, as only time (or a
    # value kept elsewhere) changes things. The sweep catches what drifts; the VIP filter is
    # followed change by change, so the sweep only keeps its size.
    forty_days_ago = datetime.now(UTC) - timedelta(days=40)
    async with _worker(app).sessions() as session, session.begin():
        await session.execute(
            update(Order).where(Order.order_id == "ord-recent").values(occurred_at=forty_days_ago)
        )
        await session.execute(
            update(Customer)
            .where(Customer.id == UUID(buyer["id"]))
            .values(tags=[], first_order_at=forty_days_ago, last_order_at=forty_days_ago)
        )
    sweeper = SegmentWorker(_worker(app).sessions, sweep_every=timedelta(0))
    swept: list[dict[str, Any]] = []
    for _ in range(100):  # the other tests' segments share the database, oldest swept first
        await sweeper.run_once()
        swept = [
            (await client.get(f"/v1/segments/{segment['id']}", headers=tenant.headers)).json()
            for segment in (recent, vip)
        ]
        if all(segment["computed_at"] > filled["computed_at"] for segment in swept):
            break

    assert all(segment["computed_at"] > filled["computed_at"] for segment in swept)
    assert await _members(client, tenant, recent["id"]) == set()
    assert await _members(client, tenant, vip["id"]) == {buyer["id"]}
    assert await _segment_events(client, tenant, 1) == [
        ("segment.exited", recent["id"], buyer["id"])
    ]
    assert [segment["member_count"] for segment in swept] == [0, 1]
