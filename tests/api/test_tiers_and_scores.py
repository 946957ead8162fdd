"""Loyalty tiers and lead scores over HTTP: tiers from orders and refunds, the worker's sweep as
time passes, scoring rules with decay, threshold crossings announced once, `tier` and `score` in
the DSL and the timeline, bad definitions, and other workspaces' rules."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.domain.segment.worker import SegmentWorker
from app.domain.workflow.engine import WorkflowEngine
from tests.api.factories import make_company, make_customer, make_user, post_created
from tests.api.test_workflows import (
    FAST,
    create_workflow,
    drain,
    finished,
    handled,
    runs_of,
    settle,
)
from tests.conftest import Tenant

TWELVE_MONTHS = {"field": "occurred_at", "op": "within_last", "value": "12m"}
GOLD = {"field": "orders", "op": "spent_gte", "value": 100_000, "where": TWELVE_MONTHS}
SILVER = {"field": "orders", "op": "spent_gte", "value": 30_000, "where": TWELVE_MONTHS}
PRICING = {
    "field": "events",
    "op": "has",
    "where": {
        "all": [
            {"field": "type", "op": "eq", "value": "page.viewed"},
            {"field": "properties.path", "op": "starts_with", "value": "/pricing"},
        ]
    },
}
EMAIL_OPENED = {
    "field": "interactions",
    "op": "has",
    "where": {"field": "type", "op": "eq", "value": "email"},
}
BIG_COMPANY = {"field": "company.employee_count", "op": "gt", "value": 100}
COMPETITOR = {"field": "tags", "op": "contains", "value": "competitor"}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _ago(**delta: float) -> str:
    return _iso(datetime.now(UTC) - timedelta(**delta))


async def _post_event(client: AsyncClient, tenant: Tenant, body: dict[str, Any]) -> None:
    response = await client.post("/v1/events", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text


async def _order(
    client: AsyncClient, tenant: Tenant, email: str, number: str, amount: int, **ago: float
) -> None:
    await _post_event(
        client,
        tenant,
        {
            "event_id": f"evt-{number}",
            "type": "order.completed",
            "occurred_at": _ago(**(ago or {"days": 1})),
            "customer": {"email": email},
            "order": {
                "order_id": number,
                "currency": "JPY",
                "lines": [{"sku": "TEA-1", "quantity": 1, "unit_price": amount}],
            },
        },
    )


async def _refund(
    client: AsyncClient, tenant: Tenant, email: str, number: str, amount: int
) -> None:
    await _post_event(
        client,
        tenant,
        {
            "event_id": f"refund-{number}-{amount}",
            "type": "order.refunded",
            "occurred_at": _ago(hours=1),
            "customer": {"email": email},
            "order": {"order_id": number, "amount": amount},
        },
    )


async def _page_view(
    client: AsyncClient, tenant: Tenant, email: str, event_id: str, path: str, **ago: float
) -> None:
    await _post_event(
        client,
        tenant,
        {
            "event_id": event_id,
            "type": "page.viewed",
            "occurred_at": _ago(**ago),
            "customer": {"email": email},
            "properties": {"path": path},
        },
    )


async def _customer(client: AsyncClient, tenant: Tenant, customer_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/customers/{customer_id}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _sweep(app: FastAPI) -> None:
    """What the worker does now: rules that changed, and sweeps that are due."""
    worker: SegmentWorker = app.state.segment_worker
    for _ in range(50):
        if not await worker.run_once():
            return


async def _sweep_again(app: FastAPI) -> None:
    """A periodic sweep of every workspace (this test's among them): each was swept over a
    second ago, so with a period of one second each is due once."""
    await asyncio.sleep(1.1)
    worker = SegmentWorker(app.state.segment_worker.sessions, sweep_every=timedelta(seconds=1))
    for _ in range(50):
        if not await worker.run_once():
            return


async def read_feed(
    client: AsyncClient, tenant: Tenant, *, prefix: str, at_least: int = 0
) -> list[dict[str, Any]]:
    """The workspace's events whose type starts with `prefix`, once `at_least` are visible.

    On PostgreSQL the feed holds events back while an older transaction anywhere on the server
    is open (other suites share it), so a reader polls as a poller would, for up to a minute.
    """
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        events: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = "/v1/events/feed?limit=200" + (f"&after={cursor}" if cursor else "")
            response = await client.get(query, headers=tenant.headers)
            assert response.status_code == 200, response.text
            body = response.json()
            events += [e for e in body["data"] if e["type"].startswith(prefix)]
            if not body["has_more"]:
                break
            cursor = body["next_cursor"]
        if len(events) >= at_least or asyncio.get_running_loop().time() > deadline:
            return events
        await asyncio.sleep(0.05)


async def _changes(
    client: AsyncClient, tenant: Tenant, event_type: str, field: str, at_least: int = 0
) -> list[tuple[str, Any, Any]]:
    events = await read_feed(client, tenant, prefix=event_type, at_least=at_least)
    return [
        (event["data"]["id"], event["changes"][field]["old"], event["changes"][field]["new"])
        for event in events
        if event["type"] == event_type
    ]


async def _search(client: AsyncClient, tenant: Tenant, filter_: dict[str, Any]) -> set[str]:
    response = await client.post(
        "/v1/customers/search", json={"filter": filter_, "limit": 200}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    return {customer["id"] for customer in response.json()["data"]}


async def _timeline_types(client: AsyncClient, tenant: Tenant, customer_id: str) -> list[str]:
    response = await client.get(
        f"/v1/customers/{customer_id}/timeline?limit=100", headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    return [entry["type"] for entry in response.json()["data"]]


async def _tiers(client: AsyncClient, tenant: Tenant) -> None:
    await post_created(
        client, tenant, "/v1/tiers", {"key": "gold", "name": "ゴールド", "rank": 2, "filter": GOLD}
    )
    await post_created(
        client,
        tenant,
        "/v1/tiers",
        {"key": "silver", "name": "シルバー", "rank": 1, "filter": SILVER},
    )


async def test_tiers_follow_orders_and_refunds_in_the_same_request(
    app: FastAPI, client: AsyncClient, tenant: Tenant
) -> None:
    await _tiers(client, tenant)
    await _sweep(app)
    customer = await make_customer(client, tenant, emails=["hanako@example.jp"])
    assert (customer["tier"], customer["tier_since"]) == (None, None)

    # An order from 13 months ago does not count towards the last 12.
    await _order(client, tenant, "hanako@example.jp", "old", 200_000, days=400)
    assert (await _customer(client, tenant, customer["id"]))["tier"] is None
    await _order(client, tenant, "hanako@example.jp", "1001", 40_000)
    silver = await _customer(client, tenant, customer["id"])
    assert silver["tier"] == "silver"
    assert silver["tier_since"] is not None
    assert silver["version"] == customer["version"]  # derived, like metrics: no new version
    # The order that crosses ¥100,000 makes her gold at once.
    await _order(client, tenant, "hanako@example.jp", "1002", 70_000)
    gold = await _customer(client, tenant, customer["id"])
    assert gold["tier"] == "gold"
    assert gold["tier_since"] > silver["tier_since"]
    # A refund of ¥20,000 leaves ¥90,000 net: silver again.
    await _refund(client, tenant, "hanako@example.jp", "1002", 20_000)
    assert (await _customer(client, tenant, customer["id"]))["tier"] == "silver"

    assert await _changes(client, tenant, "customer.tier_changed", "tier", 3) == [
        (customer["id"], None, "silver"),
        (customer["id"], "silver", "gold"),
        (customer["id"], "gold", "silver"),
    ]
    events = await read_feed(client, tenant, prefix="customer.tier_changed", at_least=3)
    assert events[-1]["data"]["tier"] == "silver"  # the customer as she is now

    # Tiers are usable in the DSL, and appear in the customer's timeline.
    assert await _search(client, tenant, {"field": "tier", "op": "eq", "value": "silver"}) == {
        customer["id"]
    }
    assert await _search(client, tenant, {"field": "tier", "op": "in", "value": ["gold"]}) == set()
    assert await _search(client, tenant, {"field": "tier", "op": "is_not_set"}) == set()
    assert (await _timeline_types(client, tenant, customer["id"])).count(
        "customer.tier_changed"
    ) == 3
    # A sweep finds nothing new, and announces nothing.
    await _sweep_again(app)
    assert len(await _changes(client, tenant, "customer.tier_changed", "tier")) == 3


async def test_new_tiers_are_filled_by_the_worker_and_time_passing_drops_them(
    app: FastAPI, client: AsyncClient, tenant: Tenant
) -> None:
    big = await make_customer(client, tenant, emails=["big@example.jp"])
    small = await make_customer(client, tenant, emails=["small@example.jp"])
    await _order(client, tenant, "big@example.jp", "b1", 150_000)
    await _order(client, tenant, "small@example.jp", "s1", 35_000)
    # "Bought in the last hour": an order 59 minutes and 54 seconds ago soon stops counting.
    await post_created(
        client,
        tenant,
        "/v1/tiers",
        {
            "key": "hot",
            "name": "今買った",
            "rank": 9,
            "filter": {
                "field": "orders",
                "op": "has",
                "where": {"field": "occurred_at", "op": "within_last", "value": "1h"},
            },
        },
    )
    await _tiers(client, tenant)
    assert (await _customer(client, tenant, big["id"]))["tier"] is None  # not yet evaluated
    await _sweep(app)
    assert (await _customer(client, tenant, big["id"]))["tier"] == "gold"
    assert (await _customer(client, tenant, small["id"]))["tier"] == "silver"

    await _order(client, tenant, "small@example.jp", "s2", 1_000, minutes=59, seconds=54)
    assert (await _customer(client, tenant, small["id"]))["tier"] == "hot"
    await asyncio.sleep(5.5)
    await _sweep(app)  # swept a moment ago: not due yet
    assert (await _customer(client, tenant, small["id"]))["tier"] == "hot"
    await _sweep_again(app)
    assert (await _customer(client, tenant, small["id"]))["tier"] == "silver"

    # Deleting a tier moves its holders down, in the background.
    tiers = (await client.get("/v1/tiers?sort=-rank", headers=tenant.headers)).json()["data"]
    assert [tier["key"] for tier in tiers] == ["hot", "gold", "silver"]
    response = await client.delete(f"/v1/tiers/{tiers[1]['id']}", headers=tenant.headers)
    assert response.status_code == 204
    await _sweep(app)
    assert (await _customer(client, tenant, big["id"]))["tier"] == "silver"
    assert await _changes(client, tenant, "customer.tier_changed", "tier", 6) == [
        (big["id"], None, "gold"),
        (small["id"], None, "silver"),
        (small["id"], "silver", "hot"),
        (small["id"], "hot", "silver"),
        (big["id"], "gold", "silver"),
    ]


async def test_scores_add_rule_points_with_decay_and_announce_threshold_crossings_once(
    app: FastAPI, client: AsyncClient, tenant: Tenant
) -> None:
    response = await client.put(
        "/v1/scoring-rules/thresholds", json={"thresholds": [80, 50, 80]}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"thresholds": [50, 80]}
    rules = {}
    for name, points, filter_, half_life in (
        ("料金ページ閲覧", 40, PRICING, 7),
        ("メール開封", 30, EMAIL_OPENED, None),
        ("従業員100名超", 20, BIG_COMPANY, None),
        ("競合", -50, COMPETITOR, None),
    ):
        body = {"name": name, "points": points, "filter": filter_, "half_life_days": half_life}
        rules[name] = await post_created(client, tenant, "/v1/scoring-rules", body)
    await _sweep(app)

    company = await make_company(client, tenant, employee_count=500)
    lead = await make_customer(client, tenant, emails=["lead@example.jp"], company_id=company["id"])
    assert (await _customer(client, tenant, lead["id"]))["score"] == 20
    # Viewed pricing 13 days ago: 40 points halve every 7 days, 40 × 0.5^(13/7) = 11.
    await _page_view(client, tenant, "lead@example.jp", "pv-old", "/pricing/team", days=13)
    read = await _customer(client, tenant, lead["id"])
    assert read["score"] == 31
    assert {item["name"]: item["points"] for item in read["score_breakdown"]} == {
        "料金ページ閲覧": 11,
        "従業員100名超": 20,
    }
    assert {item["rule_id"] for item in read["score_breakdown"]} == {
        rules["料金ページ閲覧"]["id"],
        rules["従業員100名超"]["id"],
    }
    # Viewed again now: the newest view counts, in full. 60 crosses 50.
    await _page_view(client, tenant, "lead@example.jp", "pv-new", "/pricing", minutes=1)
    assert (await _customer(client, tenant, lead["id"]))["score"] == 60
    # Another page is not pricing: nothing changes.
    await _page_view(client, tenant, "lead@example.jp", "pv-blog", "/blog", minutes=1)
    # Opened an email: 90 crosses 80.
    response = await client.post(
        "/v1/interactions",
        json={
            "type": "email",
            "customer_id": lead["id"],
            "subject": "ご案内",
            "direction": "outbound",
        },
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    assert (await _customer(client, tenant, lead["id"]))["score"] == 90
    # Works for a competitor: 40 falls below both thresholds, announced once.
    response = await client.patch(
        f"/v1/customers/{lead['id']}", json={"tags": ["competitor"]}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    assert (await _customer(client, tenant, lead["id"]))["score"] == 40

    assert await _changes(client, tenant, "customer.score_changed", "score", 3) == [
        (lead["id"], 31, 60),
        (lead["id"], 60, 90),
        (lead["id"], 90, 40),
    ]
    # Sweeps re-score everyone; an unchanged score crosses nothing.
    await _sweep_again(app)
    await _sweep_again(app)
    assert len(await _changes(client, tenant, "customer.score_changed", "score")) == 3
    types = await _timeline_types(client, tenant, lead["id"])
    assert types.count("customer.score_changed") == 3

    # Score in the DSL.
    quiet = await make_customer(client, tenant)
    assert await _search(client, tenant, {"field": "score", "op": "gte", "value": 40}) == {
        lead["id"]
    }
    assert await _search(client, tenant, {"field": "score", "op": "lt", "value": 40}) == {
        quiet["id"]
    }
    # A changed rule re-scores everyone in the background.
    response = await client.patch(
        f"/v1/scoring-rules/{rules['競合']['id']}", json={"points": -5}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    await _sweep(app)
    assert (await _customer(client, tenant, lead["id"]))["score"] == 85
    assert (await _changes(client, tenant, "customer.score_changed", "score", 4))[-1] == (
        lead["id"],
        40,
        85,
    )


async def test_concurrent_orders_announce_a_new_tier_once(
    app: FastAPI, client: AsyncClient, tenant: Tenant
) -> None:
    await _tiers(client, tenant)
    await _sweep(app)
    customer = await make_customer(client, tenant, emails=["busy@example.jp"])
    await asyncio.gather(
        *(_order(client, tenant, "busy@example.jp", f"burst-{n}", 40_000) for n in range(6))
    )
    assert (await _customer(client, tenant, customer["id"]))["tier"] == "gold"
    changes = await _changes(client, tenant, "customer.tier_changed", "tier", 2)
    assert [new for _, _, new in changes] == ["silver", "gold"]


async def test_concurrent_page_views_announce_a_crossing_once(
    app: FastAPI, client: AsyncClient, tenant: Tenant
) -> None:
    response = await client.put(
        "/v1/scoring-rules/thresholds", json={"thresholds": [50]}, headers=tenant.headers
    )
    assert response.status_code == 200
    await post_created(
        client, tenant, "/v1/scoring-rules", {"name": "料金", "points": 60, "filter": PRICING}
    )
    await _sweep(app)
    lead = await make_customer(client, tenant, emails=["eager@example.jp"])
    await asyncio.gather(
        *(
            _page_view(client, tenant, "eager@example.jp", f"pv-{n}", "/pricing", minutes=n)
            for n in range(6)
        )
    )
    assert (await _customer(client, tenant, lead["id"]))["score"] == 60
    assert await _changes(client, tenant, "customer.score_changed", "score", 1) == [
        (lead["id"], 0, 60)
    ]


async def test_segments_can_name_tiers_and_scores(
    app: FastAPI, client: AsyncClient, tenant: Tenant
) -> None:
    await _tiers(client, tenant)
    await post_created(
        client,
        tenant,
        "/v1/scoring-rules",
        {
            "name": "VIP",
            "points": 10,
            "filter": {"field": "tags", "op": "contains", "value": "vip"},
        },
    )
    segment = await post_created(
        client,
        tenant,
        "/v1/segments",
        {
            "name": "優良",
            "kind": "dynamic",
            "filter": {
                "any": [
                    {"field": "tier", "op": "eq", "value": "gold"},
                    {"field": "score", "op": "gte", "value": 10},
                ]
            },
        },
    )
    await _sweep(app)
    buyer = await make_customer(client, tenant, emails=["buyer@example.jp"])
    await _order(client, tenant, "buyer@example.jp", "g1", 120_000)
    vip = await make_customer(client, tenant)
    response = await client.patch(
        f"/v1/customers/{vip['id']}", json={"tags": ["vip"]}, headers=tenant.headers
    )
    assert response.status_code == 200
    members = await client.get(f"/v1/segments/{segment['id']}/customers", headers=tenant.headers)
    assert {c["id"] for c in members.json()["data"]} == {buyer["id"], vip["id"]}


async def test_bad_definitions_answer_422_naming_the_path(
    client: AsyncClient, tenant: Tenant
) -> None:
    deep: dict[str, Any] = {"field": "tags", "op": "is_set"}
    for _ in range(11):
        deep = {"not": deep}
    many = {"all": [{"field": "tags", "op": "is_set"}] * 201}
    tier_cases: list[tuple[dict[str, Any], list[Any]]] = [
        ({"field": "salary", "op": "gt", "value": 1}, ["body", "filter", "field"]),
        ({"field": "score", "op": "resembles", "value": 1}, ["body", "filter", "op"]),
        ({"field": "score", "op": "gt", "value": "many"}, ["body", "filter", "value"]),
        ({"field": "attributes.rank", "op": "eq", "value": "a"}, ["body", "filter", "field"]),
        (
            {
                "field": "orders",
                "op": "has",
                "where": {"field": "occurred_at", "op": "within_last", "value": "a while"},
            },
            ["body", "filter", "where", "value"],
        ),
        ({"field": "orders", "op": "spent_gte", "value": "lots"}, ["body", "filter", "value"]),
        ({"field": "interactions", "op": "spent_gte", "value": 1}, ["body", "filter", "op"]),
        (
            {"all": [{"field": "tier", "op": "is_set"}]},
            ["body", "filter", "all", 0, "field"],
        ),
        (deep, ["body", "filter", *(["not"] * 10)]),
        (many, ["body", "filter", "all", 200]),
    ]
    for filter_, loc in tier_cases:
        body = {"key": "gold", "name": "Gold", "rank": 1, "filter": filter_}
        response = await client.post("/v1/tiers", json=body, headers=tenant.headers)
        assert response.status_code == 422, (filter_, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert loc in [error["loc"] for error in response.json()["errors"]], response.text
    rule_cases: list[tuple[dict[str, Any], list[Any]]] = [
        (
            {"name": "x", "points": 1, "filter": {"field": "score", "op": "gt", "value": 1}},
            ["body", "filter", "field"],
        ),
        (
            {"name": "x", "points": 1, "filter": {"not": {"field": "tier", "op": "is_set"}}},
            ["body", "filter", "not", "field"],
        ),
        (
            {"name": "x", "points": 1, "filter": COMPETITOR, "half_life_days": 7},
            ["body", "half_life_days"],
        ),
        (
            {"name": "x", "points": 1, "filter": PRICING, "half_life_days": 0},
            ["body", "half_life_days"],
        ),
        ({"name": "x", "points": 1.5, "filter": PRICING}, ["body", "points"]),
        ({"name": "x", "points": 1, "filter": PRICING, "weight": 2}, ["body", "weight"]),
    ]
    for body, loc in rule_cases:
        response = await client.post("/v1/scoring-rules", json=body, headers=tenant.headers)
        assert response.status_code == 422, (body, response.text)
        assert loc in [error["loc"] for error in response.json()["errors"]], response.text
    response = await client.put(
        "/v1/scoring-rules/thresholds", json={"thresholds": ["high"]}, headers=tenant.headers
    )
    assert response.status_code == 422
    assert ["body", "thresholds", 0] in [error["loc"] for error in response.json()["errors"]]
    # Nothing was stored.
    assert (await client.get("/v1/tiers", headers=tenant.headers)).json()["data"] == []
    assert (await client.get("/v1/scoring-rules", headers=tenant.headers)).json()["data"] == []

    await _tiers(client, tenant)
    for body in (
        {"key": "gold", "name": "again", "rank": 7, "filter": GOLD},
        {"key": "bronze", "name": "same rank", "rank": 1, "filter": GOLD},
    ):
        response = await client.post("/v1/tiers", json=body, headers=tenant.headers)
        assert response.status_code == 409, response.text
    # A filter naming a tier key that does not exist.
    response = await client.post(
        "/v1/customers/search",
        json={"filter": {"field": "tier", "op": "eq", "value": "platinum"}},
        headers=tenant.headers,
    )
    assert response.status_code == 422
    assert ["body", "filter", "value"] in [error["loc"] for error in response.json()["errors"]]


async def test_other_workspaces_tiers_and_rules_are_not_found(
    client: AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    tier = await post_created(
        client, other_tenant, "/v1/tiers", {"key": "gold", "name": "G", "rank": 1, "filter": GOLD}
    )
    rule = await post_created(
        client, other_tenant, "/v1/scoring-rules", {"name": "p", "points": 5, "filter": PRICING}
    )
    for method, path, body in (
        ("GET", f"/v1/tiers/{tier['id']}", None),
        ("PATCH", f"/v1/tiers/{tier['id']}", {"name": "mine"}),
        ("DELETE", f"/v1/tiers/{tier['id']}", None),
        ("GET", f"/v1/scoring-rules/{rule['id']}", None),
        ("PATCH", f"/v1/scoring-rules/{rule['id']}", {"points": 1}),
        ("DELETE", f"/v1/scoring-rules/{rule['id']}", None),
    ):
        response = await client.request(method, path, json=body, headers=tenant.headers)
        assert response.status_code == 404, (method, path, response.text)
    assert (await client.get("/v1/tiers", headers=tenant.headers)).json()["data"] == []
    # Their tier keys are not ours to filter by.
    response = await client.post(
        "/v1/customers/search",
        json={"filter": {"field": "tier", "op": "eq", "value": "gold"}},
        headers=tenant.headers,
    )
    assert response.status_code == 422
    still = await client.get(f"/v1/tiers/{tier['id']}", headers=other_tenant.headers)
    assert still.json()["name"] == "G"


async def test_definitions_keep_versions_and_etags(client: AsyncClient, tenant: Tenant) -> None:
    tier = await post_created(
        client, tenant, "/v1/tiers", {"key": "gold", "name": "G", "rank": 1, "filter": GOLD}
    )
    stale = await client.patch(
        f"/v1/tiers/{tier['id']}",
        json={"name": "Gold"},
        headers={**tenant.headers, "If-Match": '"99"'},
    )
    assert stale.status_code == 412
    fresh = await client.patch(
        f"/v1/tiers/{tier['id']}",
        json={"name": "Gold", "rank": 5},
        headers={**tenant.headers, "If-Match": f'"{tier["version"]}"'},
    )
    assert fresh.status_code == 200, fresh.text
    assert (fresh.json()["name"], fresh.json()["rank"], fresh.json()["version"]) == ("Gold", 5, 2)
    rule = await post_created(
        client,
        tenant,
        "/v1/scoring-rules",
        {"name": "p", "points": 5, "filter": PRICING, "half_life_days": 14},
    )
    cleared = await client.patch(
        f"/v1/scoring-rules/{rule['id']}", json={"half_life_days": None}, headers=tenant.headers
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["half_life_days"] is None
    tier_events = await read_feed(client, tenant, prefix="tier.", at_least=2)
    rule_events = await read_feed(client, tenant, prefix="scoring_rule.", at_least=2)
    assert [e["type"] for e in tier_events + rule_events] == [
        "tier.created",
        "tier.updated",
        "scoring_rule.created",
        "scoring_rule.updated",
    ]


@pytest.fixture
async def engine(tenant: Tenant) -> WorkflowEngine:
    ready = WorkflowEngine(tenant.database.writer, retry_schedule=FAST)
    await ready.match_events()  # starts the shared cursor before the test's events
    return ready


async def test_a_score_crossing_hands_the_lead_to_sales_through_a_workflow(
    app: FastAPI, client: AsyncClient, tenant: Tenant, engine: WorkflowEngine
) -> None:
    response = await client.put(
        "/v1/scoring-rules/thresholds", json={"thresholds": [50, 80]}, headers=tenant.headers
    )
    assert response.status_code == 200
    for name, points, filter_ in (("料金", 60, PRICING), ("メール", 30, EMAIL_OPENED)):
        body = {"name": name, "points": points, "filter": filter_}
        await post_created(client, tenant, "/v1/scoring-rules", body)
    await _sweep(app)
    sales = await make_user(client, tenant)
    workflow = await create_workflow(
        client,
        tenant,
        name="ホットリードを営業へ",
        trigger={"event_type": "customer.score_changed"},
        conditions={"field": "score", "op": "gte", "value": 80},
        actions=[{"type": "create_task", "title": "営業から連絡", "assignee_id": sales["id"]}],
    )
    lead = await make_customer(client, tenant, emails=["warm@example.jp"])
    await _page_view(client, tenant, "warm@example.jp", "pv-1", "/pricing", minutes=1)
    await handled(engine, tenant)  # 60 crossed 50: announced, but the conditions want 80
    response = await client.post(
        "/v1/interactions",
        json={"type": "email", "customer_id": lead["id"], "subject": "資料送付"},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    await drain(engine, finished(client, tenant, workflow))
    await settle(engine)
    [run] = await runs_of(client, tenant, workflow)
    assert (run["status"], run["subject_id"]) == ("succeeded", lead["id"])
    tasks = await client.get(
        f"/v1/interactions?type=task&customer_id={lead['id']}", headers=tenant.headers
    )
    assert [(t["subject"], t["assignee_id"]) for t in tasks.json()["data"]] == [
        ("営業から連絡", sales["id"])
    ]
    assert [
        new for _, _, new in await _changes(client, tenant, "customer.score_changed", "score", 2)
    ] == [60, 90]
