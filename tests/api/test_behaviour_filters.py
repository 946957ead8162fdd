"""Behaviour conditions of the filter DSL (`orders`, `interactions`, `events`) over HTTP.

Besides worked examples, a property test builds randomised shop histories, throws random filters
at the search endpoint, and compares the answer with a plain Python reading of the same filter
over the same data: the SQL and the meaning must agree on both databases.
"""

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.domain.segment.worker import SegmentWorker
from tests.api.factories import make_customer, make_interaction, post_created
from tests.conftest import Tenant

Filter = dict[str, Any]


@dataclass
class Line:
    sku: str
    category: str | None
    quantity: int
    unit_price: int


@dataclass
class Order:
    occurred_at: datetime
    channel: str
    lines: list[Line]
    refunded: int = 0  # a partial refund by amount; the order still counts

    @property
    def total(self) -> int:
        return sum(line.quantity * line.unit_price for line in self.lines)

    @property
    def net(self) -> int:
        return self.total - self.refunded


@dataclass
class Touch:
    """An interaction: a survey with its score, or a call."""

    type: str
    occurred_at: datetime
    nps_score: int | None = None


@dataclass
class ShopEvent:
    type: str
    occurred_at: datetime
    path: str | None


@dataclass
class Person:
    email: str
    tags: list[str]
    orders: list[Order] = field(default_factory=list)
    touches: list[Touch] = field(default_factory=list)
    events: list[ShopEvent] = field(default_factory=list)
    id: str = ""


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def _post_history(client: AsyncClient, tenant: Tenant, people: list[Person]) -> None:
    events: list[dict[str, Any]] = []
    for number, person in enumerate(people):
        created = await make_customer(client, tenant, emails=[person.email], tags=person.tags)
        person.id = created["id"]
        reference = {"email": person.email}
        for index, order in enumerate(person.orders):
            events.append(
                {
                    "event_id": f"o-{number}-{index}",
                    "type": "order.completed",
                    "occurred_at": _iso(order.occurred_at),
                    "customer": reference,
                    "order": {
                        "order_id": f"ord-{number}-{index}",
                        "currency": "JPY",
                        "channel": order.channel,
                        "lines": [
                            {
                                "sku": line.sku,
                                "name": line.sku,
                                "quantity": line.quantity,
                                "unit_price": line.unit_price,
                                **({"category": line.category} if line.category else {}),
                            }
                            for line in order.lines
                        ],
                    },
                }
            )
        refunds = [
            {
                "event_id": f"r-{number}-{index}",
                "type": "order.refunded",
                "occurred_at": _iso(order.occurred_at + timedelta(minutes=5)),
                "customer": reference,
                "order": {"order_id": f"ord-{number}-{index}", "amount": order.refunded},
            }
            for index, order in enumerate(person.orders)
            if order.refunded
        ]
        events.extend(refunds)
        for index, shop_event in enumerate(person.events):
            events.append(
                {
                    "event_id": f"e-{number}-{index}",
                    "type": shop_event.type,
                    "occurred_at": _iso(shop_event.occurred_at),
                    "customer": reference,
                    "properties": {"path": shop_event.path} if shop_event.path else {},
                }
            )
        for touch in person.touches:
            body: dict[str, Any] = {"type": touch.type, "occurred_at": _iso(touch.occurred_at)}
            if touch.nps_score is not None:
                body["nps_score"] = touch.nps_score
            await make_interaction(client, tenant, person.id, **body)
    for start in range(0, len(events), 500):
        response = await client.post(
            "/v1/events/batch", json={"items": events[start : start + 500]}, headers=tenant.headers
        )
        assert response.status_code == 200, response.text
        assert all(item["status"] == "accepted" for item in response.json()["results"])


async def _matching_ids(client: AsyncClient, tenant: Tenant, filter_: Filter) -> set[str]:
    response = await client.post(
        "/v1/customers/search", json={"filter": filter_, "limit": 100}, headers=tenant.headers
    )
    assert response.status_code == 200, (filter_, response.text)
    return {customer["id"] for customer in response.json()["data"]}


# ---- a plain reading of the DSL, for the property test ----

DAY = timedelta(days=1)
PERIODS = {"7d": 7, "30d": 30, "90d": 90, "26w": 182}
AGES = (1, 10, 45, 100, 250)  # days ago; never near a period's edge
CATEGORIES = ("shoes", "bags", "靴下", None)
PATHS = ("/sale/autumn", "/sale", "/products/1", "/SALE/x", None)


