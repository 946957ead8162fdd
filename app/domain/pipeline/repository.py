"""Queries for pipelines, stages, deals, deal contacts and stage history."""

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Any, ClassVar
from uuid import UUID

from sqlalchemy import ColumnElement, case, delete, func, insert, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute

from app.db.dialect import POSTGRESQL
from app.db.repository import WorkspaceRepository
from app.domain.pipeline.entities import Deal, DealContact, DealStageChange, Pipeline, Stage


class PipelineRepository(WorkspaceRepository[Pipeline]):
    entity = Pipeline
    noun = "pipeline"
    sortable: ClassVar[Mapping[str, InstrumentedAttribute[Any]]] = {"name": Pipeline.name}

    async def by_name(self, name: str) -> Pipeline | None:
        stmt = self.select().where(Pipeline.name == name)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def first(self) -> Pipeline | None:
        stmt = self.select().order_by(Pipeline.created_at, Pipeline.id).limit(1)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def lock(self, pipeline_id: UUID) -> Pipeline:
        """The pipeline, locked until the transaction ends: stage order changes one at a time."""
        stmt = self.select().where(Pipeline.id == pipeline_id).with_for_update()
        pipeline = (await self.session.execute(stmt)).scalar_one_or_none()
        if pipeline is None:
            return await self.require(pipeline_id)
        return pipeline


class StageRepository(WorkspaceRepository[Stage]):
    entity = Stage
    noun = "stage"

    async def of_pipelines(self, pipeline_ids: Collection[UUID]) -> dict[UUID, list[Stage]]:
        if not pipeline_ids:
            return {}
        stmt = (
            self.select()
            .where(Stage.pipeline_id.in_(pipeline_ids))
            .order_by(Stage.pipeline_id, Stage.position)
        )
        stages: dict[UUID, list[Stage]] = {pipeline_id: [] for pipeline_id in pipeline_ids}
        for stage in (await self.session.execute(stmt)).scalars():
            stages[stage.pipeline_id].append(stage)
        return stages


