"""What a pipeline says: the board, the weighted forecast and the funnel.

Figures are plain arithmetic that a sales manager can check by hand: weighted amounts are
amount × probability ÷ 100 summed per group (rounded down once per group), percentiles are
nearest-rank.
"""

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.context import Context
from app.db.pagination import PageRequest
from app.domain.pipeline import schemas
from app.domain.pipeline.entities import Stage
from app.domain.pipeline.repository import DealRepository, PipelineRepository, StageRepository
from app.domain.pipeline.service import DealQuery, DealService

UNSCHEDULED = "unscheduled"
UNASSIGNED = "unassigned"


class ForecastGrouping(StrEnum):
    MONTH = "month"
    OWNER = "owner"
    STAGE = "stage"


@dataclass(frozen=True, slots=True)
class BoardColumn:
    stage: schemas.Stage
    count: int
    total_amount: dict[str, int]
    weighted_amount: dict[str, int]
    deals: list[schemas.Deal]
    next_cursor: str | None


def percentile(values: Sequence[int], share: float) -> int | None:
    """Nearest-rank percentile: the smallest value with at least `share` of values at or below."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)), 1) - 1]


def _start_of(day: date | None) -> datetime | None:
    return datetime.combine(day, time(), UTC) if day is not None else None


class PipelineReports:
    def __init__(self, session: AsyncSession, context: Context) -> None:
        self.pipelines = PipelineRepository(session, context.workspace_id)
        self.stages = StageRepository(session, context.workspace_id)
        self.deals = DealRepository(session, context.workspace_id)
        self.deal_service = DealService(session, context)

    async def _stages(self, pipeline_id: UUID) -> list[Stage]:
        await self.pipelines.require(pipeline_id)
        return (await self.stages.of_pipelines([pipeline_id]))[pipeline_id]

    async def board(self, pipeline_id: UUID, per_stage: int) -> list[BoardColumn]:
        """Every stage with its count, totals and first page of deals: one call, one kanban."""
        stages = await self._stages(pipeline_id)
        counts: dict[UUID, int] = defaultdict(int)
        totals: dict[UUID, dict[str, int]] = defaultdict(dict)
        for stage_id, currency, count, amount in await self.deals.stage_totals(pipeline_id):
            counts[stage_id] += count
            totals[stage_id][currency] = int(amount or 0)
        columns = []
        for stage in stages:
            page = await self.deal_service.page(
                PageRequest(limit=per_stage, sort="created_at"),
                DealQuery(pipeline_id=pipeline_id, stage_id=stage.id),
            )
            columns.append(
                BoardColumn(
                    stage=schemas.Stage.model_validate(stage),
                    count=counts[stage.id],
                    total_amount=totals[stage.id],
                    weighted_amount={
                        currency: amount * stage.probability // 100
                        for currency, amount in totals[stage.id].items()
                    },
                    deals=list(page.items),
                    next_cursor=page.next_cursor,
                )
            )
        return columns

    async def forecast(
        self,
        pipeline_id: UUID,
        start: date | None,
        end: date | None,
        grouping: ForecastGrouping,
    ) -> list[dict[str, Any]]:
        """Per currency: open amounts weighted by stage probability (by expected close date)
        and won amounts (by close date), grouped by month, owner or stage."""
        probability = {stage.id: stage.probability for stage in await self._stages(pipeline_id)}
        start_at, end_at = _start_of(start), _start_of(end)
        # currency -> key -> [open, amount × probability, won]
        sums: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
        rows = await self.deals.forecast_rows(pipeline_id)
        for stage_id, currency, amount, status, expected, owner_id, closed_at in rows:
            if status == schemas.StageKind.OPEN:
                if expected is not None and (
                    (start is not None and expected < start)
                    or (end is not None and expected >= end)
                ):
                    continue
                key = _key(
                    grouping,
                    expected.strftime("%Y-%m") if expected else UNSCHEDULED,
                    owner_id,
                    stage_id,
                )
                entry = sums[currency][key]
                entry[0] += amount
                entry[1] += amount * probability.get(stage_id, 0)
            elif status == schemas.StageKind.WON and closed_at is not None:
                if (start_at is not None and closed_at < start_at) or (
                    end_at is not None and closed_at >= end_at
                ):
                    continue
                key = _key(grouping, closed_at.strftime("%Y-%m"), owner_id, stage_id)
                sums[currency][key][2] += amount
        forecasts = []
        for currency in sorted(sums):
            groups: list[dict[str, Any]] = [
                {
                    "key": key,
                    "open_amount": values[0],
                    "weighted_amount": values[1] // 100,
                    "won_amount": values[2],
                }
                for key, values in sorted(sums[currency].items())
            ]
            total = {
                name: sum(int(group[name]) for group in groups)
                for name in ("open_amount", "weighted_amount", "won_amount")
            }
            forecasts.append({"currency": currency, "groups": groups, "total": total})
        return forecasts

    async def funnel(
        self, pipeline_id: UUID, start: date | None, end: date | None
    ) -> dict[str, Any]:
        """For the deals created in the period: how many reached each stage (passing a stage by
        skipping it counts, moving back does not undo it), conversion to the next stage, time
        spent in each stage, and the win rate of those that closed."""
        stages = await self._stages(pipeline_id)
        position = {stage.id: stage.position for stage in stages}
        kind = {stage.id: stage.kind for stage in stages}
        moves = await self.deals.cohort_history(pipeline_id, _start_of(start), _start_of(end))
        furthest: dict[UUID, int] = {}
        current: dict[UUID, UUID] = {}
        durations: dict[UUID, list[int]] = defaultdict(list)
        for deal_id, from_stage, to_stage, seconds in moves:
            if kind.get(to_stage) != schemas.StageKind.LOST and to_stage in position:
                furthest[deal_id] = max(furthest.get(deal_id, 0), position[to_stage])
            else:
                furthest.setdefault(deal_id, 0)
            current[deal_id] = to_stage
            if from_stage is not None and seconds is not None:
                durations[from_stage].append(seconds)
        funnel_stages = [stage for stage in stages if stage.kind != schemas.StageKind.LOST]
        reached = [
            sum(1 for value in furthest.values() if value >= stage.position)
            for stage in funnel_stages
        ]
        rows: list[dict[str, Any]] = []
        for index, stage in enumerate(funnel_stages):
            following = reached[index + 1] if index + 1 < len(reached) else None
            rows.append(
                {
                    "stage": schemas.Stage.model_validate(stage),
                    "reached": reached[index],
                    "conversion_to_next": (
                        following / reached[index]
                        if following is not None and reached[index]
                        else None
                    ),
                    "median_seconds_in_stage": percentile(durations[stage.id], 0.5),
                    "p90_seconds_in_stage": percentile(durations[stage.id], 0.9),
                }
            )
        won = sum(1 for stage_id in current.values() if kind.get(stage_id) == "won")
        lost = sum(1 for stage_id in current.values() if kind.get(stage_id) == "lost")
        return {
            "deals": len(current),
            "stages": rows,
            "won": won,
            "lost": lost,
            "win_rate": won / (won + lost) if won + lost else None,
        }


def _key(grouping: ForecastGrouping, month: str, owner_id: UUID | None, stage_id: UUID) -> str:
    if grouping is ForecastGrouping.MONTH:
        return month
    if grouping is ForecastGrouping.OWNER:
        return str(owner_id) if owner_id else UNASSIGNED
    return str(stage_id)
