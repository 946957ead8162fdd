"""The SQL behind insights: every figure is an aggregate computed by the database."""

import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    MetaData,
    SmallInteger,
    Table,
    Uuid,
    and_,
    case,
    cast,
    delete,
    distinct,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.db.dialect import (
    POSTGRESQL,
    day_of,
    days_between,
    insert_new,
    month_of,
    period_number,
)
from app.domain.commerce.entities import Order
from app.domain.customer.entities import Customer
from app.domain.insight.entities import InsightCohortActivity, InsightCohortSize, InsightModel
from app.domain.insight.population import Population
from app.domain.insight.rfm import GROUPS, QUINTILE_BOUNDS
from app.domain.interaction.entities import Interaction

# Orders that count: neither cancelled nor fully refunded (as in the customer's metrics).
COUNTED = ("completed", "partially_refunded")
NET = Order.total - Order.refunded_total
PROMOTER, DETRACTOR = 9, 6  # NPS: 9–10 promote, 0–6 detract, 7–8 are passive
# Orders closer together than this are one shopping trip, not a habit: a customer's usual
# interval is never taken as shorter.
MIN_INTERVAL_DAYS = 7.0


def _period(column: Any, start: date | None, end: date | None) -> list[Any]:
    conditions = []
    if start is not None:
        conditions.append(column >= start)
    if end is not None:
        conditions.append(column < end)
    return conditions


class PeriodOrders(NamedTuple):
    """A period's counted orders in one currency."""

    currency: str
    orders: int
    revenue: int  # net of refunds
    known_orders: int  # of customers (an erased customer's stay, without one)
    buyers: int  # customers whose first order in the period is one of these
    one_time_buyers: int  # of those, customers with no other order in the period


def cast_table(entity: Any) -> Table:
    table: Table = entity.__table__
    return table


def _affected(result: Any) -> int:
    """Rows an UPDATE changed."""
    return int(result.rowcount or 0)


def _rows(result: Any) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in result.all()]


