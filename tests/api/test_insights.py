"""Insights over HTTP: every figure against a hand calculation on a small fixed shop history,
with a refund, a cancellation, a merged customer and an erased one (see the comments)."""

import uuid
from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient

from app.core.clock import utcnow
from app.domain.access.scopes import Scope
from tests.api.factories import make_customer, make_interaction, post_created
from tests.conftest import Tenant

PERIOD = {"from": "2026-01-01", "to": "2026-04-01"}
CATEGORY = {"TEA": "tea", "CUP": "ware", "BOWL": "ware", "SNACK": "food"}
PRICE = {"TEA": 1000, "CUP": 2000, "BOWL": 2000, "SNACK": 1500}


async def _order(
    client: AsyncClient,
    tenant: Tenant,
    user: str,
    order_id: str,
    occurred_at: str,
    lines: dict[str, int],
) -> None:
    body = {
        "event_id": f"{order_id}-completed",
        "type": "order.completed",
        "occurred_at": occurred_at,
        "customer": {"external_id": user, "source": "shop"},
        "order": {
            "order_id": order_id,
            "currency": "JPY",
            "channel": "online",
            "lines": [
                {
                    "sku": sku,
                    "name": sku.lower(),
                    "category": CATEGORY[sku],
                    "quantity": quantity,
                    "unit_price": PRICE[sku],
                }
                for sku, quantity in lines.items()
            ],
            "discount": 0,
            "tax": 0,
            "total": sum(PRICE[sku] * quantity for sku, quantity in lines.items()),
        },
    }
    response = await client.post("/v1/events", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text


async def _event(client: AsyncClient, tenant: Tenant, body: dict[str, Any]) -> None:
    response = await client.post("/v1/events", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text


async def _customer_id(client: AsyncClient, tenant: Tenant, user: str) -> str:
    response = await client.post(
        "/v1/customers/search",
        json={"filter": {"field": "external_ids.shop", "op": "eq", "value": user}},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    (customer,) = response.json()["data"]
    return str(customer["id"])


async def _survey(
    client: AsyncClient, tenant: Tenant, customer_id: str, score: int, at: str
) -> None:
    await make_interaction(
        client, tenant, customer_id, type="survey", nps_score=score, occurred_at=at
    )


async def build_shop(client: AsyncClient, tenant: Tenant) -> dict[str, str]:
    """The fixed history (JPY, no discounts or tax):

    A  2026-01-10 TEA (1000); 2026-02-15 TEA+CUP (3000); 2026-03-20 CUP (2000)    = 6000, 3 orders
    B  2026-01-20 TEA+2 CUP (5000); 2026-03-05 2 BOWL (4000), one BOWL refunded    = 7000, 2 orders
    C  2026-02-10 SNACK (1500); 2026-02-25 TEA+SNACK (2500), cancelled            = 1500, 1 order
    E  2026-02-01 CUP (2000), and D merged into E: D 2026-03-10 TEA (1000)         = 3000, 2 orders
    F  2026-01-15 BOWL+TEA (3000), then erased: the order stays, without customer
    H  40 and 10 days ago TEA (1000 each)                                          = 2000, 2 orders
    G  no orders
    Surveys: A 10 (Feb), B 8 (Feb), C 7 (Mar), D 6 (Mar, moves to E), E 9 (Mar), F 0 (erased).
    """
    await _order(client, tenant, "u-a", "A1", "2026-01-10T10:00:00Z", {"TEA": 1})
    await _order(client, tenant, "u-a", "A2", "2026-02-15T10:00:00Z", {"TEA": 1, "CUP": 1})
    await _order(client, tenant, "u-a", "A3", "2026-03-20T10:00:00Z", {"CUP": 1})
    await _order(client, tenant, "u-b", "B1", "2026-01-20T10:00:00Z", {"TEA": 1, "CUP": 2})
    await _order(client, tenant, "u-b", "B2", "2026-03-05T10:00:00Z", {"BOWL": 2})
    await _event(
        client,
        tenant,
        {
            "event_id": "B2-refund",
            "type": "order.refunded",
            "occurred_at": "2026-03-06T10:00:00Z",
            "customer": {"external_id": "u-b", "source": "shop"},
            "order": {"order_id": "B2", "lines": [{"sku": "BOWL", "quantity": 1}]},
        },
    )
    await _order(client, tenant, "u-c", "C1", "2026-02-10T10:00:00Z", {"SNACK": 1})
    await _order(client, tenant, "u-c", "C2", "2026-02-25T10:00:00Z", {"TEA": 1, "SNACK": 1})
    await _event(
        client,
        tenant,
        {
            "event_id": "C2-cancel",
            "type": "order.cancelled",
            "occurred_at": "2026-02-26T10:00:00Z",
            "customer": {"external_id": "u-c", "source": "shop"},
            "order": {"order_id": "C2"},
        },
    )
    await _order(client, tenant, "u-d", "D1", "2026-03-10T10:00:00Z", {"TEA": 1})
    await _order(client, tenant, "u-e", "E1", "2026-02-01T10:00:00Z", {"CUP": 1})
    await _order(client, tenant, "u-f", "F1", "2026-01-15T10:00:00Z", {"BOWL": 1, "TEA": 1})
    now = utcnow()
    for order_id, days in (("H1", 40), ("H2", 10)):
        at = (now - timedelta(days=days)).isoformat()
        await _order(client, tenant, "u-h", order_id, at, {"TEA": 1})
    ids = {user: await _customer_id(client, tenant, f"u-{user}") for user in "abcdefh"}
    ids["g"] = str((await make_customer(client, tenant))["id"])
    for user, score, at in (
        ("a", 10, "2026-02-01T09:00:00Z"),
        ("b", 8, "2026-02-10T09:00:00Z"),
        ("c", 7, "2026-03-01T09:00:00Z"),
        ("d", 6, "2026-03-02T09:00:00Z"),
        ("e", 9, "2026-03-15T09:00:00Z"),
        ("f", 0, "2026-01-20T09:00:00Z"),
    ):
        await _survey(client, tenant, ids[user], score, at)
    merged = await client.post(
        f"/v1/customers/{ids['e']}/merge", json={"other_id": ids["d"]}, headers=tenant.headers
    )
    assert merged.status_code == 200, merged.text
    erased = await client.delete(f"/v1/customers/{ids['f']}?erase=true", headers=tenant.headers)
    assert erased.status_code == 204, erased.text
    recomputed = await client.post("/v1/insights/recompute", headers=tenant.headers)
    assert recomputed.status_code == 200, recomputed.text
    return ids


async def _get(client: AsyncClient, tenant: Tenant, path: str, **params: Any) -> Any:
    response = await client.get(f"/v1/insights/{path}", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_summary_cohorts_and_nps(client: AsyncClient, tenant: Tenant) -> None:
    await build_shop(client, tenant)
    summary = await _get(client, tenant, "summary", **PERIOD)
    # Counted in the period: A1 1000, A2 3000, A3 2000, B1 5000, B2 4000 − 2000 refunded,
    # C1 1500, D1 1000 (now E's), E1 2000, F1 3000 (erased, anonymous); C2 was cancelled.
    assert summary["revenue"] == {"JPY": 20500}
    assert summary["orders"] == 9
    assert summary["average_order_value"] == {"JPY": 20500 // 9}
    assert summary["customers"] == 6  # A B C E G H: D merged, F erased
    assert summary["active_customers"] == 4  # A B C E
    assert summary["new_customers"] == 4
    assert summary["repeat_rate"] == 3 / 4  # A, B, E of A, B, C, E
    assert summary["purchase_frequency"] == 8 / 4  # F's order has no customer
    assert summary["average_ltv"] == {"JPY": (6000 + 7000 + 1500 + 3000 + 2000) // 5}
    assert summary["average_predicted_ltv"] == {}  # five buyers are too few to fit a model
    # 10, 9 promote; 8, 7 are passive; 6 detracts (D's, now E's); F's answer went with F.
    assert summary["nps_responses"] == 5
    assert summary["nps"] == (2 - 1) / 5 * 100
    assert summary["period"] == {"from": "2026-01-01", "to": "2026-04-01"}

    later = await _get(client, tenant, "summary", **{"from": "2026-02-01", "to": "2026-04-01"})
    assert later["new_customers"] == 2  # C and E
    assert later["revenue"] == {"JPY": 20500 - 1000 - 5000 - 3000}

    nps = await _get(client, tenant, "nps", **PERIOD)
    assert nps["total"] == {
        "responses": 5,
        "promoters": 2,
        "passives": 2,
        "detractors": 1,
        "nps": 20.0,
    }
    assert nps["periods"] == [
        {
            "period": "2026-02",
            "responses": 2,
            "promoters": 1,
            "passives": 1,
            "detractors": 0,
            "nps": 50.0,
        },
        {
            "period": "2026-03",
            "responses": 3,
            "promoters": 1,
            "passives": 1,
            "detractors": 1,
            "nps": 0.0,
        },
    ]

    cohorts = await _get(client, tenant, "cohorts", **PERIOD)
    assert cohorts["granularity"] == "month"
    assert cohorts["cohorts"] == [
        {
            "cohort": "2026-01",  # A and B
            "customers": 2,
            "periods": [
                {
                    "period": 0,
                    "customers": 2,
                    "retention": 1.0,
                    "revenue_per_customer": {"JPY": (1000 + 5000) // 2},
                },
                {
                    "period": 1,
                    "customers": 1,
                    "retention": 0.5,
                    "revenue_per_customer": {"JPY": (6000 + 3000) // 2},
                },
                {
                    "period": 2,
                    "customers": 2,
                    "retention": 1.0,
                    "revenue_per_customer": {"JPY": (9000 + 2000 + 2000) // 2},
                },
            ],
        },
        {
            "cohort": "2026-02",  # C and E (E's first order is E1; D1 came with the merge)
            "customers": 2,
            "periods": [
                {
                    "period": 0,
                    "customers": 2,
                    "retention": 1.0,
                    "revenue_per_customer": {"JPY": (1500 + 2000) // 2},
                },
                {
                    "period": 1,
                    "customers": 1,
                    "retention": 0.5,
                    "revenue_per_customer": {"JPY": (3500 + 1000) // 2},
                },
            ],
        },
    ]
    quarters = await _get(client, tenant, "cohorts", period="quarter", **PERIOD)
    assert [(c["cohort"], c["customers"]) for c in quarters["cohorts"]] == [("2026-Q1", 4)]
    assert quarters["cohorts"][0]["periods"] == [
        {
            "period": 0,
            "customers": 4,
            "retention": 1.0,
            "revenue_per_customer": {"JPY": (6000 + 7000 + 1500 + 3000) // 4},
        }
    ]


async def test_active_and_repeat_customers_whatever_order_the_orders_arrive_in(
    client: AsyncClient, tenant: Tenant
) -> None:
    # X's March order arrives first, then the earlier January one, then one cancelled in
    # between; Y orders twice in February.
    await _order(client, tenant, "u-x", "X2", "2026-03-10T10:00:00Z", {"TEA": 1})
    await _order(client, tenant, "u-x", "X1", "2026-01-10T10:00:00Z", {"TEA": 1})
    await _order(client, tenant, "u-x", "X3", "2026-02-10T10:00:00Z", {"CUP": 1})
    await _event(
        client,
        tenant,
        {
            "event_id": "X3-cancel",
            "type": "order.cancelled",
            "occurred_at": "2026-02-11T10:00:00Z",
            "customer": {"external_id": "u-x", "source": "shop"},
            "order": {"order_id": "X3"},
        },
    )
    await _order(client, tenant, "u-y", "Y1", "2026-02-01T10:00:00Z", {"TEA": 1})
    await _order(client, tenant, "u-y", "Y2", "2026-02-20T10:00:00Z", {"TEA": 1})
    expected = {
        ("2026-01-01", "2026-04-01"): (2, 1.0),  # X: X1, X2; Y: Y1, Y2
        ("2026-02-01", "2026-04-01"): (2, 0.5),  # X: X2 only
        ("2026-01-01", "2026-02-15"): (2, 0.0),  # X: X1; Y: Y1
        ("2026-02-15", "2026-03-01"): (1, 0.0),  # Y: Y2
        ("2026-03-11", "2026-04-01"): (0, None),
    }
    for (start, end), (active, repeat_rate) in expected.items():
        summary = await _get(client, tenant, "summary", **{"from": start, "to": end})
        assert (summary["active_customers"], summary["repeat_rate"]) == (active, repeat_rate)
    everything = await _get(client, tenant, "summary")
    assert (everything["active_customers"], everything["repeat_rate"]) == (2, 1.0)
    assert everything["orders"] == 4


async def test_cohorts_of_the_workspace_come_from_the_worker_with_their_time(
    client: AsyncClient, tenant: Tenant
) -> None:
    await build_shop(client, tenant)
    model = await _get(client, tenant, "model")
    stored = await _get(client, tenant, "cohorts", **PERIOD)
    assert stored["computed_at"] == model["computed_at"]
    # A `to` within a month cannot be read from whole months: counted from the orders, with
    # the same figures (no order of the fixed history is on 31 March).
    live = await _get(client, tenant, "cohorts", **{"from": "2026-01-01", "to": "2026-03-31"})
    assert live["computed_at"] is None
    assert live["cohorts"] == stored["cohorts"]
    for period in ("month", "quarter"):
        live_from = {"from": "2026-01-05", "to": "2026-03-31", "period": period}
        stored_from = {"from": "2026-01-05", "to": "2026-04-01", "period": period}
        live = await _get(client, tenant, "cohorts", **live_from)
        stored = await _get(client, tenant, "cohorts", **stored_from)
        assert (live["computed_at"], stored["computed_at"]) == (None, model["computed_at"])
        assert live["cohorts"] == stored["cohorts"], period

    # An order after the recomputation shows once the worker has counted again.
    await _order(client, tenant, "u-g2", "G1", "2026-03-25T10:00:00Z", {"TEA": 1})
    before = await _get(client, tenant, "cohorts", **PERIOD)
    assert [c["customers"] for c in before["cohorts"]] == [2, 2]
    assert (await client.post("/v1/insights/recompute", headers=tenant.headers)).status_code == 200
    after = await _get(client, tenant, "cohorts", **PERIOD)
    assert after["computed_at"] > before["computed_at"]
    assert [(c["cohort"], c["customers"]) for c in after["cohorts"]] == [
        ("2026-01", 2),
        ("2026-02", 2),
        ("2026-03", 1),
    ]


async def test_rfm_churn_risk_and_ltv(client: AsyncClient, tenant: Tenant) -> None:
    ids = await build_shop(client, tenant)
    # Last orders: C Feb 10 < B Mar 5 < E Mar 10 < A Mar 20 < H: recency 1 2 3 4 5.
    # Orders: C 1 < B = E = H 2 < A 3: frequency 1, 4, 4, 4, 5 (4/5 have at most 2 orders).
    # Spent: C 1500 < H 2000 < E 3000 < A 6000 < B 7000: monetary 1 2 3 4 5.
    expected = {
        "a": (4, 5, 4, "loyal"),
        "b": (2, 4, 5, "at_risk"),
        "c": (1, 1, 1, "hibernating"),
        "e": (3, 4, 3, "loyal"),
        "h": (5, 4, 2, "champions"),
        "g": (None, None, None, None),
    }
    before = (await client.get(f"/v1/customers/{ids['a']}", headers=tenant.headers)).json()
    assert (await client.post("/v1/insights/recompute", headers=tenant.headers)).status_code == 200
    for user, (recency, frequency, monetary, group) in expected.items():
        response = await client.get(f"/v1/customers/{ids[user]}", headers=tenant.headers)
        rfm = response.json()["metrics"]["rfm"]
        assert (rfm["recency"], rfm["frequency"], rfm["monetary"], rfm["group"]) == (
            recency,
            frequency,
            monetary,
            group,
        ), user

    # Scores are derived figures: recomputing changes neither the version nor updated_at.
    after = (await client.get(f"/v1/customers/{ids['a']}", headers=tenant.headers)).json()
    assert (after["version"], after["updated_at"]) == (before["version"], before["updated_at"])
    assert after["metrics"]["insights_computed_at"] > before["metrics"]["insights_computed_at"]

    rfm = await _get(client, tenant, "rfm")
    assert rfm["customers"] == 5
    assert rfm["computed_at"] is not None
    cells = {(c["recency"], c["frequency"]): (c["customers"], c["revenue"]) for c in rfm["grid"]}
    assert len(cells) == 25
    assert {key: value for key, value in cells.items() if value[0]} == {
        (1, 1): (1, {"JPY": 1500}),
        (2, 4): (1, {"JPY": 7000}),
        (3, 4): (1, {"JPY": 3000}),
        (4, 5): (1, {"JPY": 6000}),
        (5, 4): (1, {"JPY": 2000}),
    }
    groups = {g["group"]: (g["customers"], g["revenue"]) for g in rfm["groups"] if g["customers"]}
    assert groups == {
        "champions": (1, {"JPY": 2000}),
        "loyal": (2, {"JPY": 9000}),
        "at_risk": (1, {"JPY": 7000}),
        "hibernating": (1, {"JPY": 1500}),
    }
    assert rfm["monetary"] == [{"score": s, "customers": 1} for s in range(1, 6)]
    # Only customers whose first order is in February: C and E.
    february = await _get(client, tenant, "rfm", **{"from": "2026-02-01", "to": "2026-03-01"})
    assert february["customers"] == 2

    # Average days between orders: A 69/2 = 34.5, B 44, E 37 (Feb 1 to Mar 10), H 30; the
    # nearest-rank median of the four is 34.5, C's interval as a one-time buyer. H ordered 10
    # days ago (under 2 × 30); the others are long past twice their interval.
    churn = await _get(client, tenant, "churn-risk")
    assert churn["one_time_buyer_interval_days"] == 34.5
    assert churn["customers_at_risk"] == 4
    values = {
        "b": 3500 * 365.25 / 44,
        "a": 2000 * 365.25 / 34.5,
        "c": 1500 * 365.25 / 34.5,
        "e": 1500 * 365.25 / 37,
    }
    assert [row["customer_id"] for row in churn["data"]] == [ids[u] for u in ("b", "a", "c", "e")]
    assert [row["value_at_risk"] for row in churn["data"]] == [int(v) for v in values.values()]
    assert [row["usual_interval_days"] for row in churn["data"]] == [44.0, 34.5, 34.5, 37.0]
    assert churn["value_at_risk"] == {"JPY": int(sum(values.values()))}
    search = await client.post(
        "/v1/customers/search",
        json={"filter": {"field": "metrics.churn_risk", "op": "eq", "value": True}},
        headers=tenant.headers,
    )
    assert {c["id"] for c in search.json()["data"]} == {ids[u] for u in "abce"}
    loyal = await client.post(
        "/v1/customers/search",
        json={
            "filter": {
                "all": [
                    {"field": "metrics.rfm.group", "op": "eq", "value": "loyal"},
                    {"field": "metrics.rfm.recency", "op": "gte", "value": 4},
                ]
            }
        },
        headers=tenant.headers,
    )
    assert [c["id"] for c in loyal.json()["data"]] == [ids["a"]]

    ltv = await _get(client, tenant, "ltv")
    # Total spent: 1500, 2000, 3000, 6000, 7000; nearest-rank percentiles.
    assert ltv["historical"] == {
        "JPY": {
            "customers": 5,
            "mean": 3900,
            "p25": 2000,
            "p50": 3000,
            "p75": 6000,
            "p90": 7000,
            "max": 7000,
        }
    }
    assert ltv["predicted_12m"] == {}
    assert ltv["model"]["bgnbd"] is None
    assert ltv["model"]["customers_scored"] == 5


async def test_products_and_recommendations(client: AsyncClient, tenant: Tenant) -> None:
    ids = await build_shop(client, tenant)
    products = await _get(client, tenant, "products", **PERIOD)
    assert products["currency"] == "JPY"
    assert products["orders"] == 9
    by_sku = {p["sku"]: p for p in products["top_products_by_revenue"]}
    # TEA in A1 A2 B1 D1 F1; CUP in A2 A3 B1 (2) E1; BOWL in B2 (one of two kept) and F1.
    assert [p["sku"] for p in products["top_products_by_revenue"]] == [
        "CUP",
        "TEA",
        "BOWL",
        "SNACK",
    ]
    assert by_sku["CUP"] == {
        "sku": "CUP",
        "name": "cup",
        "category": "ware",
        "revenue": {"JPY": 10000},
        "quantity": 5,
        "orders": 4,
        "customers": 3,
    }
    assert by_sku["TEA"]["revenue"] == {"JPY": 5000}
    assert (by_sku["TEA"]["orders"], by_sku["TEA"]["customers"]) == (5, 3)  # F is anonymous
    assert by_sku["BOWL"]["revenue"] == {"JPY": 4000}
    assert by_sku["BOWL"]["quantity"] == 2
    assert [p["sku"] for p in products["top_products_by_customers"]] == [
        "CUP",
        "TEA",
        "BOWL",
        "SNACK",
    ]
    assert [c["category"] for c in products["top_categories_by_revenue"]] == ["ware", "tea", "food"]
    assert products["top_categories_by_revenue"][0]["revenue"] == {"JPY": 14000}
    assert [c["category"] for c in products["top_categories_by_customers"]] == [
        "tea",
        "ware",
        "food",
    ]
    # CUP and TEA together in A2 and B1: support 2/9, lift 2 × 9 / (4 × 5).
    assert products["bought_together"] == [
        {"skus": ["CUP", "TEA"], "orders": 2, "support": 2 / 9, "lift": pytest.approx(0.9)}
    ]

    response = await client.get(f"/v1/customers/{ids['h']}/recommendations", headers=tenant.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["bought"] == ["TEA"]
    assert [(r["sku"], r["orders_together"]) for r in body["data"]] == [("CUP", 2), ("BOWL", 1)]
    merged = await client.get(f"/v1/customers/{ids['d']}/recommendations", headers=tenant.headers)
    assert merged.status_code == 404
    assert merged.json()["merged_into"] == ids["e"]


async def test_insights_are_per_workspace_and_need_their_scope(
    client: AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    await build_shop(client, tenant)
    empty = await _get(client, other_tenant, "summary")
    assert (empty["orders"], empty["revenue"], empty["repeat_rate"]) == (0, {}, None)
    reader = await tenant.headers_with(Scope.CUSTOMERS_READ)
    denied = await client.get("/v1/insights/summary", headers=reader)
    assert denied.status_code == 403
    allowed = await client.get(
        "/v1/insights/rfm", headers=await tenant.headers_with(Scope.INSIGHTS_READ)
    )
    assert allowed.status_code == 200
    backwards = await client.get(
        "/v1/insights/summary",
        params={"from": "2026-02-01", "to": "2026-01-01"},
        headers=tenant.headers,
    )
    assert backwards.status_code == 422
    unknown = await client.get(
        f"/v1/customers/{uuid.uuid4()}/recommendations", headers=tenant.headers
    )
    assert unknown.status_code == 404


async def test_dates_are_days(client: AsyncClient, tenant: Tenant) -> None:
    for value in ("0.0", "1700000000", "2026-1-1", "2026-02-30"):
        response = await client.get(
            "/v1/insights/summary", params={"from": value}, headers=tenant.headers
        )
        assert response.status_code == 422, value
        assert response.json()["errors"][0]["loc"] == ["query", "from"]


async def test_reports_over_a_segment_count_only_its_members(
    client: AsyncClient, tenant: Tenant
) -> None:
    ids = await build_shop(client, tenant)
    segment = await post_created(
        client, tenant, "/v1/segments", {"name": "A と B", "kind": "static"}
    )
    added = await client.post(
        f"/v1/segments/{segment['id']}/members",
        json={"customer_ids": [ids["a"], ids["b"]]},
        headers=tenant.headers,
    )
    assert added.status_code == 200, added.text
    summary = await _get(client, tenant, "summary", segment_id=segment["id"], **PERIOD)
    # A: 1000 + 3000 + 2000; B: 5000 + 4000 − 2000 refunded.
    assert summary["revenue"] == {"JPY": 13000}
    assert summary["orders"] == 5
    assert (summary["customers"], summary["active_customers"]) == (2, 2)
    assert summary["repeat_rate"] == 1.0
    cohorts = await _get(client, tenant, "cohorts", segment_id=segment["id"], **PERIOD)
    assert cohorts["computed_at"] is None  # a segment's cohorts are counted for the request
    assert [(c["cohort"], c["customers"]) for c in cohorts["cohorts"]] == [("2026-01", 2)]
    assert [p["customers"] for p in cohorts["cohorts"][0]["periods"]] == [2, 1, 2]
    nps = await _get(client, tenant, "nps", segment_id=segment["id"], **PERIOD)
    assert (nps["total"]["promoters"], nps["total"]["passives"]) == (1, 1)  # A 10, B 8

    unknown = await client.get(
        "/v1/insights/summary",
        params={"segment_id": "01900000-0000-7000-8000-000000000000"},
        headers=tenant.headers,
    )
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
