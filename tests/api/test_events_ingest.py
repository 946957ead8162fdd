"""Shop events over HTTP: exactly once, out of order, in batches, with live customer metrics."""

import asyncio
import uuid
from typing import Any

import pytest
from httpx import AsyncClient

from tests.api.factories import make_customer
from tests.conftest import Tenant


def order_event(
    event_id: str,
    order_id: str,
    *,
    customer: dict[str, Any] | None = None,
    lines: list[dict[str, Any]] | None = None,
    occurred_at: str = "2026-11-10T10:00:00+09:00",
    **order: Any,
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "order.completed",
        "occurred_at": occurred_at,
        "customer": customer or {"external_id": "u-1001", "email": "taro@example.jp"},
        "order": {
            "order_id": order_id,
            "currency": "JPY",
            "lines": lines
            or [
                {
                    "sku": "TEA-01",
                    "name": "煎茶",
                    "category": "tea",
                    "quantity": 2,
                    "unit_price": 1200,
                }
            ],
            **order,
        },
    }


def refund_event(event_id: str, order_id: str, occurred_at: str, **refund: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "order.refunded",
        "occurred_at": occurred_at,
        "customer": {"external_id": "u-1001"},
        "order": {"order_id": order_id, **refund},
    }


async def post(client: AsyncClient, tenant: Tenant, event: dict[str, Any]) -> Any:
    return await client.post("/v1/events", json=event, headers=tenant.headers)