class InsightRepository:
    def __init__(self, session: AsyncSession, population: Population) -> None:
        self.session = session
        self.population = population
        self.workspace_id = population.workspace_id
        self.dialect = session.bind.dialect.name if session.bind is not None else "sqlite"

    def _counted_orders(self, start: datetime | None, end: datetime | None) -> list[Any]:
        return [
            *self.population.orders(),
            Order.status.in_(COUNTED),
            *_period(Order.occurred_at, start, end),
        ]

    # Summary

    async def customer_figures(
        self, start: datetime | None, end: datetime | None
    ) -> list[tuple[str | None, int, int, int, int, float | None, int]]:
        """Per currency spent in (None: no orders), in one pass over the customers: (currency,
        customers, new customers in the period, customers with orders, their total spent,
        average predicted 12-month value, customers with a prediction)."""
        first = Customer.first_order_at
        new = and_(first.is_not(None), *_period(first, start, end))
        stmt = (
            select(
                Customer.spent_currency,
                func.count(),
                func.coalesce(func.sum(case((new, 1), else_=0)), 0),
                func.coalesce(func.sum(case((Customer.order_count > 0, 1), else_=0)), 0),
                func.coalesce(func.sum(Customer.total_spent), 0),
                func.avg(Customer.predicted_ltv_12m),
                func.count(Customer.predicted_ltv_12m),
            )
            .where(*self.population.customers())
            .group_by(Customer.spent_currency)
        )
        return [
            (c, int(n), int(new), int(b), int(s), float(p) if p is not None else None, int(k))
            for c, n, new, b, s, p, k in _rows(await self.session.execute(stmt))
        ]

    async def order_figures(
        self, start: datetime | None, end: datetime | None
    ) -> list[PeriodOrders]:
        """The period's counted orders by currency. A customer's first and last order in the
        period are told by their stored neighbours, so this one pass over the period's orders
        counts the customers too, without grouping the orders by customer."""
        previous, following = Order.customer_previous_at, Order.customer_next_at
        first = and_(
            Order.customer_id.is_not(None),
            or_(previous.is_(None), previous < start) if start is not None else previous.is_(None),
        )
        last = (
            or_(following.is_(None), following >= end) if end is not None else following.is_(None)
        )
        stmt = (
            select(
                Order.currency,
                func.count(),
                func.sum(NET),
                func.count(Order.customer_id),
                func.sum(case((first, 1), else_=0)),
                func.sum(case((and_(first, last), 1), else_=0)),
            )
            .where(*self._counted_orders(start, end))
            .group_by(Order.currency)
        )
        return [
            PeriodOrders(
                currency, int(orders), int(revenue or 0), int(known), int(buyers), int(once)
            )
            for currency, orders, revenue, known, buyers, once in _rows(
                await self.session.execute(stmt)
            )
        ]

    # NPS

    def _surveys(self, start: datetime | None, end: datetime | None) -> list[Any]:
        return [
            Interaction.workspace_id == self.workspace_id,
            Interaction.type == "survey",
            Interaction.nps_score.is_not(None),
            *_period(Interaction.occurred_at, start, end),
            *self.population.customer_id_in(Interaction.__table__.c.customer_id),
        ]

    async def nps_counts(
        self, start: datetime | None, end: datetime | None, by_month: bool
    ) -> list[tuple[str | None, int, int, int]]:
        """(month or None, promoters, passives, detractors) of survey answers."""
        score = Interaction.nps_score
        key = month_of(Interaction.occurred_at, self.dialect) if by_month else literal(None)
        columns = (
            func.sum(case((score >= PROMOTER, 1), else_=0)),
            func.sum(case((and_(score > DETRACTOR, score < PROMOTER), 1), else_=0)),
            func.sum(case((score <= DETRACTOR, 1), else_=0)),
        )
        if by_month:
            stmt = select(key, *columns).where(*self._surveys(start, end)).group_by(key)
        else:
            stmt = select(literal(None), *columns).where(*self._surveys(start, end))
        return [
            (k, int(p or 0), int(n or 0), int(d or 0))
            for k, p, n, d in (await self.session.execute(stmt)).all()
        ]

    # Cohorts

    async def cohort_sizes(
        self, start: datetime | None, end: datetime | None, months: int
    ) -> list[tuple[int, int]]:
        key = period_number(Customer.first_order_at, self.dialect, months)
        stmt = (
            select(key, func.count())
            .where(
                *self.population.customers(),
                Customer.first_order_at.is_not(None),
                *_period(Customer.first_order_at, start, end),
            )
            .group_by(key)
        )
        return [(int(k), int(n)) for k, n in (await self.session.execute(stmt)).all()]

    async def cohort_activity(
        self, start: datetime | None, end: datetime | None, months: int
    ) -> list[tuple[int, int, str, int, int]]:
        """(cohort, periods since the cohort's, currency, customers ordering, net revenue)."""
        cohort = period_number(Customer.first_order_at, self.dialect, months)
        offset = period_number(Order.occurred_at, self.dialect, months) - cohort
        stmt = (
            select(
                cohort,
                offset,
                Order.currency,
                func.count(distinct(Order.customer_id)),
                func.coalesce(func.sum(NET), 0),
            )
            .join(
                Customer,
                and_(Customer.workspace_id == Order.workspace_id, Customer.id == Order.customer_id),
            )
            .where(
                *self._counted_orders(None, end),
                *self.population.customers(),
                *_period(Customer.first_order_at, start, end),
            )
            .group_by(cohort, offset, Order.currency)
        )
        return [
            (int(c), int(o), cur, int(n), int(s))
            for c, o, cur, n, s in (await self.session.execute(stmt)).all()
        ]

    # Cohorts kept by the worker

    async def store_cohorts(self, periods: Sequence[int]) -> None:
        """Replaces the workspace's stored cohort figures with counts of its orders now, for
        periods of each of these lengths in months."""
        for table in (InsightCohortSize, InsightCohortActivity):
            await self.session.execute(delete(table).where(table.workspace_id == self.workspace_id))
        first_day = day_of(Customer.first_order_at, self.dialect)
        with_orders = [*self.population.customers(), Customer.first_order_at.is_not(None)]
        await self.session.execute(
            insert(InsightCohortSize).from_select(
                ["workspace_id", "first_day", "customers"],
                select(Customer.workspace_id, first_day, func.count())
                .where(*with_orders)
                .group_by(Customer.workspace_id, first_day),
            )
        )
        for months in periods:
            period = period_number(Order.occurred_at, self.dialect, months)
            counts = (
                select(
                    Order.workspace_id,
                    literal(months, SmallInteger),
                    first_day,
                    period,
                    Order.currency,
                    func.count(distinct(Order.customer_id)),
                    func.coalesce(func.sum(NET), 0),
                )
                .join(
                    Customer,
                    and_(
                        Customer.workspace_id == Order.workspace_id,
                        Customer.id == Order.customer_id,
                    ),
                )
                .where(*self._counted_orders(None, None), *with_orders)
                .group_by(Order.workspace_id, first_day, period, Order.currency)
            )
            columns = ["workspace_id", "months", "first_day", "period", "currency"]
            await self.session.execute(
                insert(InsightCohortActivity).from_select(
                    [*columns, "customers", "revenue"], counts
                )
            )

    async def stored_cohort_sizes(
        self, start: date | None, end: date | None, months: int
    ) -> list[tuple[int, int]]:
        size = InsightCohortSize
        key = period_number(size.first_day, self.dialect, months)
        stmt = (
            select(key, func.sum(size.customers))
            .where(size.workspace_id == self.workspace_id, *_period(size.first_day, start, end))
            .group_by(key)
        )
        return [(int(k), int(n)) for k, n in (await self.session.execute(stmt)).all()]

    async def stored_cohort_activity(
        self, start: date | None, end: date | None, months: int, before_period: int | None
    ) -> list[tuple[int, int, str, int, int]]:
        """As `cohort_activity`, from the stored figures: orders before `before_period`."""
        activity = InsightCohortActivity
        cohort = period_number(activity.first_day, self.dialect, months)
        conditions = [
            activity.workspace_id == self.workspace_id,
            activity.months == months,
            *_period(activity.first_day, start, end),
        ]
        if before_period is not None:
            conditions.append(activity.period < before_period)
        stmt = (
            select(
                cohort,
                activity.period - cohort,
                activity.currency,
                func.sum(activity.customers),
                func.sum(activity.revenue),
            )
            .where(*conditions)
            .group_by(cohort, activity.period - cohort, activity.currency)
        )
        return [
            (int(c), int(o), cur, int(n), int(s))
            for c, o, cur, n, s in (await self.session.execute(stmt)).all()
        ]

    # RFM

    def _scored(self, start: datetime | None, end: datetime | None) -> list[Any]:
        return [
            *self.population.customers(),
            Customer.rfm_recency.is_not(None),
            *_period(Customer.first_order_at, start, end),
        ]

    async def rfm_cells(
        self, start: datetime | None, end: datetime | None
    ) -> list[tuple[int, int, int, str | None, int, int]]:
        """(recency, frequency, monetary, currency, customers, total spent) from the stored
        scores, in one pass over the covering index."""
        stmt = (
            select(
                Customer.rfm_recency,
                Customer.rfm_frequency,
                Customer.rfm_monetary,
                Customer.spent_currency,
                func.count(),
                func.coalesce(func.sum(Customer.total_spent), 0),
            )
            .where(*self._scored(start, end))
            .group_by(
                Customer.rfm_recency,
                Customer.rfm_frequency,
                Customer.rfm_monetary,
                Customer.spent_currency,
            )
        )
        return [
            (int(r), int(f), int(m), c, int(n), int(s))
            for r, f, m, c, n, s in _rows(await self.session.execute(stmt))
        ]

    # Scoring (the worker)

    async def stage_predictions(self, rows: Sequence[dict[str, Any]]) -> None:
        """Holds predictions (`id`, `ltv`, `alive`) in a temporary table until `score` writes
        them with the other scores: one new row version per customer, not one per figure."""
        await self.session.execute(text(f"DROP TABLE IF EXISTS {PREDICTION.name}"))
        await self.session.run_sync(lambda sync: PREDICTION.create(sync.connection()))
        for start in range(0, len(rows), PREDICTION_CHUNK):
            await self.session.execute(insert(PREDICTION), rows[start : start + PREDICTION_CHUNK])

    async def score(self, now: datetime, one_time_interval: float | None) -> int:
        """Stores every customer's RFM scores and group, churn flag and the staged predictions
        in one statement; returns how many customers with orders were scored. Customers without
        orders are cleared."""
        shares = (
            select(
                Customer.workspace_id.label("workspace_id"),
                Customer.id.label("id"),
                func.cume_dist().over(order_by=Customer.last_order_at).label("r"),
                func.cume_dist().over(order_by=Customer.order_count).label("f"),
                func.cume_dist()
                .over(partition_by=Customer.spent_currency, order_by=Customer.total_spent)
                .label("m"),
            )
            .where(Customer.workspace_id == self.workspace_id, Customer.order_count > 0)
            .subquery()
        )
        scores = (
            select(
                shares.c.workspace_id,
                shares.c.id,
                _quintile(shares.c.r).label("r"),
                _quintile(shares.c.f).label("f"),
                _quintile(shares.c.m).label("m"),
                PREDICTION.c.ltv,
                PREDICTION.c.alive,
            )
            .outerjoin(PREDICTION, PREDICTION.c.id == shares.c.id)
            .subquery()
        )
        group = case(
            {r * 10 + f: group.value for (r, f), group in GROUPS.items()},
            value=scores.c.r * 10 + scores.c.f,
        )
        stmt = (
            update(Customer)
            .where(Customer.workspace_id == scores.c.workspace_id, Customer.id == scores.c.id)
            .values(
                rfm_recency=scores.c.r,
                rfm_frequency=scores.c.f,
                rfm_monetary=scores.c.m,
                rfm_group=group,
                churn_risk=case((self._at_risk(now, one_time_interval), True), else_=False),
                predicted_ltv_12m=scores.c.ltv,
                probability_alive=scores.c.alive,
                insights_computed_at=now,
                # Derived figures, not a change of the record: lists by updated_at stay put.
                updated_at=Customer.updated_at,
            )
            .execution_options(synchronize_session=False)
        )
        scored = _affected(await self.session.execute(stmt))
        await self.session.execute(text(f"DROP TABLE IF EXISTS {PREDICTION.name}"))
        await self.session.execute(
            update(Customer)
            .where(
                Customer.workspace_id == self.workspace_id,
                Customer.order_count == 0,
                or_(Customer.rfm_recency.is_not(None), Customer.predicted_ltv_12m.is_not(None)),
            )
            .values(
                rfm_recency=None,
                rfm_frequency=None,
                rfm_monetary=None,
                rfm_group=None,
                churn_risk=None,
                predicted_ltv_12m=None,
                probability_alive=None,
                insights_computed_at=now,
                updated_at=Customer.updated_at,
            )
            .execution_options(synchronize_session=False)
        )
        return scored

    # Churn risk

    async def median_days_between_orders(self) -> float | None:
        """The nearest-rank median of repeat buyers' average days between orders."""
        days = Customer.average_days_between_orders
        conditions = [*self.population.customers(), Customer.order_count >= 2, days.is_not(None)]
        if self.dialect == POSTGRESQL:
            stmt = select(func.percentile_disc(0.5).within_group(days)).where(*conditions)
            value = (await self.session.execute(stmt)).scalar_one()
            return float(value) if value is not None else None
        count = int(
            (await self.session.execute(select(func.count()).where(*conditions))).scalar_one()
        )
        if not count:
            return None
        rank = (count + 1) // 2  # nearest rank: ceil(0.5 × n)
        stmt = select(days).where(*conditions).order_by(days).offset(rank - 1).limit(1)
        found: Any = (await self.session.execute(stmt)).scalar_one()
        return float(found)

    def usual_interval(self, one_time_interval: float | None) -> ColumnElement[Any]:
        """A customer's usual days between orders: their own average, or for one-time buyers
        the workspace's median; at least MIN_INTERVAL_DAYS."""
        fallback = (
            literal(max(one_time_interval, MIN_INTERVAL_DAYS), Float)
            if one_time_interval is not None
            else None
        )
        own = Customer.average_days_between_orders
        return case(
            (and_(Customer.order_count >= 2, own >= MIN_INTERVAL_DAYS), own),
            (Customer.order_count >= 2, literal(MIN_INTERVAL_DAYS, Float)),
            else_=fallback,
        )

    def days_since_last_order(self, now: datetime) -> ColumnElement[float]:
        moment = literal(now, Customer.last_order_at.type)
        return days_between(Customer.last_order_at, moment, self.dialect)

    def _at_risk(self, now: datetime, one_time_interval: float | None) -> ColumnElement[bool]:
        return and_(
            Customer.order_count > 0,
            self.days_since_last_order(now) > 2 * self.usual_interval(one_time_interval),
        )

    def _value_at_risk(self, one_time_interval: float | None) -> ColumnElement[Any]:
        """What the customer spends in a year at their usual pace: AOV × 365.25 / interval."""
        return cast(
            Customer.average_order_value * 365.25 / self.usual_interval(one_time_interval),
            Float,
        )

    async def churn_risk(
        self,
        now: datetime,
        one_time_interval: float | None,
        start: datetime | None,
        end: datetime | None,
        limit: int,
    ) -> tuple[list[tuple[Any, ...]], list[tuple[str, int, float]]]:
        """The customers at risk ranked by value at risk, and (currency, count, value) totals."""
        conditions = [
            *self.population.customers(),
            self._at_risk(now, one_time_interval),
            *_period(Customer.first_order_at, start, end),
        ]
        value = self._value_at_risk(one_time_interval)
        stmt = (
            select(
                Customer.id,
                Customer.display_name,
                Customer.order_count,
                Customer.last_order_at,
                self.usual_interval(one_time_interval),
                self.days_since_last_order(now),
                value,
                Customer.spent_currency,
                Customer.average_order_value,
                Customer.predicted_ltv_12m,
                Customer.probability_alive,
            )
            .where(*conditions)
            .order_by(value.desc(), Customer.id)
            .limit(limit)
        )
        totals = (
            select(Customer.spent_currency, func.count(), func.coalesce(func.sum(value), 0.0))
            .where(*conditions)
            .group_by(Customer.spent_currency)
        )
        return (
            _rows(await self.session.execute(stmt)),
            [(c, int(n), float(v)) for c, n, v in (await self.session.execute(totals)).all()],
        )

    # LTV

    async def distribution(
        self, column: Any, start: datetime | None, end: datetime | None
    ) -> dict[str, dict[str, Any]]:
        """Per currency: count, mean and nearest-rank percentiles of `column` over customers."""
        conditions = [
            *self.population.customers(),
            Customer.order_count > 0,
            column.is_not(None),
            Customer.spent_currency.is_not(None),
            *_period(Customer.first_order_at, start, end),
        ]
        stmt = (
            select(Customer.spent_currency, func.count(), func.avg(column), func.max(column))
            .where(*conditions)
            .group_by(Customer.spent_currency)
        )
        found: dict[str, dict[str, Any]] = {}
        for currency, count, mean, top in (await self.session.execute(stmt)).all():
            found[currency] = {
                "customers": int(count),
                "mean": int(float(mean)),
                "max": int(top),
            }
            for name, fraction in PERCENTILES:
                found[currency][name] = await self._percentile(
                    column, fraction, int(count), [*conditions, Customer.spent_currency == currency]
                )
        return found

    async def _percentile(
        self, column: Any, fraction: float, count: int, conditions: Sequence[Any]
    ) -> int:
        if self.dialect == POSTGRESQL:
            stmt = select(func.percentile_disc(fraction).within_group(column)).where(*conditions)
            return int((await self.session.execute(stmt)).scalar_one())
        rank = max(1, math.ceil(round(fraction * count, 9)))  # nearest rank
        stmt = select(column).where(*conditions).order_by(column).offset(rank - 1).limit(1)
        return int((await self.session.execute(stmt)).scalar_one())

    async def top_predicted(self, limit: int) -> list[tuple[Any, ...]]:
        stmt = (
            select(
                Customer.id,
                Customer.display_name,
                Customer.spent_currency,
                Customer.total_spent,
                Customer.predicted_ltv_12m,
                Customer.probability_alive,
            )
            .where(*self.population.customers(), Customer.predicted_ltv_12m.is_not(None))
            .order_by(Customer.predicted_ltv_12m.desc(), Customer.id)
            .limit(limit)
        )
        return _rows(await self.session.execute(stmt))

    async def purchase_summaries(
        self, after: UUID | None, limit: int
    ) -> list[tuple[UUID, int, datetime, datetime, str | None, int]]:
        """(id, orders, first, last, currency, average order value) of customers with orders,
        a page at a time in id order: what the LTV model is fitted on."""
        stmt = select(
            Customer.id,
            Customer.order_count,
            Customer.first_order_at,
            Customer.last_order_at,
            Customer.spent_currency,
            Customer.average_order_value,
        ).where(Customer.workspace_id == self.workspace_id, Customer.order_count > 0)
        if after is not None:
            stmt = stmt.where(Customer.id > after)
        rows = await self.session.execute(stmt.order_by(Customer.id).limit(limit))
        return [tuple(row) for row in rows.all()]  # type: ignore[misc]

    # The model row

    async def model(self) -> InsightModel | None:
        return await self.session.get(InsightModel, self.workspace_id)

    async def claim_model(self, now: datetime, stale_before: datetime) -> bool:
        """Takes the workspace's recomputation lease unless another worker holds a fresh one."""
        await self.session.execute(
            insert_new(InsightModel, self.dialect).values(
                workspace_id=self.workspace_id, customers_scored=0, gamma_gamma={}
            )
        )
        stmt = (
            update(InsightModel)
            .where(
                InsightModel.workspace_id == self.workspace_id,
                or_(InsightModel.claimed_at.is_(None), InsightModel.claimed_at < stale_before),
            )
            .values(claimed_at=now)
        )
        return bool(_affected(await self.session.execute(stmt)))


# Predictions of one recomputation, in the transaction's own temporary table.
PREDICTION = Table(
    "insight_prediction",
    MetaData(),
    Column("id", Uuid, primary_key=True),
    Column("ltv", BigInteger),
    Column("alive", Float),
    prefixes=["TEMPORARY"],
)
PREDICTION_CHUNK = 10_000
PERCENTILES = (("p25", 0.25), ("p50", 0.5), ("p75", 0.75), ("p90", 0.9))


def _quintile(share: Any) -> ColumnElement[int]:
    low, second, third, fourth = QUINTILE_BOUNDS
    return case(
        (share <= low, 1), (share <= second, 2), (share <= third, 3), (share <= fourth, 4), else_=5
    )
