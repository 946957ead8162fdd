"""What the worker computed for a workspace: when, the fitted model's parameters, and the
cohort figures (too heavy to count from every order on each request)."""

from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Date, Float, ForeignKey, Integer, SmallInteger, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.db.types import JsonDocument, UtcDateTime


class InsightModel(Base):
    """One row per workspace. `claimed_at` is a lease: the worker that set it recomputes, the
    others skip the workspace until the lease runs out."""

    __tablename__ = "insight_model"

    workspace_id: Mapped[UUID] = mapped_column(
        Uuid, ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    computed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    customers_scored: Mapped[int] = mapped_column(Integer, default=0)
    churn_interval_days: Mapped[float | None] = mapped_column(Float)
    # {"r", "alpha", "a", "b", "customers", "converged"} in weeks, or null when not fitted.
    bgnbd: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    # currency -> {"p", "q", "gamma", "customers"}
    gamma_gamma: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    # When the cohort tables below were last filled (null: never, cohorts are counted live).
    cohorts_computed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class InsightCohortSize(Base):
    """Customers by the UTC day of their first order, as of the model's `computed_at`. Days,
    not months, so that a cohort report from any day adds up whole rows."""

    __tablename__ = "insight_cohort_size"

    workspace_id: Mapped[UUID] = mapped_column(
        Uuid, ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    first_day: Mapped[date] = mapped_column(Date, primary_key=True)
    customers: Mapped[int] = mapped_column(Integer)


class InsightCohortActivity(Base):
    """Of the customers whose first order was on `first_day`: how many ordered in a period (a
    running period number of `months`-long periods, as `period_number` counts them) and their
    net revenue in it, per currency; as of the model's `computed_at`."""

    __tablename__ = "insight_cohort_activity"

    workspace_id: Mapped[UUID] = mapped_column(
        Uuid, ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    months: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    first_day: Mapped[date] = mapped_column(Date, primary_key=True)
    period: Mapped[int] = mapped_column(Integer, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    customers: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[int] = mapped_column(BigInteger)
