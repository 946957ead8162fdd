"""Incremental customer metrics agree with a rebuild from orders, whatever the history."""

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient

from app.domain.commerce.metrics import rebuild_metrics
from tests.conftest import Tenant

CUSTOMERS = ("c-1", "c-2", "c-3")
SKUS = (("TEA", "tea", 1200), ("CAKE", "sweets", 450), ("CUP", "ware", 3000))


def random_history(rng: random.Random) -> list[dict[str, Any]]:
    """Orders, partial refunds and cancellations of three customers, shuffled."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events: list[dict[str, Any]] = []
    for number in range(rng.randint(3, 12)):
        order_id = f"o-{number}"
        when = start + timedelta(days=rng.randint(0, 300), hours=rng.randint(0, 23))
        lines = [
            {"sku": sku, "category": category, "quantity": rng.randint(1, 3), "unit_price": price}
            for sku, category, price in rng.sample(SKUS, rng.randint(1, 3))
        ]
        events.append(
            {
                "event_id": f"{order_id}-placed",
                "type": "order.completed",
                "occurred_at": when.isoformat(),
                "customer": {"external_id": rng.choice(CUSTOMERS)},
                "order": {
                    "order_id": order_id,
                    "currency": "JPY",
                    "channel": rng.choice(["online", "store"]),
                    "lines": lines,
                },
            }
        )
        later = (when + timedelta(days=1)).isoformat()
        fate = rng.random()
        if fate < 0.3:
            line = rng.choice(lines)
            events.append(
                {
                    "event_id": f"{order_id}-refund",
                    "type": "order.refunded",
                    "occurred_at": later,
                    "customer": {"external_id": "anyone"},
                    "order": {"order_id": order_id, "lines": [{"sku": line["sku"], "quantity": 1}]},
                }
            )
        elif fate < 0.45:
            events.append(
                {
                    "event_id": f"{order_id}-cancel",
                    "type": "order.cancelled",
                    "occurred_at": later,
                    "customer": {"external_id": "anyone"},
                    "order": {"order_id": order_id},
                }
            )
    rng.shuffle(events)
    return events


def expected_figures(events: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """(order count, net spent) per customer, worked out by hand from the events."""
    orders = {e["order"]["order_id"]: e for e in events if e["type"] == "order.completed"}
    refunded: dict[str, int] = {}
    cancelled = {e["order"]["order_id"] for e in events if e["type"] == "order.cancelled"}
    for event in events:
        if event["type"] == "order.refunded":
            order = orders[event["order"]["order_id"]]
            sku = event["order"]["lines"][0]["sku"]
            price = next(
                line["unit_price"] for line in order["order"]["lines"] if line["sku"] == sku
            )
            refunded[order["order"]["order_id"]] = (
                refunded.get(order["order"]["order_id"], 0) + price
            )
    figures: dict[str, tuple[int, int]] = {}
    for order_id, event in orders.items():
        total = sum(line["quantity"] * line["unit_price"] for line in event["order"]["lines"])
        net = total - refunded.get(order_id, 0)
        counted = order_id not in cancelled and net > 0
        who = event["customer"]["external_id"]
        count, spent = figures.get(who, (0, 0))
        figures[who] = (count + counted, spent + (net if counted else 0))
    return figures


async def _metrics(client: AsyncClient, tenant: Tenant) -> dict[str, Any]:
    response = await client.get("/v1/customers?limit=200", headers=tenant.headers)
    return {c["external_ids"].get("shop"): c["metrics"] for c in response.json()["data"]}


@pytest.mark.parametrize("seed", range(6))
async def test_incremental_metrics_equal_a_rebuild(
    client: AsyncClient, tenant: Tenant, seed: int
) -> None:
    events = random_history(random.Random(seed))
    half = len(events) // 2
    for chunk in (events[:half], events[half:]):  # some in a batch, some one by one
        await client.post("/v1/events/batch", json={"items": chunk}, headers=tenant.headers)
    for event in events:
        response = await client.post("/v1/events", json=event, headers=tenant.headers)
        assert response.status_code == 200, response.text  # every one is a duplicate now
    incremental = await _metrics(client, tenant)
    by_hand = expected_figures(events)
    assert {
        who: (metrics["order_count"], metrics["total_spent"])
        for who, metrics in incremental.items()
        if who in by_hand
    } == by_hand
    async with tenant.database.writer() as session, session.begin():
        await rebuild_metrics(session, tenant.id)
    assert await _metrics(client, tenant) == incremental
    assert any(metrics["order_count"] for metrics in incremental.values())
