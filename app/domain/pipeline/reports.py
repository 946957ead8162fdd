"""What a pipeline says: the board, the weighted forecast and the funnel.

Figures are plain arithmetic that a sales manager can check by hand: weighted amounts are
amount × probability ÷ 100 summed per group (rounded down once per group), percentiles are
nearest-rank.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.context import Context
from app.db.dialect import month_of
from app.db.pagination import PageRequest
from app.domain.pipeline import schemas
from app.domain.pipeline.entities import Deal, Stage
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


def _start_of(day: date | None) -> datetime | None:
    return datetime.combine(day, time(), UTC) if day is not None else None


class PipelineReports:
    def __init__(self, session: AsyncSession, context: Context) -> None:
        self.dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
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
        and won amounts (by close date), grouped by month, owner or stage — summed by the
        database."""
        await self._stages(pipeline_id)
        dialect = self.dialect
        open_key = {
            ForecastGrouping.MONTH: month_of(Deal.expected_close_date, dialect),
            ForecastGrouping.OWNER: Deal.owner_id,
            ForecastGrouping.STAGE: Deal.stage_id,
        }[grouping]
        won_key = {
            ForecastGrouping.MONTH: month_of(Deal.closed_at, dialect),
            ForecastGrouping.OWNER: Deal.owner_id,
            ForecastGrouping.STAGE: Deal.stage_id,
        }[grouping]
        # currency -> key -> [open, amount × probability, won]
        sums: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
        for currency, key, amount, weighted in await self.deals.open_sums(
            pipeline_id, open_key, start, end
        ):
            entry = sums[currency][_label(grouping, key)]
            entry[0] += int(amount or 0)
            entry[1] += int(weighted or 0)
        for currency, key, amount in await self.deals.won_sums(
            pipeline_id, won_key, _start_of(start), _start_of(end)
        ):
            sums[currency][_label(grouping, key)][2] += int(amount or 0)
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
        spent in each stage, and the win rate of those that closed — aggregated by the
        database."""
        stages = await self._stages(pipeline_id)
        since, until = _start_of(start), _start_of(end)
        funnel_stages = [stage for stage in stages if stage.kind != schemas.StageKind.LOST]
        # Moving to a lost stage reaches nothing: a lost deal reached what it passed before.
        positions = {stage.id: stage.position for stage in funnel_stages}
        furthest = await self.deals.furthest_positions(pipeline_id, positions, since, until)
        durations = await self.deals.stage_durations(pipeline_id, since, until, self.dialect)
        statuses = await self.deals.statuses(pipeline_id, since, until)
        reached = [
            sum(count for position, count in furthest if position >= stage.position)
            for stage in funnel_stages
        ]
        rows: list[dict[str, Any]] = []
        for index, stage in enumerate(funnel_stages):
            following = reached[index + 1] if index + 1 < len(reached) else None
            median, p90 = durations.get(stage.id, (None, None))
            rows.append(
                {
                    "stage": schemas.Stage.model_validate(stage),
                    "reached": reached[index],
                    "conversion_to_next": (
                        following / reached[index]
                        if following is not None and reached[index]
                        else None
                    ),
                    "median_seconds_in_stage": median,
                    "p90_seconds_in_stage": p90,
                }
            )
        won, lost = statuses.get("won", 0), statuses.get("lost", 0)
        return {
            "deals": sum(statuses.values()),
            "stages": rows,
            "won": won,
            "lost": lost,
            "win_rate": won / (won + lost) if won + lost else None,
        }


def _label(grouping: ForecastGrouping, key: Any) -> str:
    if key is None:
        return UNSCHEDULED if grouping is ForecastGrouping.MONTH else UNASSIGNED
    return str(key)