def _compare(op: str, actual: Any, value: Any, now: datetime) -> bool:
    if op == "ne":
        return actual is None or actual != value
    if op == "not_in":
        return actual is None or actual not in value
    if op == "not_within_last":
        return actual is None or actual < now - PERIODS[value] * DAY
    if actual is None:
        return False
    checks: dict[str, Callable[[], bool]] = {
        "eq": lambda: actual == value,
        "in": lambda: actual in value,
        "gt": lambda: actual > value,
        "gte": lambda: actual >= value,
        "lt": lambda: actual < value,
        "lte": lambda: actual <= value,
        "contains": lambda: value.lower() in actual.lower(),
        "starts_with": lambda: actual.lower().startswith(value.lower()),
        "within_last": lambda: actual >= now - PERIODS[value] * DAY,
    }
    return checks[op]()


def _order_meets(order: Order, condition: Filter, now: datetime) -> bool:
    name, op, value = condition["field"], condition["op"], condition.get("value")
    if name.startswith("lines."):
        part = name.removeprefix("lines.")
        return any(_compare(op, getattr(line, part), value, now) for line in order.lines)
    return _compare(op, getattr(order, name), value, now)


def _touch_meets(touch: Touch, condition: Filter, now: datetime) -> bool:
    return _compare(
        condition["op"], getattr(touch, condition["field"]), condition.get("value"), now
    )


def _event_meets(event: ShopEvent, condition: Filter, now: datetime) -> bool:
    name = condition["field"]
    actual = event.path if name == "properties.path" else getattr(event, name)
    return _compare(condition["op"], actual, condition.get("value"), now)


def _holds(
    node: Filter, item: Any, leaf: Callable[[Any, Filter, datetime], bool], now: datetime
) -> bool:
    if "all" in node:
        return all(_holds(child, item, leaf, now) for child in node["all"])
    if "any" in node:
        return any(_holds(child, item, leaf, now) for child in node["any"])
    if "not" in node:
        return not _holds(node["not"], item, leaf, now)
    return leaf(item, node, now)


def _person_meets(person: Person, condition: Filter, now: datetime) -> bool:
    name, op, value = condition["field"], condition["op"], condition.get("value")
    behaviours: dict[str, tuple[list[Any], Callable[[Any, Filter, datetime], bool]]] = {
        "orders": (person.orders, _order_meets),
        "interactions": (person.touches, _touch_meets),
        # Orders arrive as events too: `events` is everything the shop posted.
        "events": (
            [
                *person.events,
                *(ShopEvent("order.completed", order.occurred_at, None) for order in person.orders),
                *(
                    ShopEvent("order.refunded", order.occurred_at + timedelta(minutes=5), None)
                    for order in person.orders
                    if order.refunded
                ),
            ],
            _event_meets,
        ),
    }
    if name in behaviours:
        rows, leaf = behaviours[name]
        where = condition.get("where")
        meeting = [row for row in rows if where is None or _holds(where, row, leaf, now)]
        count = len(meeting)
        if op in ("spent_gte", "spent_lte"):
            spent = sum(order.net for order in meeting)
            return spent >= value if op == "spent_gte" else spent <= value
        return {
            "has": lambda: count >= 1,
            "has_none": lambda: count == 0,
            "count_gte": lambda: count >= value,
            "count_lte": lambda: count <= value,
            "count_eq": lambda: count == value,
        }[op]()
    if name == "tags":
        return value in person.tags
    if name == "metrics.order_count":
        return _compare(op, len(person.orders), value, now)
    if name == "metrics.total_spent":
        return _compare(op, sum(order.net for order in person.orders), value, now)
    raise AssertionError(name)


# ---- random data and filters ----


