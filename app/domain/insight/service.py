"""Workspace insights: summary KPIs, cohorts, RFM, NPS, churn risk, LTV and products.

How the figures treat what happened to orders and customers (also in docs/insights.md):
- Revenue is net of refunds (`total − refunded_total`) and belongs to the order's time;
  cancelled and fully refunded orders are not counted at all, as in the customer's metrics.
- A merged customer's orders and surveys belong to the survivor, whose first order (cohort) and
  scores are worked out from all of them.
- An erased customer's orders stay without a customer: they count in revenue, orders and
  products of the workspace, but in no per-customer figure (customers, cohorts, RFM, LTV), and
  their survey answers are gone with them.
"""

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.context import Context
from app.core.errors import ValidationFailed
from app.domain.commerce.entities import OrderLine
from app.domain.customer.entities import Customer
from app.domain.customer.service import CustomerService
from app.domain.insight import schemas
from app.domain.insight.entities import InsightModel
from app.domain.insight.population import Population, members_of, workspace_population
from app.domain.insight.products import ProductRepository
from app.domain.insight.repository import InsightRepository
from app.domain.insight.rfm import GROUPS, RfmGroup
from app.domain.insight.scoring import recompute
from app.domain.segment.entities import SegmentMember
from app.domain.segment.repository import SegmentRepository

MAX_COHORT_PERIODS = 60


def _start_of(day: date | None) -> datetime | None:
    return datetime.combine(day, time(), UTC) if day is not None else None


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _nps(promoters: int, passives: int, detractors: int) -> schemas.NpsFigures:
    responses = promoters + passives + detractors
    return schemas.NpsFigures(
        responses=responses,
        promoters=promoters,
        passives=passives,
        detractors=detractors,
        nps=round((promoters - detractors) * 100 / responses, 1) if responses else None,
    )


def _period_label(number: int, months: int) -> str:
    if months == 1:
        return f"{number // 12:04d}-{number % 12 + 1:02d}"
    return f"{number // 4:04d}-Q{number % 4 + 1}"