async def metrics_of(client: AsyncClient, tenant: Tenant, customer_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/customers/{customer_id}", headers=tenant.headers)
    metrics: dict[str, Any] = response.json()["metrics"]
    return metrics


async def test_an_order_creates_its_customer_once_and_updates_metrics(
    client: AsyncClient, tenant: Tenant
) -> None:
    first = await post(client, tenant, order_event("e-1", "1001", tax=240))
    assert first.status_code == 201, first.text
    accepted = first.json()
    assert accepted["status"] == "accepted"
    again = await post(client, tenant, order_event("e-1", "1001", tax=240))
    assert again.status_code == 200
    assert again.json() == {**accepted, "status": "duplicate"}

    order = await client.get(f"/v1/orders/{accepted['order_id']}", headers=tenant.headers)
    assert order.json()["total"] == 2640
    assert order.json()["status"] == "completed"
    customer = await client.get(f"/v1/customers/{accepted['customer_id']}", headers=tenant.headers)
    assert customer.json()["external_ids"] == {"shop": "u-1001"}
    assert customer.json()["emails"] == ["taro@example.jp"]
    second = await post(
        client,
        tenant,
        order_event("e-2", "1002", occurred_at="2026-11-20T10:00:00+09:00", channel="store"),
    )
    assert second.json()["customer_id"] == accepted["customer_id"]
    metrics = await metrics_of(client, tenant, accepted["customer_id"])
    assert metrics == {
        "order_count": 2,
        "total_spent": 2640 + 2400,
        "currency": "JPY",
        "first_order_at": "2026-11-10T01:00:00Z",
        "last_order_at": "2026-11-20T01:00:00Z",
        "average_order_value": 2520,
        "average_days_between_orders": 10.0,
        "favourite_category": "tea",
        "favourite_channel": "online",
        # Scores relative to the workspace wait for the worker (or POST /v1/insights/recompute).
        "rfm": {"recency": None, "frequency": None, "monetary": None, "group": None},
        "churn_risk": None,
        "predicted_ltv": None,
        "probability_alive": None,
        "insights_computed_at": None,
    }


async def test_lines_without_a_category_never_make_the_favourite_category(
    client: AsyncClient, tenant: Tenant
) -> None:
    first = await post(client, tenant, order_event("e-cat-1", "c-1"))  # 2 x tea
    assert first.status_code == 201, first.text
    lines = [
        {"sku": "GIFT-BOX", "quantity": 5, "unit_price": 100},  # uncategorised, the most bought
        {"sku": "SWT-11", "category": "sweets", "quantity": 3, "unit_price": 1600},
    ]
    second = await post(client, tenant, order_event("e-cat-2", "c-2", lines=lines))
    assert second.status_code == 201, second.text
    metrics = await metrics_of(client, tenant, first.json()["customer_id"])
    assert metrics["favourite_category"] == "sweets"


async def test_an_existing_customer_is_found_by_email_or_phone(
    client: AsyncClient, tenant: Tenant
) -> None:
    known = await make_customer(
        client, tenant, emails=["hanako@example.jp"], phones=["09011112222"]
    )
    by_email = await post(
        client, tenant, order_event("e-m", "m-1", customer={"email": "HANAKO@example.jp"})
    )
    by_phone = await post(
        client, tenant, order_event("e-p", "p-1", customer={"phone": "090-1111-2222"})
    )
    assert by_email.json()["customer_id"] == known["id"]
    assert by_phone.json()["customer_id"] == known["id"]


async def test_refunds_by_line_and_amount_and_cancellation(
    client: AsyncClient, tenant: Tenant
) -> None:
    lines = [
        {"sku": "TEA-01", "category": "tea", "quantity": 2, "unit_price": 1200},
        {"sku": "CUP-01", "category": "ware", "quantity": 1, "unit_price": 3000},
    ]
    placed = (await post(client, tenant, order_event("o", "2001", lines=lines))).json()
    when = "2026-11-11T10:00:00+09:00"
    by_line = await post(
        client, tenant, refund_event("r1", "2001", when, lines=[{"sku": "TEA-01", "quantity": 1}])
    )
    assert by_line.status_code == 201, by_line.text
    order = (await client.get(f"/v1/orders/{placed['order_id']}", headers=tenant.headers)).json()
    assert (order["refunded_total"], order["status"]) == (1200, "partially_refunded")
    assert order["lines"][0]["refunded_quantity"] == 1
    too_much = await post(client, tenant, refund_event("r2", "2001", when, amount=999_999))
    assert too_much.status_code == 422
    retry = await post(client, tenant, refund_event("r2", "2001", when, amount=4200))
    assert retry.status_code == 201  # a rejected event id may be sent again
    order = (await client.get(f"/v1/orders/{placed['order_id']}", headers=tenant.headers)).json()
    assert (order["refunded_total"], order["status"]) == (5400, "refunded")
    metrics = await metrics_of(client, tenant, placed["customer_id"])
    assert (metrics["order_count"], metrics["total_spent"]) == (0, 0)

    other = (await post(client, tenant, order_event("o3", "2002"))).json()
    cancelled = await post(
        client,
        tenant,
        {
            **refund_event("c", "2002", when),
            "type": "order.cancelled",
            "order": {"order_id": "2002"},
        },
    )
    assert cancelled.status_code == 201
    order = (await client.get(f"/v1/orders/{other['order_id']}", headers=tenant.headers)).json()
    assert order["status"] == "cancelled"


async def test_out_of_order_events_end_with_the_same_figures(
    client: AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    when = "2026-11-12T10:00:00+09:00"
    events = [
        order_event("a", "3001"),
        refund_event("b", "3001", when, lines=[{"sku": "TEA-01", "quantity": 1}]),
        order_event("c", "3002", occurred_at="2026-11-15T10:00:00+09:00"),
    ]
    for event in events:
        assert (await post(client, tenant, event)).status_code == 201
    for event in reversed(events):
        assert (await post(client, other_tenant, event)).status_code == 201

    async def figures(workspace: Tenant) -> Any:
        orders = await client.get("/v1/orders?sort=occurred_at", headers=workspace.headers)
        data = orders.json()["data"]
        metrics = await metrics_of(client, workspace, data[0]["customer_id"])
        return [(o["order_id"], o["refunded_total"], o["status"]) for o in data], metrics

    assert await figures(tenant) == await figures(other_tenant)


async def test_batch_answers_per_event(client: AsyncClient, tenant: Tenant) -> None:
    items = [
        order_event("b-1", "4001"),
        order_event("b-1", "4001"),
        {"event_id": "bad id!", "type": "order.completed"},
        {
            "event_id": "b-3",
            "type": "page.viewed",
            "occurred_at": "2026-11-20T10:00:00Z",
            "customer": {"external_id": "visitor-9"},
            "properties": {"path": "/sale"},
        },
        order_event("b-4", "4001"),
        {**order_event("b-5", "4005"), "type": "x-gift-wrapped", "order": None},
    ]
    response = await client.post("/v1/events/batch", json={"items": items}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [
        "accepted",
        "duplicate",
        "error",
        "accepted",
        "error",
        "accepted",
    ]
    assert results[1]["order_id"] == results[0]["order_id"]
    assert results[2]["error"]["status"] == 422
    assert results[4]["error"]["status"] == 409
    assert results[3]["order_id"] is None
    assert results[3]["customer_id"] is not None


async def test_fifty_concurrent_copies_apply_once(client: AsyncClient, tenant: Tenant) -> None:
    event = order_event("same", "5001", customer={"external_id": "new-" + uuid.uuid4().hex})
    answers = await asyncio.gather(*(post(client, tenant, event) for _ in range(50)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * 49 + [201]
    assert len({answer.json()["order_id"] for answer in answers}) == 1
    orders = await client.get("/v1/orders", headers=tenant.headers)
    assert len(orders.json()["data"]) == 1
    customers = await client.get("/v1/customers", headers=tenant.headers)
    assert len(customers.json()["data"]) == 1


async def test_concurrent_events_for_one_new_customer_create_one(
    client: AsyncClient, tenant: Tenant
) -> None:
    who = {"external_id": "u-" + uuid.uuid4().hex, "email": "together@example.jp"}
    events = [order_event(f"t-{i}", f"6{i:03d}", customer=who) for i in range(10)]
    answers = await asyncio.gather(*(post(client, tenant, event) for event in events))
    assert all(answer.status_code == 201 for answer in answers), [a.text for a in answers]
    assert len({answer.json()["customer_id"] for answer in answers}) == 1
    metrics = await metrics_of(client, tenant, answers[0].json()["customer_id"])
    assert metrics["order_count"] == 10


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"event_id": None}, ["body", "event_id"]),
        ({"event_id": "has space"}, ["body", "event_id"]),
        ({"type": "order.exploded"}, ["body", "type"]),
        ({"occurred_at": "2099-01-01T00:00:00Z"}, ["body", "occurred_at"]),
        ({"customer": {}}, ["body", "customer"]),
        (
            {
                "order": {
                    "order_id": "1",
                    "currency": "YEN",
                    "lines": [{"sku": "a", "quantity": 1, "unit_price": 1}],
                }
            },
            ["body", "order", "currency"],
        ),
        (
            {
                "order": {
                    "order_id": "1",
                    "currency": "JPY",
                    "lines": [{"sku": "a", "quantity": -1, "unit_price": 1}],
                }
            },
            ["body", "order", "lines", 0, "quantity"],
        ),
        (
            {
                "order": {
                    "order_id": "1",
                    "currency": "JPY",
                    "lines": [{"sku": "a", "quantity": 1, "unit_price": 12.5}],
                }
            },
            ["body", "order", "lines", 0, "unit_price"],
        ),
        ({"order": None}, ["body", "order"]),
    ],
)
async def test_bad_events_answer_422_and_store_nothing(
    client: AsyncClient, tenant: Tenant, change: dict[str, Any], loc: list[Any]
) -> None:
    event = {**order_event("bad-1", "9001"), **change}
    response = await post(client, tenant, event)
    assert response.status_code == 422, response.text
    assert loc in [error["loc"] for error in response.json()["errors"]], response.text
    orders = await client.get("/v1/orders", headers=tenant.headers)
    assert orders.json()["data"] == []
    fixed = await post(client, tenant, order_event("bad-1", "9001"))
    assert fixed.status_code == 201


async def test_an_event_cannot_reach_another_workspace(
    client: AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = await make_customer(client, other_tenant, emails=["shared@example.jp"])
    mine = await post(
        client, tenant, order_event("x-1", "7001", customer={"email": "shared@example.jp"})
    )
    assert mine.json()["customer_id"] != theirs["id"]
    untouched = await metrics_of(client, other_tenant, theirs["id"])
    assert untouched["order_count"] == 0


async def test_orders_are_listed_and_filtered(client: AsyncClient, tenant: Tenant) -> None:
    first = (await post(client, tenant, order_event("l-1", "8001"))).json()
    await post(
        client,
        tenant,
        order_event(
            "l-2",
            "8002",
            channel="store",
            lines=[{"sku": "CAKE", "category": "sweets", "quantity": 1, "unit_price": 500}],
        ),
    )
    by_channel = await client.get("/v1/orders?channel=store", headers=tenant.headers)
    assert [o["order_id"] for o in by_channel.json()["data"]] == ["8002"]
    by_sku = await client.get("/v1/orders?sku=TEA-01", headers=tenant.headers)
    assert [o["order_id"] for o in by_sku.json()["data"]] == ["8001"]
    of_customer = await client.get(
        f"/v1/customers/{first['customer_id']}/orders?sort=-occurred_at", headers=tenant.headers
    )
    assert len(of_customer.json()["data"]) == 2


async def test_metrics_are_usable_in_the_dsl(client: AsyncClient, tenant: Tenant) -> None:
    repeat = {"external_id": "repeat-buyer"}
    await post(client, tenant, order_event("d-1", "d-1", customer=repeat))
    await post(client, tenant, order_event("d-2", "d-2", customer=repeat))
    await post(client, tenant, order_event("d-3", "d-3", customer={"external_id": "once"}))
    response = await client.post(
        "/v1/customers/search",
        json={
            "filter": {
                "all": [
                    {"field": "metrics.order_count", "op": "gte", "value": 2},
                    {"field": "metrics.total_spent", "op": "gt", "value": 4000},
                    {"field": "metrics.last_order_at", "op": "within_last", "value": "90d"},
                    {"field": "metrics.favourite_category", "op": "eq", "value": "tea"},
                ]
            }
        },
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    assert [c["external_ids"]["shop"] for c in response.json()["data"]] == ["repeat-buyer"]