def _random_people(rng: random.Random, now: datetime) -> list[Person]:
    def moment() -> datetime:
        return now - rng.choice(AGES) * DAY - timedelta(minutes=rng.randrange(600))

    people = []
    for number in range(18):
        person = Person(
            email=f"p{number}@example.jp", tags=rng.sample(["vip", "newsletter", "店舗"], 1)
        )
        for _ in range(rng.choice((0, 1, 2, 3, 4))):
            lines = [
                Line(
                    sku=rng.choice(("SKU-1", "SKU-2", "SKU-3")),
                    category=rng.choice(CATEGORIES),
                    quantity=rng.randint(1, 3),
                    unit_price=rng.choice((500, 3_000, 12_000)),
                )
                for _ in range(rng.randint(1, 3))
            ]
            order = Order(moment(), rng.choice(("online", "store")), lines)
            if order.total > 500 and rng.random() < 0.3:
                order.refunded = 500
            person.orders.append(order)
        for _ in range(rng.choice((0, 1, 2))):
            if rng.random() < 0.6:
                person.touches.append(Touch("survey", moment(), rng.randint(0, 10)))
            else:
                person.touches.append(Touch("call", moment()))
        for _ in range(rng.choice((0, 1, 2, 3))):
            kind = rng.choice(("page.viewed", "cart.abandoned"))
            person.events.append(ShopEvent(kind, moment(), rng.choice(PATHS)))
        people.append(person)
    return people


def _order_condition(rng: random.Random) -> Filter:
    return rng.choice(
        [
            {
                "field": "occurred_at",
                "op": rng.choice(("within_last", "not_within_last")),
                "value": rng.choice(list(PERIODS)),
            },
            {
                "field": "total",
                "op": rng.choice(("gte", "lt")),
                "value": rng.choice((3_000, 12_000, 30_000)),
            },
            {
                "field": "channel",
                "op": rng.choice(("eq", "ne")),
                "value": rng.choice(("online", "store")),
            },
            {
                "field": "lines.category",
                "op": rng.choice(("eq", "ne")),
                "value": rng.choice(("shoes", "靴下")),
            },
            {"field": "lines.category", "op": "in", "value": ["shoes", "bags"]},
            {
                "field": "lines.quantity",
                "op": rng.choice(("gte", "lte")),
                "value": rng.randint(1, 3),
            },
            {"field": "lines.sku", "op": "not_in", "value": ["SKU-1"]},
        ]
    )


def _touch_condition(rng: random.Random) -> Filter:
    return rng.choice(
        [
            {
                "field": "type",
                "op": rng.choice(("eq", "ne")),
                "value": rng.choice(("survey", "call")),
            },
            {
                "field": "nps_score",
                "op": rng.choice(("gte", "lte", "ne")),
                "value": rng.randint(0, 10),
            },
            {
                "field": "occurred_at",
                "op": rng.choice(("within_last", "not_within_last")),
                "value": rng.choice(list(PERIODS)),
            },
        ]
    )


def _event_condition(rng: random.Random) -> Filter:
    return rng.choice(
        [
            {
                "field": "type",
                "op": rng.choice(("eq", "ne")),
                "value": rng.choice(("page.viewed", "cart.abandoned")),
            },
            {
                "field": "properties.path",
                "op": rng.choice(("starts_with", "contains", "eq", "ne")),
                "value": rng.choice(("/sale", "products")),
            },
            {"field": "occurred_at", "op": "within_last", "value": rng.choice(list(PERIODS))},
        ]
    )


def _group(rng: random.Random, make: Callable[[random.Random], Filter], depth: int) -> Filter:
    if depth == 0 or rng.random() < 0.5:
        return make(rng)
    kind = rng.choice(("all", "any", "not"))
    if kind == "not":
        return {"not": _group(rng, make, depth - 1)}
    return {kind: [_group(rng, make, depth - 1) for _ in range(rng.randint(1, 3))]}


def _behaviour_condition(rng: random.Random) -> Filter:
    name, make = rng.choice(
        [
            ("orders", _order_condition),
            ("interactions", _touch_condition),
            ("events", _event_condition),
        ]
    )
    ops = ["has", "has_none", "count_gte", "count_lte", "count_eq"]
    if name == "orders":
        ops += ["spent_gte", "spent_lte"]
    op = rng.choice(ops)
    condition: Filter = {"field": name, "op": op}
    if op.startswith("count_"):
        condition["value"] = rng.randint(0, 3)
    if op.startswith("spent_"):
        condition["value"] = rng.choice((0, 3_000, 12_500, 30_000))
    if rng.random() < 0.85:
        condition["where"] = _group(rng, make, 2)
    return condition


