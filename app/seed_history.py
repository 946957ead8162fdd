"""A year of a Japanese tea shop's history for `kokyaku seed --orders`: orders, refunds,
cancellations and satisfaction surveys of the seeded customers, so that insights show figures
worth looking at in a demo.

Customers behave as the BG/NBD model assumes real ones do: each buys at a rate of their own
(Gamma across customers) until, after some purchase, they quietly stop (Beta across customers);
baskets follow product affinities (matcha with a whisk, sencha with cups and sweets), so "bought
together" finds pairs. The generator is pure and deterministic; `seed_orders` writes its events
through the ingest service, as a shop would post them.
"""

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.context import Context
from app.domain.commerce.service import IngestService
from app.domain.interaction.schemas import InteractionCreate
from app.domain.interaction.service import InteractionService
from app.seed import SHOP_SOURCE, shop_user_id

HISTORY_DAYS = 365
BATCH = 1000


class Product(NamedTuple):
    sku: str
    name: str
    category: str
    price: int
    weight: int  # how often it starts a basket
    companions: tuple[str, ...]  # what is often bought with it


CATALOGUE: tuple[Product, ...] = (
    Product("TEA-SENCHA", "煎茶 深蒸し 100g", "tea", 1200, 30, ("WARE-YUNOMI", "SWEET-YOKAN")),
    Product("TEA-GYOKURO", "玉露 50g", "tea", 2800, 8, ("SWEET-MONAKA",)),
    Product("TEA-HOJICHA", "ほうじ茶 200g", "tea", 900, 20, ("SWEET-DAIFUKU",)),
    Product("TEA-GENMAI", "玄米茶 200g", "tea", 800, 12, ()),
    Product("TEA-MATCHA", "抹茶 30g", "tea", 3200, 10, ("WARE-CHASEN", "SWEET-YOKAN")),
    Product("WARE-KYUSU", "常滑焼 急須", "teaware", 4800, 3, ("TEA-SENCHA",)),
    Product("WARE-YUNOMI", "湯呑み", "teaware", 1800, 4, ()),
    Product("WARE-CHASEN", "茶筅", "teaware", 2400, 2, ("TEA-MATCHA",)),
    Product("SWEET-YOKAN", "羊羹", "sweets", 1500, 6, ()),
    Product("SWEET-MONAKA", "最中 6個入", "sweets", 1100, 4, ()),
    Product("SWEET-DAIFUKU", "豆大福 4個入", "sweets", 900, 5, ()),
    Product("GIFT-SET", "季節の詰め合わせ", "gift", 5400, 3, ("SWEET-YOKAN",)),
)
_BY_SKU = {product.sku: product for product in CATALOGUE}
_CHANNELS = (("online", 70), ("store", 25), ("phone", 5))
# Purchase rates (per day) are Gamma(shape, scale) across customers, with a mean of one order in
# about 45 days; dropout after each purchase is Beta(a, b), about one in five.
RATE_SHAPE, RATE_SCALE = 1.2, 1 / 54
DROPOUT_A, DROPOUT_B = 1.0, 4.0
BUYER_SHARE = 0.7  # the others never order: leads and prospects
REFUND_SHARE, CANCEL_SHARE, SURVEY_SHARE = 0.03, 0.02, 0.25


@dataclass(frozen=True, slots=True)
class HistorySummary:
    orders: int = 0
    refunds: int = 0
    cancellations: int = 0
    surveys: int = 0


def _basket(rng: random.Random) -> list[dict[str, Any]]:
    first = rng.choices(CATALOGUE, weights=[p.weight for p in CATALOGUE])[0]
    chosen = [first]
    for companion in first.companions:
        if rng.random() < 0.35:
            chosen.append(_BY_SKU[companion])
    if rng.random() < 0.15:
        extra = rng.choice(CATALOGUE)
        if extra not in chosen:
            chosen.append(extra)
    return [
        {
            "sku": product.sku,
            "name": product.name,
            "category": product.category,
            "quantity": 1 if rng.random() < 0.8 else 2,
            "unit_price": product.price,
        }
        for product in chosen
    ]