class DealRepository(WorkspaceRepository[Deal]):
    entity = Deal
    noun = "deal"
    sortable: ClassVar[Mapping[str, InstrumentedAttribute[Any]]] = {
        "updated_at": Deal.updated_at,
        "stage_changed_at": Deal.stage_changed_at,
        "amount": Deal.amount,
        "name": Deal.name,
    }

    async def contacts(self, deal_ids: Collection[UUID]) -> dict[UUID, list[DealContact]]:
        if not deal_ids:
            return {}
        stmt = (
            select(DealContact)
            .where(DealContact.workspace_id == self.workspace_id, DealContact.deal_id.in_(deal_ids))
            .order_by(DealContact.deal_id, DealContact.customer_id)
        )
        found: dict[UUID, list[DealContact]] = {deal_id: [] for deal_id in deal_ids}
        for contact in (await self.session.execute(stmt)).scalars():
            found[contact.deal_id].append(contact)
        return found

    async def set_contacts(
        self, deal_id: UUID, contacts: Sequence[tuple[UUID, str | None]]
    ) -> None:
        await self.session.execute(
            delete(DealContact).where(
                DealContact.workspace_id == self.workspace_id, DealContact.deal_id == deal_id
            )
        )
        if contacts:
            await self.session.execute(
                insert(DealContact),
                [
                    {
                        "workspace_id": self.workspace_id,
                        "deal_id": deal_id,
                        "customer_id": customer_id,
                        "role": role,
                    }
                    for customer_id, role in contacts
                ],
            )

    async def count_in_stage(self, stage_id: UUID) -> int:
        stmt = select(func.count()).where(
            Deal.workspace_id == self.workspace_id, Deal.stage_id == stage_id
        )
        return int(await self.session.scalar(stmt) or 0)

    async def in_stage(self, stage_id: UUID) -> list[Deal]:
        stmt = self.select().where(Deal.stage_id == stage_id)
        return list((await self.session.execute(stmt)).scalars())

    async def stage_totals(self, pipeline_id: UUID) -> list[tuple[UUID, str, int, int]]:
        """(stage, currency, deals, amount) for every stage of the pipeline."""
        stmt = (
            select(Deal.stage_id, Deal.currency, func.count(), func.sum(Deal.amount))
            .where(Deal.workspace_id == self.workspace_id, Deal.pipeline_id == pipeline_id)
            .group_by(Deal.stage_id, Deal.currency)
        )
        return [tuple(row) for row in (await self.session.execute(stmt)).all()]  # type: ignore[misc]

    async def open_sums(
        self, pipeline_id: UUID, group: Any, start: date | None, end: date | None
    ) -> list[tuple[str, Any, int, int]]:
        """(currency, group key, amount, amount × probability) of open deals by expected close
        date within [start, end) (deals without one are kept)."""
        conditions = [
            Deal.workspace_id == self.workspace_id,
            Deal.pipeline_id == pipeline_id,
            Deal.status == "open",
        ]
        if start is not None:
            conditions.append(
                or_(Deal.expected_close_date.is_(None), Deal.expected_close_date >= start)
            )
        if end is not None:
            conditions.append(
                or_(Deal.expected_close_date.is_(None), Deal.expected_close_date < end)
            )
        stmt = (
            select(
                Deal.currency,
                group,
                func.sum(Deal.amount),
                func.sum(Deal.amount * Stage.probability),
            )
            .join(Stage, (Stage.workspace_id == Deal.workspace_id) & (Stage.id == Deal.stage_id))
            .where(*conditions)
            .group_by(Deal.currency, group)
        )
        return [tuple(row) for row in (await self.session.execute(stmt)).all()]

    async def won_sums(
        self, pipeline_id: UUID, group: Any, start: datetime | None, end: datetime | None
    ) -> list[tuple[str, Any, int]]:
        """(currency, group key, amount) of deals won within [start, end)."""
        conditions = [
            Deal.workspace_id == self.workspace_id,
            Deal.pipeline_id == pipeline_id,
            Deal.status == "won",
        ]
        if start is not None:
            conditions.append(Deal.closed_at >= start)
        if end is not None:
            conditions.append(Deal.closed_at < end)
        stmt = (
            select(Deal.currency, group, func.sum(Deal.amount))
            .where(*conditions)
            .group_by(Deal.currency, group)
        )
        return [tuple(row) for row in (await self.session.execute(stmt)).all()]

    def _created_in(
        self, pipeline_id: UUID, start: datetime | None, end: datetime | None
    ) -> list[ColumnElement[bool]]:
        """The deals of the pipeline created within [start, end)."""
        conditions = [Deal.workspace_id == self.workspace_id, Deal.pipeline_id == pipeline_id]
        if start is not None:
            conditions.append(Deal.created_at >= start)
        if end is not None:
            conditions.append(Deal.created_at < end)
        return conditions

    def _moves_of_deals_created_in(
        self, pipeline_id: UUID, start: datetime | None, end: datetime | None
    ) -> list[ColumnElement[bool]]:
        """The stage history of the deals of the pipeline created within [start, end). A move
        carries its deal's pipeline (deals never change pipelines), so without a period no deal
        needs reading."""
        conditions = [
            DealStageChange.workspace_id == self.workspace_id,
            DealStageChange.pipeline_id == pipeline_id,
        ]
        if start is not None or end is not None:
            cohort = select(Deal.id).where(*self._created_in(pipeline_id, start, end))
            conditions.append(DealStageChange.deal_id.in_(cohort))
        return conditions

    async def furthest_positions(
        self,
        pipeline_id: UUID,
        positions: Mapping[UUID, int],
        start: datetime | None,
        end: datetime | None,
    ) -> list[tuple[int, int]]:
        """(furthest position reached, deals) over the moves of the deals created in the period,
        a stage counting as the position `positions` gives it; moves into stages it does not
        name (lost or deleted ones) count for nothing."""
        if not positions:
            return []
        reached = case(dict(positions), value=DealStageChange.to_stage_id)
        per_deal = (
            select(func.max(reached).label("furthest"))
            .where(*self._moves_of_deals_created_in(pipeline_id, start, end))
            .group_by(DealStageChange.deal_id)
            .subquery()
        )
        stmt = (
            select(per_deal.c.furthest, func.count())
            .where(per_deal.c.furthest.is_not(None))
            .group_by(per_deal.c.furthest)
        )
        return [(int(f), int(n)) for f, n in (await self.session.execute(stmt)).all()]

    async def statuses(
        self, pipeline_id: UUID, start: datetime | None, end: datetime | None
    ) -> dict[str, int]:
        stmt = (
            select(Deal.status, func.count())
            .where(*self._created_in(pipeline_id, start, end))
            .group_by(Deal.status)
        )
        return {status: int(count) for status, count in (await self.session.execute(stmt)).all()}

    async def stage_durations(
        self, pipeline_id: UUID, start: datetime | None, end: datetime | None, dialect: str
    ) -> dict[UUID, tuple[int | None, int | None]]:
        """(median, p90) nearest-rank seconds spent in each stage before leaving it."""
        seconds = DealStageChange.seconds_in_previous_stage
        left = DealStageChange.from_stage_id
        conditions = [
            *self._moves_of_deals_created_in(pipeline_id, start, end),
            left.is_not(None),
            seconds.is_not(None),
        ]
        if dialect == POSTGRESQL:
            stmt = (
                select(
                    left,
                    func.percentile_disc(0.5).within_group(seconds),
                    func.percentile_disc(0.9).within_group(seconds),
                )
                .where(*conditions)
                .group_by(left)
            )
        else:
            # Nearest rank without percentile_disc: the value at the first rank r with
            # r >= share × n, in integer tenths so that no rounding decides the rank.
            ranked = (
                select(
                    left.label("stage"),
                    seconds.label("seconds"),
                    func.row_number().over(partition_by=left, order_by=seconds).label("ordinal"),
                    func.count().over(partition_by=left).label("moves"),
                )
                .where(*conditions)
                .subquery()
            )

            def at_tenths(tenths: int) -> ColumnElement[Any]:
                reaches = ranked.c.ordinal * 10 >= ranked.c.moves * tenths
                return func.min(case((reaches, ranked.c.seconds)))

            stmt = select(ranked.c.stage, at_tenths(5), at_tenths(9)).group_by(ranked.c.stage)
        rows = (await self.session.execute(stmt)).all()
        return {stage: (median, p90) for stage, median, p90 in rows}

    async def history(self, deal_id: UUID) -> list[DealStageChange]:
        stmt = (
            select(DealStageChange)
            .where(
                DealStageChange.workspace_id == self.workspace_id,
                DealStageChange.deal_id == deal_id,
            )
            .order_by(DealStageChange.changed_at, DealStageChange.id)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def move_customer(self, from_id: UUID, to_id: UUID | None) -> None:
        await self.session.execute(
            update(Deal)
            .where(Deal.workspace_id == self.workspace_id, Deal.customer_id == from_id)
            .values(customer_id=to_id)
            .execution_options(synchronize_session=False)
        )
        if to_id is None:
            await self.session.execute(
                delete(DealContact).where(
                    DealContact.workspace_id == self.workspace_id,
                    DealContact.customer_id == from_id,
                )
            )
            return
        # A deal that has both as contacts keeps the survivor's row.
        both = select(DealContact.deal_id).where(
            DealContact.workspace_id == self.workspace_id, DealContact.customer_id == to_id
        )
        await self.session.execute(
            delete(DealContact).where(
                DealContact.workspace_id == self.workspace_id,
                DealContact.customer_id == from_id,
                DealContact.deal_id.in_(both),
            )
        )
        await self.session.execute(
            update(DealContact)
            .where(
                DealContact.workspace_id == self.workspace_id, DealContact.customer_id == from_id
            )
            .values(customer_id=to_id)
            .execution_options(synchronize_session=False)
        )
