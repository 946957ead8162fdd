"""Queries for pipelines, stages, deals, deal contacts and stage history."""

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Any, ClassVar
from uuid import UUID

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import InstrumentedAttribute

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

    async def forecast_rows(
        self, pipeline_id: UUID
    ) -> list[tuple[UUID, str, int, str, date | None, UUID | None, datetime | None]]:
        """(stage, currency, amount, status, expected close, owner, closed at) of each deal."""
        stmt = select(
            Deal.stage_id,
            Deal.currency,
            Deal.amount,
            Deal.status,
            Deal.expected_close_date,
            Deal.owner_id,
            Deal.closed_at,
        ).where(Deal.workspace_id == self.workspace_id, Deal.pipeline_id == pipeline_id)
        rows = []
        for row in (await self.session.execute(stmt)).all():
            rows.append(tuple(row))
        return rows  # type: ignore[return-value]

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

    async def cohort_history(
        self, pipeline_id: UUID, start: datetime | None, end: datetime | None
    ) -> list[tuple[UUID, UUID | None, UUID, int | None]]:
        """(deal, from, to, seconds in the previous stage) of every move of the deals created
        in the period, in the order they happened."""
        deals = select(Deal.id).where(
            Deal.workspace_id == self.workspace_id, Deal.pipeline_id == pipeline_id
        )
        if start is not None:
            deals = deals.where(Deal.created_at >= start)
        if end is not None:
            deals = deals.where(Deal.created_at < end)
        stmt = (
            select(
                DealStageChange.deal_id,
                DealStageChange.from_stage_id,
                DealStageChange.to_stage_id,
                DealStageChange.seconds_in_previous_stage,
            )
            .where(
                DealStageChange.workspace_id == self.workspace_id,
                DealStageChange.deal_id.in_(deals),
            )
            .order_by(DealStageChange.deal_id, DealStageChange.changed_at, DealStageChange.id)
        )
        return [tuple(row) for row in (await self.session.execute(stmt)).all()]  # type: ignore[misc]

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
