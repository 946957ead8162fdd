"""Products and categories by revenue and by customers, and what is bought together.

A line's revenue is unit price × (quantity − refunded quantity): order-level discounts and tax
are not split across lines. Lines of cancelled and fully refunded orders do not count, nor lines
refunded in full.
"""

from collections.abc import Collection
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, and_, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.domain.commerce.entities import Order, OrderLine
from app.domain.insight.population import Population

COUNTED = ("completed", "partially_refunded")
KEPT = OrderLine.quantity - OrderLine.refunded_quantity
LINE_REVENUE = OrderLine.unit_price * KEPT


class ProductRepository:
    def __init__(self, session: AsyncSession, population: Population) -> None:
        self.session = session
        self.population = population
        self.workspace_id = population.workspace_id

    def _lines(self, start: datetime | None, end: datetime | None) -> Select[Any]:
        """Kept lines of counted orders in the period, joined to their orders."""
        conditions = [*self.population.orders(), Order.status.in_(COUNTED), KEPT > 0]
        if start is not None:
            conditions.append(Order.occurred_at >= start)
        if end is not None:
            conditions.append(Order.occurred_at < end)
        return (
            select()
            .select_from(OrderLine)
            .join(
                Order,
                and_(Order.workspace_id == OrderLine.workspace_id, Order.id == OrderLine.order_id),
            )
            .where(*conditions)
        )

    async def main_currency(self, start: datetime | None, end: datetime | None) -> str | None:
        stmt = (
            self._lines(start, end)
            .add_columns(Order.currency, func.count(distinct(Order.id)).label("orders"))
            .group_by(Order.currency)
            .order_by(func.count(distinct(Order.id)).desc(), Order.currency)
            .limit(1)
        )
        row = (await self.session.execute(stmt)).first()
        return row[0] if row else None

    async def order_count(self, start: datetime | None, end: datetime | None) -> int:
        stmt = self._lines(start, end).add_columns(func.count(distinct(OrderLine.order_id)))
        return int((await self.session.execute(stmt)).scalar_one())

    async def top_keys(
        self,
        key: Any,
        start: datetime | None,
        end: datetime | None,
        limit: int,
        *,
        by_revenue_in: str | None,
    ) -> list[str]:
        """The `limit` skus (or categories) with most revenue in a currency, or most customers."""
        stmt = self._lines(start, end).where(key.is_not(None)).add_columns(key).group_by(key)
        measure: Any
        if by_revenue_in is not None:
            measure = func.sum(LINE_REVENUE)
            stmt = stmt.where(Order.currency == by_revenue_in)
        else:
            measure = func.count(distinct(Order.customer_id))
        stmt = stmt.order_by(measure.desc(), key).limit(limit)
        return [row[0] for row in (await self.session.execute(stmt)).all()]

    async def figures(
        self, key: Any, keys: Collection[str], start: datetime | None, end: datetime | None
    ) -> dict[str, dict[str, Any]]:
        """Per sku (or category) of `keys`: name, category, revenue per currency, quantity,
        orders and customers."""
        if not keys:
            return {}
        stmt = (
            self._lines(start, end)
            .where(key.in_(keys))
            .add_columns(
                key,
                Order.currency,
                func.sum(LINE_REVENUE),
                func.sum(KEPT),
                func.max(OrderLine.name),
                func.max(OrderLine.category),
            )
            .group_by(key, Order.currency)
        )
        found: dict[str, dict[str, Any]] = {}
        for name, currency, revenue, quantity, label, category in (
            await self.session.execute(stmt)
        ).all():
            entry = found.setdefault(
                name,
                {"name": label, "category": category, "revenue": {}, "quantity": 0},
            )
            entry["revenue"][currency] = int(revenue)
            entry["quantity"] += int(quantity)
        counts = (
            self._lines(start, end)
            .where(key.in_(keys))
            .add_columns(
                key, func.count(distinct(Order.id)), func.count(distinct(Order.customer_id))
            )
            .group_by(key)
        )
        for name, orders, customers in (await self.session.execute(counts)).all():
            found[name]["orders"] = int(orders)
            found[name]["customers"] = int(customers)
        return found

    async def pairs(
        self, start: datetime | None, end: datetime | None, min_orders: int, limit: int
    ) -> list[tuple[str, str, int]]:
        """(sku, sku, orders with both) for the pairs most often bought in one order."""
        lines = (
            self._lines(start, end)
            .add_columns(OrderLine.order_id, OrderLine.sku)
            .distinct()
            .subquery()
        )
        other = aliased(lines)
        together = func.count()
        stmt = (
            select(lines.c.sku, other.c.sku, together)
            .join(other, and_(other.c.order_id == lines.c.order_id, other.c.sku > lines.c.sku))
            .group_by(lines.c.sku, other.c.sku)
            .having(together >= min_orders)
            .order_by(together.desc(), lines.c.sku, other.c.sku)
            .limit(limit)
        )
        return [(a, b, int(n)) for a, b, n in (await self.session.execute(stmt)).all()]

    async def orders_with(
        self, skus: Collection[str], start: datetime | None, end: datetime | None
    ) -> dict[str, int]:
        if not skus:
            return {}
        stmt = (
            self._lines(start, end)
            .where(OrderLine.sku.in_(skus))
            .add_columns(OrderLine.sku, func.count(distinct(OrderLine.order_id)))
            .group_by(OrderLine.sku)
        )
        return {sku: int(n) for sku, n in (await self.session.execute(stmt)).all()}

    async def recommendations(
        self, customer_id: UUID, limit: int
    ) -> list[tuple[str, str | None, str | None, int]]:
        """(sku, name, category, orders bought with the customer's skus) of skus the customer
        has not bought, most often bought together with theirs first."""
        mine = (
            self._lines(None, None)
            .where(Order.customer_id == customer_id)
            .add_columns(OrderLine.sku)
            .distinct()
        )
        baskets = self._lines(None, None).where(OrderLine.sku.in_(mine)).add_columns(Order.id)
        together = func.count(distinct(OrderLine.order_id))
        stmt = (
            self._lines(None, None)
            .where(Order.id.in_(baskets), OrderLine.sku.not_in(mine))
            .add_columns(
                OrderLine.sku, func.max(OrderLine.name), func.max(OrderLine.category), together
            )
            .group_by(OrderLine.sku)
            .order_by(together.desc(), OrderLine.sku)
            .limit(limit)
        )
        return [(s, n, c, int(k)) for s, n, c, k in (await self.session.execute(stmt)).all()]

    async def bought_by(self, customer_id: UUID) -> list[str]:
        stmt = (
            self._lines(None, None)
            .where(Order.customer_id == customer_id)
            .add_columns(OrderLine.sku)
            .distinct()
            .order_by(OrderLine.sku)
        )
        return [row[0] for row in (await self.session.execute(stmt)).all()]
