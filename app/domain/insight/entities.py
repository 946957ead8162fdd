"""What the worker computed for a workspace: when, and the fitted model's parameters."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Float, ForeignKey, Integer, Uuid
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
