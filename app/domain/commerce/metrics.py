"""Per-customer purchase metrics, always derived from the customer's orders.

Recomputing the affected customers from their orders in the same transaction (instead of adding
deltas) makes the figures independent of the order in which events arrive, and makes a full
rebuild the same computation.
"""

from collections import defaultdict
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.commerce.entities import Order
from app.domain.commerce.repository import COUNTED_STATUSES, MetricsRepository
from app.domain.customer.entities import Customer

SECONDS_PER_DAY = 86_400
REBUILD_CHUNK = 1000


def _favourite(counts: dict[str, int]) -> str | None:
    """The most frequent value; ties go to the alphabetically first, so results are stable."""
    if not counts:
        return None
    return min(counts, key=lambda value: (-counts[value], value))


def compute_metrics(
    customer_ids: Iterable[UUID],
    figures: Iterable[tuple[UUID, str, int, int, datetime, datetime]],
    channels: Iterable[tuple[UUID, str, int]],
    categories: Iterable[tuple[UUID, str, int]],
) -> list[dict[str, Any]]:
    """Rows of metrics columns for each customer (zeros for one without counted orders).

    `total_spent` and the average order value are in the currency the customer ordered in most;
    the order count and the first and last order cover every currency.
    """
    by_customer: dict[UUID, list[tuple[str, int, int, datetime, datetime]]] = defaultdict(list)
    for customer_id, currency, count, spent, earliest, latest in figures:
        by_customer[customer_id].append((currency, count, int(spent or 0), earliest, latest))
    channel_counts: dict[UUID, dict[str, int]] = defaultdict(dict)
    for customer_id, channel, count in channels:
        channel_counts[customer_id][channel] = count
    category_counts: dict[UUID, dict[str, int]] = defaultdict(dict)
    for customer_id, category, quantity in categories:
        if quantity:
            category_counts[customer_id][category] = int(quantity)
    rows = []
    for customer_id in customer_ids:
        currencies = by_customer.get(customer_id, [])
        count = sum(row[1] for row in currencies)
        main = min(currencies, key=lambda row: (-row[1], row[0])) if currencies else None
        first: datetime | None = min((row[3] for row in currencies), default=None)
        last: datetime | None = max((row[4] for row in currencies), default=None)
        spent = main[2] if main else 0
        main_count = main[1] if main else 0
        days_between = (
            round((last - first).total_seconds() / SECONDS_PER_DAY / (count - 1), 1)
            if first is not None and last is not None and count > 1
            else None
        )
        rows.append(
            {
                "id": customer_id,
                "order_count": count,
                "total_spent": spent,
                "spent_currency": main[0] if main else None,
                "first_order_at": first,
                "last_order_at": last,
                "average_order_value": spent // main_count if main_count else 0,
                "average_days_between_orders": days_between,
                "favourite_category": _favourite(category_counts.get(customer_id, {})),
                "favourite_channel": _favourite(channel_counts.get(customer_id, {})),
            }
        )
    return rows


def _by_currency_and_by_channel(
    rows: Iterable[tuple[UUID, str, str, int, int, datetime, datetime]],
) -> tuple[list[tuple[UUID, str, int, int, datetime, datetime]], list[tuple[UUID, str, int]]]:
    """Figures per customer and currency, and order counts per customer and channel, added up
    from the figures per customer, currency and channel."""
    figures: dict[tuple[UUID, str], tuple[int, int, datetime, datetime]] = {}
    channels: dict[tuple[UUID, str], int] = defaultdict(int)
    for customer_id, currency, channel, count, spent, earliest, latest in rows:
        channels[(customer_id, channel)] += count
        known = figures.get((customer_id, currency))
        if known is None:
            figures[(customer_id, currency)] = (count, int(spent or 0), earliest, latest)
        else:
            figures[(customer_id, currency)] = (
                known[0] + count,
                known[1] + int(spent or 0),
                min(known[2], earliest),
                max(known[3], latest),
            )
    return (
        [(customer_id, currency, *values) for (customer_id, currency), values in figures.items()],
        [(customer_id, channel, count) for (customer_id, channel), count in channels.items()],
    )


def metrics_of_orders(
    customer_ids: Collection[UUID], orders: Iterable[Order]
) -> list[dict[str, Any]]:
    """What `refresh_metrics` would store for these customers if `orders` were all they have:
    the figures of customers created in this unit of work, whose orders are all in hand, so
    that they are inserted with them instead of updated right after."""
    counted = [
        order
        for order in orders
        if order.customer_id in customer_ids and order.status in COUNTED_STATUSES
    ]
    figures, channels = _by_currency_and_by_channel(
        (
            order.customer_id,
            order.currency,
            order.channel,
            1,
            order.total - order.refunded_total,
            order.occurred_at,
            order.occurred_at,
        )
        for order in counted
        if order.customer_id is not None
    )
    categories: dict[tuple[UUID, str], int] = defaultdict(int)
    for order in counted:
        for line in order.lines:
            if order.customer_id is not None and line.get("category") is not None:
                quantity = line["quantity"] - line.get("refunded_quantity", 0)
                categories[(order.customer_id, line["category"])] += quantity
    return compute_metrics(
        customer_ids,
        figures,
        channels,
        [
            (customer_id, category, quantity)
            for (customer_id, category), quantity in categories.items()
        ],
    )


async def refresh_metrics(
    session: AsyncSession, workspace_id: UUID, customer_ids: Collection[UUID]
) -> None:
    """Recomputes and stores the metrics of these customers, in a few queries.

    The customers are locked first: a concurrent order of the same customer commits before this
    reads the orders, so the figures include it.
    """
    if not customer_ids:
        return
    repository = MetricsRepository(session, workspace_id)
    await repository.lock(customer_ids)
    figures, channels = _by_currency_and_by_channel(await repository.order_figures(customer_ids))
    rows = compute_metrics(
        customer_ids, figures, channels, await repository.category_quantities(customer_ids)
    )
    await repository.store(rows)
    await repository.store_neighbours(customer_ids)


async def rebuild_metrics(session: AsyncSession, workspace_id: UUID) -> int:
    """Recomputes every customer of the workspace, a chunk at a time; returns how many."""
    after: UUID | None = None
    total = 0
    while True:
        stmt = select(Customer.id).where(Customer.workspace_id == workspace_id)
        if after is not None:
            stmt = stmt.where(Customer.id > after)
        ids = list(
            (await session.execute(stmt.order_by(Customer.id).limit(REBUILD_CHUNK))).scalars()
        )
        if not ids:
            return total
        await refresh_metrics(session, workspace_id, ids)
        total += len(ids)
        after = ids[-1]