def _order_event(
    rng: random.Random, number: int, sequence: int, at: datetime, shop: str
) -> dict[str, Any]:
    lines = _basket(rng)
    subtotal = sum(line["quantity"] * line["unit_price"] for line in lines)
    tax = subtotal * 8 // 100  # food and drink: the reduced rate
    channel = rng.choices([c for c, _ in _CHANNELS], weights=[w for _, w in _CHANNELS])[0]
    return {
        "event_id": f"{shop}-order-{number}-{sequence}",
        "type": "order.completed",
        "occurred_at": at.isoformat(),
        "customer": {"external_id": shop_user_id(number), "source": SHOP_SOURCE},
        "order": {
            "order_id": f"{shop}-{number}-{sequence}",
            "currency": "JPY",
            "channel": channel,
            "store_id": "shibuya" if channel == "store" else None,
            "lines": lines,
            "discount": 0,
            "tax": tax,
            "total": subtotal + tax,
        },
    }


def shop_history(
    rng: random.Random, numbers: Sequence[int], now: datetime, *, shop: str = "demo"
) -> Iterator[dict[str, Any]]:
    """Order, refund and cancellation events of the customers `numbers` over the last year, in
    time order per customer."""
    start = now - timedelta(days=HISTORY_DAYS)
    for number in numbers:
        if rng.random() >= BUYER_SHARE:
            continue
        rate = rng.gammavariate(RATE_SHAPE, RATE_SCALE)
        dropout = rng.betavariate(DROPOUT_A, DROPOUT_B)
        moment = start + timedelta(days=rng.uniform(0, HISTORY_DAYS))
        sequence = 0
        while moment < now:
            event = _order_event(rng, number, sequence, moment, shop)
            yield event
            order = event["order"]
            roll = rng.random()
            if roll < CANCEL_SHARE:
                yield _follow_up(event, "order.cancelled", moment + timedelta(hours=5), now)
            elif roll < CANCEL_SHARE + REFUND_SHARE:
                line = order["lines"][0]
                refund = _follow_up(event, "order.refunded", moment + timedelta(days=4), now)
                refund["order"]["lines"] = [{"sku": line["sku"], "quantity": 1}]
                yield refund
            sequence += 1
            if sequence > 1 and rng.random() < dropout:
                break
            moment += timedelta(days=rng.expovariate(rate))


def _follow_up(
    order_event: dict[str, Any], kind: str, at: datetime, now: datetime
) -> dict[str, Any]:
    return {
        "event_id": f"{order_event['event_id']}-{kind.split('.')[1]}",
        "type": kind,
        "occurred_at": min(at, now).isoformat(),
        "customer": order_event["customer"],
        "order": {"order_id": order_event["order"]["order_id"]},
    }


def _survey_score(rng: random.Random, orders: int) -> int:
    """Repeat buyers are happier, on the whole."""
    base = 6 + min(orders, 4) * 0.8
    return max(0, min(10, round(rng.gauss(base, 2.0))))


async def seed_orders(
    session: AsyncSession,
    context: Context,
    *,
    customers: int,
    seed: int = 0,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> HistorySummary:
    """Posts a year of history for seeded customers 1 .. `customers` (see `app.seed`), and
    satisfaction surveys after some of their orders."""
    now = now or utcnow()
    rng = random.Random(f"kokyaku-seed/{seed}/history")  # noqa: S311 - demo data
    events = shop_history(rng, range(1, customers + 1), now)
    ingest = IngestService(session, context)
    interactions = InteractionService(session, context)
    summary = HistorySummary()
    orders_of: dict[str, int] = {}
    while batch := list(islice(events, BATCH)):
        results = await ingest.ingest(batch, batch=True)
        surveys = 0
        for event, result in zip(batch, results, strict=True):
            customer_id = result.customer_id
            if event["type"] != "order.completed" or customer_id is None:
                continue
            user = event["customer"]["external_id"]
            orders_of[user] = orders_of.get(user, 0) + 1
            if rng.random() < SURVEY_SHARE:
                answered = datetime.fromisoformat(event["occurred_at"]) + timedelta(days=3)
                if answered < now:
                    await interactions.create(
                        InteractionCreate.model_validate(
                            {
                                "type": "survey",
                                "customer_id": str(customer_id),
                                "subject": "ご購入後アンケート",
                                "occurred_at": answered.isoformat(),
                                "nps_score": _survey_score(rng, orders_of[user]),
                            }
                        )
                    )
                    surveys += 1
        await session.flush()
        kinds = [event["type"] for event in batch]
        summary = HistorySummary(
            summary.orders + kinds.count("order.completed"),
            summary.refunds + kinds.count("order.refunded"),
            summary.cancellations + kinds.count("order.cancelled"),
            summary.surveys + surveys,
        )
        if progress is not None:
            progress(len(batch))
    return summary
