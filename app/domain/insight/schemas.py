"""What the insight endpoints answer. Money is per currency (`{"JPY": 12345}`, minor units);
ratios are numbers in [0, 1]; NPS is a number in [-100, 100]."""

from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

Money = dict[str, int]


class CohortPeriod(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"


class Period(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date | None = Field(alias="from", description="Inclusive; null: from the start")
    to: date | None = Field(description="Exclusive; null: up to now")


class InsightReport(BaseModel):
    generated_at: datetime
    period: Period


class Summary(InsightReport):
    customers: int = Field(description="Customers in the workspace now (whatever the period)")
    active_customers: int = Field(description="Customers with an order in the period")
    new_customers: int = Field(description="Customers whose first order is in the period")
    revenue: Money = Field(description="Net of refunds; cancelled orders excluded")
    orders: int = Field(description="Orders neither cancelled nor fully refunded, in the period")
    orders_by_currency: dict[str, int]
    average_order_value: Money
    repeat_rate: float | None = Field(
        description="Customers with 2+ orders in the period / customers with 1+"
    )
    purchase_frequency: float | None = Field(
        description="Orders of known customers in the period / active customers"
    )
    average_ltv: Money = Field(description="Average total spent of customers with orders")
    average_predicted_ltv: Money = Field(description="Average predicted 12-month value")
    nps: float | None
    nps_responses: int


class CohortCell(BaseModel):
    period: int = Field(description="Periods since the cohort's first (0)")
    customers: int = Field(description="Customers of the cohort ordering in this period")
    retention: float
    revenue_per_customer: Money = Field(description="Cumulative up to this period")


class Cohort(BaseModel):
    cohort: str = Field(description="2026-01, or 2026-Q1 by quarter")
    customers: int
    periods: list[CohortCell]


class Cohorts(InsightReport):
    computed_at: datetime | None = Field(
        description="When the worker counted the figures (orders since then are not in them); "
        "null when they were counted for this request"
    )
    granularity: CohortPeriod
    cohorts: list[Cohort]


class RfmCell(BaseModel):
    recency: int
    frequency: int
    customers: int
    revenue: Money = Field(description="Total spent of these customers")


class RfmGroupFigures(BaseModel):
    group: str
    customers: int
    revenue: Money


class ScoreCount(BaseModel):
    score: int
    customers: int


class Rfm(InsightReport):
    computed_at: datetime | None = Field(description="When the scores were computed")
    customers: int = Field(description="Customers scored")
    grid: list[RfmCell] = Field(description="All 25 cells, recency-major")
    groups: list[RfmGroupFigures]
    monetary: list[ScoreCount]


class NpsFigures(BaseModel):
    responses: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None = Field(description="(promoters − detractors) / responses × 100")


class NpsPeriod(NpsFigures):
    period: str = Field(description="2026-11")


class Nps(InsightReport):
    total: NpsFigures
    periods: list[NpsPeriod]


class ChurnRiskCustomer(BaseModel):
    customer_id: UUID
    display_name: str
    order_count: int
    last_order_at: datetime
    usual_interval_days: float
    days_since_last_order: float
    value_at_risk: int = Field(description="A year's spend at the usual pace, in `currency`")
    currency: str | None
    predicted_ltv: int | None
    probability_alive: float | None


class ChurnRisk(InsightReport):
    one_time_buyer_interval_days: float | None = Field(
        description="The workspace's median days between orders, used for one-time buyers"
    )
    customers_at_risk: int
    value_at_risk: Money
    data: list[ChurnRiskCustomer] = Field(description="Ranked by value at risk")


class Distribution(BaseModel):
    customers: int
    mean: int
    p25: int
    p50: int
    p75: int
    p90: int
    max: int


class ModelParameters(BaseModel):
    computed_at: datetime | None
    customers_scored: int
    churn_interval_days: float | None
    bgnbd: dict[str, Any] | None = Field(
        description="r, alpha (weeks), a, b of the BG/NBD model; null until fitted"
    )
    gamma_gamma: dict[str, dict[str, Any]] = Field(description="Per currency: p, q, gamma")


class LtvCustomer(BaseModel):
    customer_id: UUID
    display_name: str
    currency: str | None
    total_spent: int
    predicted_ltv: int
    probability_alive: float | None


class Ltv(InsightReport):
    historical: dict[str, Distribution] = Field(description="Per currency, of total spent")
    predicted_12m: dict[str, Distribution]
    model: ModelParameters
    top_predicted: list[LtvCustomer]


class ProductFigures(BaseModel):
    sku: str
    name: str | None
    category: str | None
    revenue: Money
    quantity: int
    orders: int
    customers: int


class CategoryFigures(BaseModel):
    category: str
    revenue: Money
    quantity: int
    orders: int
    customers: int


class ProductPair(BaseModel):
    skus: list[str]
    orders: int = Field(description="Orders with both")
    support: float = Field(description="orders / all orders in the period")
    lift: float = Field(description="support / (share of orders with one × with the other)")


class Products(InsightReport):
    currency: str | None = Field(description="The currency ranked by revenue (most orders)")
    orders: int
    top_products_by_revenue: list[ProductFigures]
    top_products_by_customers: list[ProductFigures]
    top_categories_by_revenue: list[CategoryFigures]
    top_categories_by_customers: list[CategoryFigures]
    bought_together: list[ProductPair]


class Recommendation(BaseModel):
    sku: str
    name: str | None
    category: str | None
    orders_together: int = Field(description="Orders that had it with one of the customer's")


class Recommendations(BaseModel):
    customer_id: UUID
    generated_at: datetime
    bought: list[str]
    data: list[Recommendation]