def _period_number(moment: datetime, months: int) -> int:
    return moment.year * (12 // months) + (moment.month - 1) // months


class InsightService:
    @classmethod
    async def of(
        cls, session: AsyncSession, context: Context, segment_id: UUID | None
    ) -> "InsightService":
        """Reports over the workspace, or over a segment's members (404 for an unknown one)."""
        if segment_id is None:
            return cls(session, context)
        await SegmentRepository(session, context.workspace_id).require(segment_id)
        members = select(SegmentMember.customer_id).where(
            SegmentMember.workspace_id == context.workspace_id,
            SegmentMember.segment_id == segment_id,
        )
        return cls(session, context, members_of(context.workspace_id, members))

    def __init__(
        self, session: AsyncSession, context: Context, population: Population | None = None
    ) -> None:
        self.session = session
        self.context = context
        self.population = population or workspace_population(context.workspace_id)
        self.repository = InsightRepository(session, self.population)
        self.products_repository = ProductRepository(session, self.population)

    def _report(self, start: date | None, end: date | None) -> dict[str, Any]:
        if start is not None and end is not None and start >= end:
            raise ValidationFailed.at(("query", "to"), "`to` must be after `from`.")
        return {
            "generated_at": utcnow(),
            "period": schemas.Period(from_=start, to=end),
        }

    async def summary(self, start: date | None, end: date | None) -> schemas.Summary:
        report = self._report(start, end)
        since, until = _start_of(start), _start_of(end)
        sums = await self.repository.order_figures(since, until)
        active = sum(row.buyers for row in sums)
        repeat = active - sum(row.one_time_buyers for row in sums)
        customers = await self.repository.customer_figures(since, until)
        values = [row for row in customers if row[0] is not None and row[3]]
        (_, promoters, passives, detractors), *_ = await self.repository.nps_counts(
            since, until, by_month=False
        ) or [(None, 0, 0, 0)]
        nps = _nps(promoters, passives, detractors)
        return schemas.Summary(
            **report,
            customers=sum(row[1] for row in customers),
            active_customers=active,
            new_customers=sum(row[2] for row in customers),
            revenue={row.currency: row.revenue for row in sums},
            orders=sum(row.orders for row in sums),
            orders_by_currency={row.currency: row.orders for row in sums},
            average_order_value={row.currency: row.revenue // row.orders for row in sums},
            repeat_rate=_ratio(repeat, active),
            purchase_frequency=_ratio(sum(row.known_orders for row in sums), active),
            average_ltv={row[0]: row[4] // row[3] for row in values},
            average_predicted_ltv={row[0]: int(row[5]) for row in values if row[5] is not None},
            nps=nps.nps,
            nps_responses=nps.responses,
        )

    async def cohorts(
        self, start: date | None, end: date | None, granularity: schemas.CohortPeriod
    ) -> schemas.Cohorts:
        """Customers by the period of their first order; for each later period, the share who
        ordered in it and the cumulative net revenue per customer of the cohort."""
        now = utcnow()
        if start is None:
            start = (now - timedelta(days=365)).date().replace(day=1)
        report = self._report(start, end)
        months = 3 if granularity is schemas.CohortPeriod.QUARTER else 1
        since, until = _start_of(start), _start_of(end)
        last_moment = min(now, until - timedelta(microseconds=1)) if until else now
        last = _period_number(last_moment, months)
        first = _period_number(since, months) if since is not None else last
        if last - first + 1 > MAX_COHORT_PERIODS:
            raise ValidationFailed.at(
                ("query", "from"), f"At most {MAX_COHORT_PERIODS} periods of cohorts at once."
            )
        computed_at = await self._stored_cohorts_at(end, months)
        if computed_at is not None:
            until_period = _period_number(until, months) if until is not None else None
            sizes = dict(await self.repository.stored_cohort_sizes(start, end, months))
            activity = await self.repository.stored_cohort_activity(
                start, end, months, until_period
            )
        else:
            sizes = dict(await self.repository.cohort_sizes(since, until, months))
            activity = await self.repository.cohort_activity(since, until, months)
        # cohort -> offset -> [customers, {currency: revenue}]
        cells: dict[int, dict[int, tuple[int, dict[str, int]]]] = defaultdict(dict)
        for cohort, offset, currency, customers, revenue in activity:
            count, money = cells[cohort].get(offset, (0, {}))
            # The customers of a cell are counted per currency; a customer paying in two
            # currencies in one period is rare, and counted once by the larger count.
            cells[cohort][offset] = (max(count, customers), {**money, currency: revenue})
        cohorts = []
        for cohort in sorted(sizes):
            size = sizes[cohort]
            cumulative: dict[str, int] = defaultdict(int)
            periods = []
            for offset in range(last - cohort + 1):
                customers, money = cells[cohort].get(offset, (0, {}))
                for currency, revenue in money.items():
                    cumulative[currency] += revenue
                periods.append(
                    schemas.CohortCell(
                        period=offset,
                        customers=customers,
                        retention=customers / size,
                        revenue_per_customer={c: v // size for c, v in sorted(cumulative.items())},
                    )
                )
            cohorts.append(
                schemas.Cohort(
                    cohort=_period_label(cohort, months), customers=size, periods=periods
                )
            )
        return schemas.Cohorts(
            **report, computed_at=computed_at, granularity=granularity, cohorts=cohorts
        )

    async def _stored_cohorts_at(self, end: date | None, months: int) -> datetime | None:
        """When the worker stored the cohort figures this report can be read from, or None when
        it must count the orders itself: for a segment, a `to` within a period (the stored
        figures are per whole period), or before the worker has stored any."""
        if self.population.restricted:
            return None
        if end is not None and (end.day != 1 or (end.month - 1) % months):
            return None
        model = await self._model()
        return model.cohorts_computed_at if model is not None else None

    async def _model(self) -> InsightModel | None:
        return await self.repository.model()

    async def rfm(self, start: date | None, end: date | None) -> schemas.Rfm:
        report = self._report(start, end)
        since, until = _start_of(start), _start_of(end)
        grid: dict[Any, tuple[int, dict[str, int]]] = {}
        groups: dict[Any, tuple[int, dict[str, int]]] = {}
        monetary: dict[int, int] = defaultdict(int)
        for recency, frequency, score, currency, count, spent in await self.repository.rfm_cells(
            since, until
        ):
            monetary[score] += count
            for key, table in (((recency, frequency), grid), (GROUPS[recency, frequency], groups)):
                customers, money = table.get(key, (0, {}))
                if currency is not None:
                    money = {**money, currency: money.get(currency, 0) + spent}
                table[key] = (customers + count, money)
        model = await self._model()
        return schemas.Rfm(
            **report,
            computed_at=model.computed_at if model else None,
            customers=sum(count for count, _ in grid.values()),
            grid=[
                schemas.RfmCell(
                    recency=recency,
                    frequency=frequency,
                    customers=grid.get((recency, frequency), (0, {}))[0],
                    revenue=grid.get((recency, frequency), (0, {}))[1],
                )
                for recency in range(5, 0, -1)
                for frequency in range(5, 0, -1)
            ],
            groups=[
                schemas.RfmGroupFigures(
                    group=group.value,
                    customers=groups.get(group, (0, {}))[0],
                    revenue=groups.get(group, (0, {}))[1],
                )
                for group in RfmGroup
            ],
            monetary=[
                schemas.ScoreCount(score=score, customers=count)
                for score, count in sorted(monetary.items())
            ],
        )

    async def nps(self, start: date | None, end: date | None) -> schemas.Nps:
        report = self._report(start, end)
        since, until = _start_of(start), _start_of(end)
        rows = await self.repository.nps_counts(since, until, by_month=True)
        periods = [
            schemas.NpsPeriod(period=str(month), **_nps(p, n, d).model_dump())
            for month, p, n, d in sorted(rows, key=lambda row: str(row[0]))
        ]
        total = _nps(
            sum(row[1] for row in rows), sum(row[2] for row in rows), sum(row[3] for row in rows)
        )
        return schemas.Nps(**report, total=total, periods=periods)

    async def churn_risk(
        self, start: date | None, end: date | None, limit: int
    ) -> schemas.ChurnRisk:
        """Customers whose time since their last order is more than twice their usual interval
        between orders, ranked by what they spend in a year at that pace."""
        report = self._report(start, end)
        interval = await self.repository.median_days_between_orders()
        rows, totals = await self.repository.churn_risk(
            report["generated_at"], interval, _start_of(start), _start_of(end), limit
        )
        return schemas.ChurnRisk(
            **report,
            one_time_buyer_interval_days=interval,
            customers_at_risk=sum(count for _, count, _ in totals),
            value_at_risk={
                currency: int(value) for currency, _, value in totals if currency is not None
            },
            data=[
                schemas.ChurnRiskCustomer(
                    customer_id=row[0],
                    display_name=row[1],
                    order_count=row[2],
                    last_order_at=row[3],
                    usual_interval_days=round(float(row[4]), 2),
                    days_since_last_order=round(float(row[5]), 2),
                    value_at_risk=int(row[6]),
                    currency=row[7],
                    predicted_ltv=row[9],
                    probability_alive=row[10],
                )
                for row in rows
            ],
        )

    def _parameters(self, model: InsightModel | None) -> schemas.ModelParameters:
        return schemas.ModelParameters(
            computed_at=model.computed_at if model else None,
            customers_scored=model.customers_scored if model else 0,
            churn_interval_days=model.churn_interval_days if model else None,
            bgnbd=model.bgnbd if model else None,
            gamma_gamma=model.gamma_gamma if model else {},
        )

    async def ltv(self, start: date | None, end: date | None, limit: int) -> schemas.Ltv:
        report = self._report(start, end)
        since, until = _start_of(start), _start_of(end)
        historical = await self.repository.distribution(Customer.total_spent, since, until)
        predicted = await self.repository.distribution(Customer.predicted_ltv_12m, since, until)
        return schemas.Ltv(
            **report,
            historical={c: schemas.Distribution(**v) for c, v in historical.items()},
            predicted_12m={c: schemas.Distribution(**v) for c, v in predicted.items()},
            model=self._parameters(await self._model()),
            top_predicted=[
                schemas.LtvCustomer(
                    customer_id=row[0],
                    display_name=row[1],
                    currency=row[2],
                    total_spent=row[3],
                    predicted_ltv=row[4],
                    probability_alive=row[5],
                )
                for row in await self.repository.top_predicted(limit)
            ],
        )

    async def products(self, start: date | None, end: date | None, limit: int) -> schemas.Products:
        report = self._report(start, end)
        since, until = _start_of(start), _start_of(end)
        products = self.products_repository
        currency = await products.main_currency(since, until)
        rankings: dict[str, dict[str, list[str]]] = {}
        for name, key in (("products", OrderLine.sku), ("categories", OrderLine.category)):
            rankings[name] = {
                "revenue": (
                    await products.top_keys(key, since, until, limit, by_revenue_in=currency)
                    if currency
                    else []
                ),
                "customers": await products.top_keys(key, since, until, limit, by_revenue_in=None),
            }
        skus = {sku for ranking in rankings["products"].values() for sku in ranking}
        categories = {c for ranking in rankings["categories"].values() for c in ranking}
        sku_figures = await products.figures(OrderLine.sku, skus, since, until)
        category_figures = await products.figures(OrderLine.category, categories, since, until)
        orders = await products.order_count(since, until)
        pairs = await products.pairs(since, until, min_orders=2, limit=limit)
        with_sku = await products.orders_with(
            {sku for pair in pairs for sku in pair[:2]}, since, until
        )
        return schemas.Products(
            **report,
            currency=currency,
            orders=orders,
            top_products_by_revenue=[
                _product(sku, sku_figures[sku]) for sku in rankings["products"]["revenue"]
            ],
            top_products_by_customers=[
                _product(sku, sku_figures[sku]) for sku in rankings["products"]["customers"]
            ],
            top_categories_by_revenue=[
                _category(c, category_figures[c]) for c in rankings["categories"]["revenue"]
            ],
            top_categories_by_customers=[
                _category(c, category_figures[c]) for c in rankings["categories"]["customers"]
            ],
            bought_together=[
                schemas.ProductPair(
                    skus=[first, second],
                    orders=together,
                    support=together / orders,
                    lift=together * orders / (with_sku[first] * with_sku[second]),
                )
                for first, second, together in pairs
            ],
        )

    async def recommendations(self, customer_id: UUID, limit: int) -> schemas.Recommendations:
        customer = await CustomerService(self.session, self.context).get(customer_id)
        found = await self.products_repository.recommendations(customer.id, limit)
        return schemas.Recommendations(
            customer_id=customer.id,
            generated_at=utcnow(),
            bought=await self.products_repository.bought_by(customer.id),
            data=[
                schemas.Recommendation(sku=sku, name=name, category=category, orders_together=n)
                for sku, name, category, n in found
            ],
        )

    async def recompute(self) -> schemas.ModelParameters:
        model = await recompute(self.session, self.context.workspace_id, utcnow())
        return self._parameters(model)

    async def model(self) -> schemas.ModelParameters:
        return self._parameters(await self._model())


def _product(sku: str, figures: dict[str, Any]) -> schemas.ProductFigures:
    return schemas.ProductFigures(
        sku=sku,
        name=figures["name"],
        category=figures["category"],
        revenue=figures["revenue"],
        quantity=figures["quantity"],
        orders=figures["orders"],
        customers=figures["customers"],
    )


def _category(category: str, figures: dict[str, Any]) -> schemas.CategoryFigures:
    return schemas.CategoryFigures(
        category=category,
        revenue=figures["revenue"],
        quantity=figures["quantity"],
        orders=figures["orders"],
        customers=figures["customers"],
    )
