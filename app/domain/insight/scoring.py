"""Recomputing a workspace's scores: RFM, churn risk, and the fitted lifetime-value model.

The worker does this on a schedule for every workspace whose scores are older than the refresh
interval (a lease on the `insight_model` row keeps two workers from doing the same one), and
`POST /v1/insights/recompute` does it on demand. RFM and churn risk are single UPDATE
statements; the LTV model reads the per-customer purchase summary (orders, first and last order,
average order value) a page at a time, fits, and writes the predictions back.
"""

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import utcnow
from app.domain.access.entities import Workspace
from app.domain.insight.entities import InsightModel
from app.domain.insight.ltv import WEEKS_PER_YEAR, BgNbd, GammaGamma, fit_bgnbd, fit_gamma_gamma
from app.domain.insight.population import workspace_population
from app.domain.insight.repository import InsightRepository

logger = logging.getLogger("kokyaku.insights")

PAGE = 20_000
# Fitting on an evenly spread sample of this many customers gives the same parameters to a few
# decimals as fitting on millions, in a fraction of the time.
MAX_FIT_CUSTOMERS = 200_000
# Fewer customers than this say too little about the population to fit a model on.
MIN_FIT_CUSTOMERS = 20
LEASE = timedelta(minutes=30)
SECONDS_PER_WEEK = 7 * 86_400
# Cohort figures are kept for monthly and quarterly periods (their lengths in months).
COHORT_PERIODS = (1, 3)


async def recompute(session: AsyncSession, workspace_id: UUID, now: datetime) -> InsightModel:
    """Scores every customer of the workspace and stores the model; in the caller's
    transaction."""
    repository = InsightRepository(session, workspace_population(workspace_id))
    await repository.claim_model(now, now)
    interval = await repository.median_days_between_orders()
    bgnbd, gamma_gamma = await _fit_and_predict(repository, now)
    scored = await repository.score(now, interval)
    await repository.store_cohorts(COHORT_PERIODS)
    model = await repository.model()
    assert model is not None  # claimed above
    model.computed_at = now
    model.claimed_at = None
    model.customers_scored = scored
    model.churn_interval_days = interval
    model.cohorts_computed_at = now
    model.bgnbd = bgnbd
    model.gamma_gamma = gamma_gamma
    await session.flush()
    return model


async def _summaries(repository: InsightRepository) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    after: UUID | None = None
    while page := await repository.purchase_summaries(after, PAGE):
        rows.extend(page)
        after = page[-1][0]
    return rows