def _customer_condition(rng: random.Random) -> Filter:
    return rng.choice(
        [
            {"field": "tags", "op": "contains", "value": rng.choice(("vip", "店舗"))},
            {
                "field": "metrics.order_count",
                "op": rng.choice(("gte", "lt")),
                "value": rng.randint(1, 3),
            },
            {"field": "metrics.total_spent", "op": "gt", "value": rng.choice((10_000, 50_000))},
            _behaviour_condition(rng),
            _behaviour_condition(rng),
            _spent_condition(rng),
        ]
    )


def _spent_condition(rng: random.Random) -> Filter:
    condition: Filter = {
        "field": "orders",
        "op": rng.choice(("spent_gte", "spent_lte")),
        "value": rng.choice((3_000, 12_500, 30_000, 60_000)),
    }
    if rng.random() < 0.7:
        condition["where"] = _group(rng, _order_condition, 1)
    return condition


async def test_sql_agrees_with_a_plain_reading_of_random_filters(
    app: FastAPI, client: AsyncClient, tenant: Tenant
) -> None:
    """Both compiled forms: correlated per customer (a search, as a change re-evaluates a
    segment) and grouped over the whole workspace (the worker recomputing a segment)."""
    rng = random.Random(20261123)
    now = datetime.now(UTC)
    people = _random_people(rng, now)
    await _post_history(client, tenant, people)
    by_id = {person.id: person for person in people}
    tried = 0
    segments: list[tuple[str, Filter, set[str]]] = []
    # Besides the random filters, every form that order metrics answer without a subquery.
    summarised: list[Filter] = [
        {"field": "orders", "op": op}
        | ({"value": count} if op.startswith("count_") else {})
        | (
            {"where": {"field": "occurred_at", "op": "within_last", "value": period}}
            if period
            else {}
        )
        for op in ("has", "has_none", "count_gte", "count_lte", "count_eq")
        for count in ((0, 1, 2, 3) if op.startswith("count_") else (None,))
        for period in (None, *PERIODS)
    ]
    for number in range(150 + len(summarised)):
        filter_ = summarised[number - 150] if number >= 150 else _group(rng, _customer_condition, 3)
        expected = {
            pid for pid, person in by_id.items() if _holds(filter_, person, _person_meets, now)
        }
        assert await _matching_ids(client, tenant, filter_) == expected, json.dumps(filter_)
        tried += 1 if 0 < len(expected) < len(people) else 0
        segment = await post_created(
            client,
            tenant,
            "/v1/segments",
            {"name": f"random {number}", "kind": "dynamic", "filter": filter_},
        )
        segments.append((segment["id"], filter_, expected))
    assert tried > 50  # most filters split the customers, so they really test something
    worker: SegmentWorker = app.state.segment_worker
    while await worker.run_once():
        pass
    for segment_id, filter_, expected in segments:
        response = await client.get(
            f"/v1/segments/{segment_id}/customers?limit=100", headers=tenant.headers
        )
        assert response.status_code == 200, response.text
        members = {customer["id"] for customer in response.json()["data"]}
        assert members == expected, json.dumps(filter_)


# ---- worked examples from a shop ----


async def test_shop_examples(client: AsyncClient, tenant: Tenant) -> None:
    now = datetime.now(UTC)
    shoes = Line("SHOE-1", "shoes", 1, 12_000)
    socks = Line("SOCK-1", "靴下", 2, 500)
    repeat_shoe_buyer = Person("repeat@example.jp", ["店舗"])
    repeat_shoe_buyer.orders = [
        Order(now - 10 * DAY, "store", [shoes]),
        Order(now - 40 * DAY, "online", [shoes, socks]),
    ]
    old_shoe_buyer = Person("old@example.jp", [])
    old_shoe_buyer.orders = [
        Order(now - 200 * DAY, "store", [shoes]),
        Order(now - 300 * DAY, "store", [shoes]),
    ]
    sale_browser = Person("browser@example.jp", [])
    sale_browser.events = [ShopEvent("page.viewed", now - DAY, "/sale/autumn")]
    sale_browser.touches = [Touch("survey", now - 20 * DAY, 9)]
    people = [repeat_shoe_buyer, old_shoe_buyer, sale_browser]
    await _post_history(client, tenant, people)

    bought_shoes_twice_lately = {
        "field": "orders",
        "op": "count_gte",
        "value": 2,
        "where": {
            "all": [
                {"field": "lines.category", "op": "eq", "value": "shoes"},
                {"field": "occurred_at", "op": "within_last", "value": "90d"},
            ]
        },
    }
    assert await _matching_ids(client, tenant, bought_shoes_twice_lately) == {repeat_shoe_buyer.id}

    no_recent_survey = {
        "field": "interactions",
        "op": "has_none",
        "where": {
            "all": [
                {"field": "type", "op": "eq", "value": "survey"},
                {"field": "occurred_at", "op": "within_last", "value": "180d"},
            ]
        },
    }
    assert await _matching_ids(client, tenant, no_recent_survey) == {
        repeat_shoe_buyer.id,
        old_shoe_buyer.id,
    }

    viewed_the_sale = {
        "field": "events",
        "op": "has",
        "where": {
            "all": [
                {"field": "type", "op": "eq", "value": "page.viewed"},
                {"field": "properties.path", "op": "starts_with", "value": "/sale"},
            ]
        },
    }
    assert await _matching_ids(client, tenant, viewed_the_sale) == {sale_browser.id}

    lapsed_big_spenders = {
        "all": [
            {"field": "orders", "op": "count_gte", "value": 2},
            {
                "field": "orders",
                "op": "has_none",
                "where": {"field": "occurred_at", "op": "within_last", "value": "90d"},
            },
            {"field": "metrics.total_spent", "op": "gt", "value": 20_000},
        ]
    }
    assert await _matching_ids(client, tenant, lapsed_big_spenders) == {old_shoe_buyer.id}


