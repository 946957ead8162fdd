"""Metrics from figures per customer, currency and channel equal those from figures per
currency and counts per channel, as two separate aggregates would give them."""

import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from app.domain.commerce.metrics import _by_currency_and_by_channel, compute_metrics


def test_one_aggregate_gives_the_figures_of_two() -> None:
    rng = random.Random(7)
    customers = [uuid.uuid4() for _ in range(40)]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    orders = [
        (
            rng.choice(customers),
            rng.choice(["JPY", "JPY", "USD", "EUR"]),
            rng.choice(["online", "store", "phone"]),
            rng.randrange(0, 50_000),
            start + timedelta(minutes=rng.randrange(500_000)),
        )
        for _ in range(400)
    ]
    by_currency: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    by_channel: dict[tuple[Any, ...], int] = defaultdict(int)
    by_all: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for customer, currency, channel, net, moment in orders:
        by_currency[(customer, currency)].append((net, moment))
        by_channel[(customer, channel)] += 1
        by_all[(customer, currency, channel)].append((net, moment))

    def figures(groups: dict[tuple[Any, ...], list[Any]]) -> list[tuple[Any, ...]]:
        return [
            (
                *key,
                len(rows),
                sum(net for net, _ in rows),
                min(m for _, m in rows),
                max(m for _, m in rows),
            )
            for key, rows in groups.items()
        ]

    separate = compute_metrics(
        customers,
        figures(by_currency),
        [(*key, count) for key, count in by_channel.items()],
        [],
    )
    combined_figures, combined_channels = _by_currency_and_by_channel(figures(by_all))
    assert compute_metrics(customers, combined_figures, combined_channels, []) == separate
    assert sorted(combined_figures) == sorted(figures(by_currency))