def _weeks(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / SECONDS_PER_WEEK


def _sample(count: int) -> np.ndarray[Any, np.dtype[np.int64]]:
    step = max(1, -(-count // MAX_FIT_CUSTOMERS))
    return np.arange(0, count, step, dtype=np.int64)


async def _fit_and_predict(
    repository: InsightRepository, now: datetime
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    rows = await _summaries(repository)
    if len(rows) < MIN_FIT_CUSTOMERS:
        await _store(repository, rows, None, None, {})
        return None, {}
    orders = np.array([row[1] for row in rows], dtype=np.float64)
    repeat = orders - 1
    recency = np.array([_weeks(row[3], row[2]) for row in rows])
    age = np.array([max(_weeks(now, row[2]), 0.0) for row in rows])
    recency = np.minimum(recency, age)
    sample = _sample(len(rows))
    # Fitting is CPU work: off the event loop, so a server keeps answering meanwhile.
    fitted = await asyncio.to_thread(fit_bgnbd, repeat[sample], recency[sample], age[sample])
    bgnbd = {
        "r": fitted.model.r,
        "alpha": fitted.model.alpha,
        "a": fitted.model.a,
        "b": fitted.model.b,
        "customers": len(sample),
        "converged": fitted.converged,
        "time_unit": "week",
    }
    spend_models: dict[str, GammaGamma] = {}
    gamma_gamma: dict[str, Any] = {}
    by_currency: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        if row[4] is not None and row[5] > 0:
            by_currency[row[4]].append(index)
    for currency, indexes in sorted(by_currency.items()):
        if len(indexes) < MIN_FIT_CUSTOMERS:
            continue
        chosen = np.array(indexes, dtype=np.int64)[_sample(len(indexes))]
        spend = np.array([rows[i][5] for i in chosen], dtype=np.float64)
        fit = await asyncio.to_thread(fit_gamma_gamma, orders[chosen], spend)
        if fit.model.q <= 1:  # the mean spend would be infinite: not a usable fit
            continue
        spend_models[currency] = fit.model
        gamma_gamma[currency] = {
            "p": fit.model.p,
            "q": fit.model.q,
            "gamma": fit.model.gamma,
            "customers": len(chosen),
            "converged": fit.converged,
        }
    await _store(repository, rows, fitted.model, (repeat, recency, age, orders), spend_models)
    return bgnbd, gamma_gamma


async def _store(
    repository: InsightRepository,
    rows: Sequence[tuple[Any, ...]],
    model: BgNbd | None,
    arrays: tuple[Any, Any, Any, Any] | None,
    spend_models: dict[str, GammaGamma],
) -> None:
    """Predicted 12-month value = expected orders × expected spend per order (the customer's
    own average where no spend model fits their currency); staged for `score` to write."""
    if model is None or arrays is None:
        await repository.stage_predictions([])
        return
    repeat, recency, age, orders = arrays
    purchases = model.expected_purchases(WEEKS_PER_YEAR, repeat, recency, age)
    alive = model.probability_alive(repeat, recency, age)
    usable = np.isfinite(purchases) & (purchases >= 0) & np.isfinite(alive)
    staged = []
    for index, row in enumerate(rows):
        if not usable[index]:
            continue
        spend_model = spend_models.get(row[4])
        spend = (
            float(spend_model.expected_spend(orders[index], row[5]))
            if spend_model is not None
            else float(row[5])
        )
        staged.append(
            {
                "id": row[0],
                "ltv": round(float(purchases[index]) * spend),
                "alive": round(float(alive[index]), 6),
            }
        )
    await repository.stage_predictions(staged)


async def refresh_stale(
    sessions: async_sessionmaker[AsyncSession],
    max_age: timedelta,
    now: datetime | None = None,
    limit: int = 5,
) -> int:
    """Recomputes, one transaction each, the workspaces whose scores are older than `max_age`
    (at most `limit` per call, the stalest first); returns how many."""
    now = now or utcnow()
    async with sessions() as session:
        stmt = (
            select(Workspace.id)
            .outerjoin(InsightModel, InsightModel.workspace_id == Workspace.id)
            .where(
                (InsightModel.computed_at.is_(None)) | (InsightModel.computed_at < now - max_age),
                (InsightModel.claimed_at.is_(None)) | (InsightModel.claimed_at < now - LEASE),
            )
            .order_by(InsightModel.computed_at.nulls_first(), Workspace.id)
            .limit(limit)
        )
        due = list((await session.execute(stmt)).scalars())
    done = 0
    for workspace_id in due:
        try:
            async with sessions() as session, session.begin():
                repository = InsightRepository(session, workspace_population(workspace_id))
                if not await repository.claim_model(now, now - LEASE):
                    continue
            async with sessions() as session, session.begin():
                await recompute(session, workspace_id, utcnow())
            done += 1
        except Exception:
            logger.exception("insight recomputation failed", extra={"workspace": str(workspace_id)})
    return done


async def keep_fresh(
    sessions: async_sessionmaker[AsyncSession],
    max_age: timedelta,
    stop: asyncio.Event | None = None,
    poll_seconds: float = 60.0,
) -> None:
    """The worker's schedule: every `poll_seconds`, recompute the workspaces gone stale."""
    while stop is None or not stop.is_set():
        try:
            done = await refresh_stale(sessions, max_age)
            if done:
                logger.info("insights recomputed", extra={"workspaces": done})
        except Exception:
            logger.exception("insight refresh failed")
        if stop is None:
            await asyncio.sleep(poll_seconds)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_seconds)