@pytest.mark.parametrize(
    ("filter_", "loc"),
    [
        (
            {
                "field": "tags",
                "op": "contains",
                "value": "vip",
                "where": {"field": "x", "op": "eq"},
            },
            ["body", "filter", "where"],
        ),
        (
            {"field": "orders", "op": "has", "where": {"field": "salary", "op": "eq", "value": 1}},
            ["body", "filter", "where", "field"],
        ),
        (
            {"field": "orders", "op": "has", "where": {"field": "total", "op": "eq", "value": "x"}},
            ["body", "filter", "where", "value"],
        ),
        (
            {
                "field": "orders",
                "op": "has",
                "where": {"field": "occurred_at", "op": "within_last", "value": "soon"},
            },
            ["body", "filter", "where", "value"],
        ),
        ({"field": "orders", "op": "count_gte", "value": -1}, ["body", "filter", "value"]),
        ({"field": "orders", "op": "count_gte", "value": True}, ["body", "filter", "value"]),
        ({"field": "orders", "op": "has", "value": 2}, ["body", "filter", "value"]),
        ({"field": "orders", "op": "eq", "value": 2}, ["body", "filter", "op"]),
        ({"field": "orders", "op": "has", "where": []}, ["body", "filter", "where"]),
        (
            {
                "field": "events",
                "op": "has",
                "where": {"field": "properties.a') OR 1=1 --", "op": "eq", "value": "x"},
            },
            ["body", "filter", "where", "field"],
        ),
        (
            {
                "field": "interactions",
                "op": "has",
                "where": {"field": "type", "op": "eq", "value": "telegram"},
            },
            ["body", "filter", "where", "value"],
        ),
        (
            {"field": "orders", "op": "has", "where": {"field": "orders", "op": "has"}},
            ["body", "filter", "where", "field"],
        ),
    ],
)
async def test_bad_behaviour_conditions_answer_422_naming_the_path(
    client: AsyncClient, tenant: Tenant, filter_: Filter, loc: list[Any]
) -> None:
    response = await client.post(
        "/v1/customers/search", json={"filter": filter_}, headers=tenant.headers
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert loc in [error["loc"] for error in response.json()["errors"]]


async def test_sql_shaped_values_in_behaviours_are_only_values(
    client: AsyncClient, tenant: Tenant
) -> None:
    tricky = '\'; DROP TABLE "order"; --'
    person = Person("tricky@example.jp", [])
    person.orders = [Order(datetime.now(UTC) - DAY, "online", [Line("SKU-1", None, 1, 100)])]
    await _post_history(client, tenant, [person])
    for where in (
        {"field": "lines.category", "op": "eq", "value": tricky},
        {"field": "lines.sku", "op": "contains", "value": "%' OR '1'='1"},
        {"field": "order_id", "op": "in", "value": [tricky, "x"]},
    ):
        assert (
            await _matching_ids(client, tenant, {"field": "orders", "op": "has", "where": where})
            == set()
        )
    assert await _matching_ids(client, tenant, {"field": "orders", "op": "has"}) == {person.id}
