"""Which segment filters the periodic sweep must recompute: those that can drift."""

from typing import Any

import pytest

from app.domain.segment.membership import drifts

RECENT_ORDER = {"field": "occurred_at", "op": "within_last", "value": "30d"}


@pytest.mark.parametrize(
    "raw_filter",
    [
        {"field": "metrics.last_order_at", "op": "within_last", "value": "7d"},
        {"field": "birthday", "op": "not_within_last", "value": "1m"},
        {"field": "orders", "op": "has_none", "where": RECENT_ORDER},
        {"all": [{"field": "tags", "op": "contains", "value": "vip"}, {"not": RECENT_ORDER}]},
        {"any": [{"field": "metrics.rfm.group", "op": "eq", "value": "champions"}]},
        {"field": "metrics.churn_risk", "op": "eq", "value": True},
        {"field": "metrics.predicted_ltv", "op": "gt", "value": 10_000},
        {"field": "company.employee_count", "op": "gt", "value": 100},
        {"field": "attributes.plan", "op": "eq", "value": "gold"},
        {"field": "segments", "op": "contains", "value": "0190a4a0-0000-7000-8000-000000000000"},
    ],
)
def test_relative_periods_and_values_kept_elsewhere_drift(raw_filter: dict[str, Any]) -> None:
    assert drifts(raw_filter)


@pytest.mark.parametrize(
    "raw_filter",
    [
        {"field": "metrics.total_spent", "op": "gt", "value": 50_000},
        {"field": "tags", "op": "contains", "value": "vip"},
        {"field": "orders", "op": "count_gte", "value": 2},
        {
            "field": "orders",
            "op": "has",
            "where": {"field": "lines.category", "op": "eq", "value": "靴"},
        },
        {
            "all": [
                {"field": "metrics.order_count", "op": "gte", "value": 5},
                {"not": {"field": "lifecycle_stage", "op": "eq", "value": "lead"}},
            ]
        },
        {"field": "metrics.last_order_at", "op": "gte", "value": "2026-01-01T00:00:00Z"},
    ],
)
def test_filters_followed_change_by_change_do_not_drift(raw_filter: dict[str, Any]) -> None:
    assert not drifts(raw_filter)
