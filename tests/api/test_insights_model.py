"""The fitted lifetime-value model end to end: predictions stored on customers equal the
published formulas applied to the customer's own figures with the workspace's fitted parameters;
the worker's schedule recomputes stale workspaces."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient

from app.db.session import Database
from app.domain.insight.ltv import WEEKS_PER_YEAR, BgNbd, GammaGamma
from app.domain.insight.scoring import refresh_stale
from tests.conftest import Tenant

START = datetime(2025, 12, 1, tzinfo=UTC)


def _events(customers: int) -> list[dict[str, Any]]:
    """Customer n orders 1 + n % 5 times, every 7 + 3 × (n % 7) days, for 500 + 40 × (n % 9)
    yen, starting n days after START."""
    events = []
    for n in range(customers):
        for k in range(1 + n % 5):
            occurred = START + timedelta(days=n + k * (7 + 3 * (n % 7)))
            events.append(
                {
                    "event_id": f"m-{n}-{k}",
                    "type": "order.completed",
                    "occurred_at": occurred.isoformat(),
                    "customer": {"external_id": f"m-{n}", "source": "shop"},
                    "order": {
                        "order_id": f"m-{n}-{k}",
                        "currency": "JPY",
                        "lines": [{"sku": "TEA", "quantity": 1, "unit_price": 500 + 40 * (n % 9)}],
                        "total": 500 + 40 * (n % 9) + 10 * k,
                    },
                }
            )
    return events


def _weeks(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / (7 * 86_400)


async def test_predictions_follow_the_fitted_models(client: AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/v1/events/batch", json={"items": _events(60)}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    recomputed = await client.post("/v1/insights/recompute", headers=tenant.headers)
    assert recomputed.status_code == 200, recomputed.text
    model = recomputed.json()
    assert model["customers_scored"] == 60
    assert model["bgnbd"]["customers"] == 60
    bgnbd = BgNbd(*(model["bgnbd"][name] for name in ("r", "alpha", "a", "b")))
    spend = GammaGamma(*(model["gamma_gamma"]["JPY"][name] for name in ("p", "q", "gamma")))

    page = await client.post(
        "/v1/customers/search",
        json={"filter": {"field": "metrics.predicted_ltv", "op": "is_set"}, "limit": 200},
        headers=tenant.headers,
    )
    customers = page.json()["data"]
    assert len(customers) == 60
    for customer in customers[:10]:
        metrics = customer["metrics"]
        now = datetime.fromisoformat(metrics["insights_computed_at"])
        first = datetime.fromisoformat(metrics["first_order_at"])
        last = datetime.fromisoformat(metrics["last_order_at"])
        x, t_x, age = metrics["order_count"] - 1, _weeks(last, first), _weeks(now, first)
        purchases = bgnbd.expected_purchases(WEEKS_PER_YEAR, [x], [t_x], [age])[0]
        value = spend.expected_spend([metrics["order_count"]], [metrics["average_order_value"]])
        assert metrics["predicted_ltv"] == pytest.approx(purchases * value[0], abs=1)
        alive = bgnbd.probability_alive([x], [t_x], [age])[0]
        assert metrics["probability_alive"] == pytest.approx(alive, abs=1e-6)
        assert 0 < metrics["probability_alive"] <= 1

    ltv = await client.get("/v1/insights/ltv", headers=tenant.headers)
    predicted = ltv.json()["predicted_12m"]["JPY"]
    assert predicted["customers"] == 60
    assert predicted["p25"] <= predicted["p50"] <= predicted["p75"] <= predicted["max"]
    top = ltv.json()["top_predicted"]
    assert [row["predicted_ltv"] for row in top] == sorted(
        (row["predicted_ltv"] for row in top), reverse=True
    )
    summary = await client.get("/v1/insights/summary", headers=tenant.headers)
    assert summary.json()["average_predicted_ltv"]["JPY"] == int(
        sum(c["metrics"]["predicted_ltv"] for c in customers) / 60
    )


async def test_the_schedule_recomputes_stale_workspaces(
    client: AsyncClient, tenant: Tenant, database: Database
) -> None:
    response = await client.post(
        "/v1/events/batch", json={"items": _events(3)}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    before = await client.get("/v1/insights/model", headers=tenant.headers)
    assert before.json()["computed_at"] is None
    while await refresh_stale(database.writer, timedelta(hours=1), limit=50):
        model = (await client.get("/v1/insights/model", headers=tenant.headers)).json()
        if model["computed_at"] is not None:
            break
    model = (await client.get("/v1/insights/model", headers=tenant.headers)).json()
    assert model["customers_scored"] == 3
    # Fresh now: another round leaves the workspace alone.
    assert await refresh_stale(database.writer, timedelta(hours=1), limit=10_000) >= 0
    again = (await client.get("/v1/insights/model", headers=tenant.headers)).json()
    assert again["computed_at"] == model["computed_at"]
