"""Rules for pipelines, stages and deals: ordering, moves with history, won and lost."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.context import Context
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.etags import ensure_version
from app.db.pagination import Page, PageRequest
from app.db.repository import WorkspaceRepository
from app.domain.access.repository import UserRepository, WorkspaceDirectory
from app.domain.company.repository import CompanyRepository
from app.domain.customer.attributes import apply_attributes
from app.domain.customer.repository import CustomerRepository, FieldDefinitionRepository
from app.domain.customer.schemas import CustomerUpdate, FieldObject
from app.domain.customer.service import CustomerService
from app.domain.outbox.service import EventRecorder, changes_between
from app.domain.pipeline import schemas
from app.domain.pipeline.entities import Deal, DealContact, DealStageChange, Pipeline, Stage
from app.domain.pipeline.filters import deal_fields
from app.domain.pipeline.repository import DealRepository, PipelineRepository, StageRepository
from app.filters.compiler import compile_filter

DEFAULT_PIPELINE = "営業パイプライン"
DEFAULT_STAGES = (
    ("リード", 10, schemas.StageKind.OPEN),
    ("ヒアリング", 20, schemas.StageKind.OPEN),
    ("提案", 40, schemas.StageKind.OPEN),
    ("見積提示", 60, schemas.StageKind.OPEN),
    ("交渉", 80, schemas.StageKind.OPEN),
    ("受注", 100, schemas.StageKind.WON),
    ("失注", 0, schemas.StageKind.LOST),
)
WON_LIFECYCLE_STAGE = "customer"
# What a stage move changes: reported by `deal.stage_changed`, not `deal.updated`.
_STAGE_FIELDS = ("stage_id", "status", "stage_changed_at", "closed_at", "rotting")


class PipelineService:
    def __init__(self, session: AsyncSession, context: Context) -> None:
        self.session = session
        self.context = context
        self.pipelines = PipelineRepository(session, context.workspace_id)
        self.stages = StageRepository(session, context.workspace_id)
        self.deals = DealRepository(session, context.workspace_id)
        self.events = EventRecorder(session, context)

    async def create(self, data: schemas.PipelineCreate) -> schemas.Pipeline:
        if await self.pipelines.by_name(data.name) is not None:
            raise Conflict(f"A pipeline named {data.name!r} exists already.")
        pipeline = self.pipelines.add(Pipeline(name=data.name))
        await self.session.flush()
        for position, stage in enumerate(data.stages, start=1):
            self.stages.add(Stage(pipeline_id=pipeline.id, position=position, **stage.model_dump()))
        await self.session.flush()
        view = await self.view(pipeline)
        self._record("pipeline.created", pipeline.id, view.model_dump(mode="json"))
        return view

    async def create_default(self) -> schemas.Pipeline:
        """The pipeline a new workspace starts with."""
        stages = [
            schemas.StageCreate(name=name, probability=probability, kind=kind)
            for name, probability, kind in DEFAULT_STAGES
        ]
        return await self.create(schemas.PipelineCreate(name=DEFAULT_PIPELINE, stages=stages))

    async def get(self, pipeline_id: UUID) -> schemas.Pipeline:
        return await self.view(await self.pipelines.require(pipeline_id))

    async def page(self, request: PageRequest) -> Page[schemas.Pipeline]:
        page = await self.pipelines.page(self.pipelines.select(), request)
        stages = await self.stages.of_pipelines([p.id for p in page.items])
        views = [_pipeline_view(p, stages[p.id]) for p in page.items]
        return Page(items=views, next_cursor=page.next_cursor)

    async def update(
        self,
        pipeline_id: UUID,
        data: schemas.PipelineUpdate,
        *,
        expected_versions: frozenset[int] | None,
    ) -> schemas.Pipeline:
        pipeline = await self.pipelines.require(pipeline_id)
        ensure_version(pipeline.version, expected_versions)
        if data.name is not None and data.name != pipeline.name:
            if await self.pipelines.by_name(data.name) is not None:
                raise Conflict(f"A pipeline named {data.name!r} exists already.")
            before = (await self.view(pipeline)).model_dump(mode="json")
            pipeline.name = data.name
            await self.session.flush()
            after = (await self.view(pipeline)).model_dump(mode="json")
            self._record("pipeline.updated", pipeline.id, after, changes_between(before, after))
        return await self.view(pipeline)

    async def delete(self, pipeline_id: UUID, *, expected_versions: frozenset[int] | None) -> None:
        pipeline = await self.pipelines.require(pipeline_id)
        ensure_version(pipeline.version, expected_versions)
        stages = (await self.stages.of_pipelines([pipeline_id]))[pipeline_id]
        for stage in stages:
            if await self.deals.count_in_stage(stage.id):
                raise Conflict("The pipeline has deals; move or delete them first.")
        view = (await self.view(pipeline)).model_dump(mode="json")
        await self.pipelines.delete(pipeline)
        await self.session.flush()
        self._record("pipeline.deleted", pipeline_id, view)

    async def view(self, pipeline: Pipeline) -> schemas.Pipeline:
        stages = (await self.stages.of_pipelines([pipeline.id]))[pipeline.id]
        return _pipeline_view(pipeline, stages)

    # Stages

    async def add_stage(self, pipeline_id: UUID, data: schemas.StageCreate) -> Stage:
        await self.pipelines.lock(pipeline_id)
        stages = (await self.stages.of_pipelines([pipeline_id]))[pipeline_id]
        stage = self.stages.add(
            Stage(pipeline_id=pipeline_id, position=len(stages) + 1, **data.model_dump())
        )
        await self.session.flush()
        self._record_stage("stage.created", stage)
        return stage

    async def stage(self, pipeline_id: UUID, stage_id: UUID) -> Stage:
        stage = await self.stages.require(stage_id)
        if stage.pipeline_id != pipeline_id:
            raise NotFound("stage", stage_id)
        return stage

    async def update_stage(
        self,
        pipeline_id: UUID,
        stage_id: UUID,
        data: schemas.StageUpdate,
        *,
        expected_versions: frozenset[int] | None,
    ) -> Stage:
        stage = await self.stage(pipeline_id, stage_id)
        ensure_version(stage.version, expected_versions)
        before = schemas.Stage.snapshot(stage)
        for name, value in data.model_dump(exclude_unset=True).items():
            setattr(stage, name, value)
        await self.session.flush()
        after = schemas.Stage.snapshot(stage)
        if diff := changes_between(before, after):
            self._record_stage("stage.updated", stage, diff)
        return stage

    async def move_stage(
        self, pipeline_id: UUID, stage_id: UUID, data: schemas.StageMove
    ) -> list[Stage]:
        """Puts the stage before or after another and numbers all stages 1..n again, under a
        lock on the pipeline so that concurrent moves apply one after the other."""
        await self.pipelines.lock(pipeline_id)
        stages = (await self.stages.of_pipelines([pipeline_id]))[pipeline_id]
        moving = next((s for s in stages if s.id == stage_id), None)
        if moving is None:
            raise NotFound("stage", stage_id)
        anchor_id = data.before or data.after
        others = [s for s in stages if s.id != stage_id]
        index = next((i for i, s in enumerate(others) if s.id == anchor_id), None)
        if index is None:
            field = "before" if data.before else "after"
            raise ValidationFailed.at(("body", field), "Not another stage of this pipeline.")
        others.insert(index if data.before else index + 1, moving)
        for position, stage in enumerate(others, start=1):
            stage.position = position
        await self.session.flush()
        self._record_stage("stage.moved", moving)
        return others

    async def delete_stage(
        self,
        pipeline_id: UUID,
        stage_id: UUID,
        *,
        move_deals_to: UUID | None,
        expected_versions: frozenset[int] | None,
    ) -> None:
        await self.pipelines.lock(pipeline_id)
        stage = await self.stage(pipeline_id, stage_id)
        ensure_version(stage.version, expected_versions)
        deals = await self.deals.in_stage(stage_id)
        if deals:
            if move_deals_to is None:
                raise Conflict(
                    f"The stage has {len(deals)} deals; name a stage to move them to "
                    "with move_deals_to.",
                    deal_count=len(deals),
                )
            target = await self.stages.get(move_deals_to)
            if target is None or target.pipeline_id != pipeline_id or target.id == stage_id:
                raise ValidationFailed.at(
                    ("query", "move_deals_to"), "Not another stage of this pipeline."
                )
            mover = DealService(self.session, self.context)
            for deal in deals:
                await mover.enter_stage(deal, target)
        await self.stages.delete(stage)
        await self.session.flush()
        remaining = (await self.stages.of_pipelines([pipeline_id]))[pipeline_id]
        for position, other in enumerate(remaining, start=1):
            other.position = position
        self._record_stage("stage.deleted", stage)

    def _record(
        self,
        event_type: str,
        pipeline_id: UUID,
        data: dict[str, Any],
        changes: dict[str, Any] | None = None,
    ) -> None:
        self.events.record(
            event_type, subject_type="pipeline", subject_id=pipeline_id, data=data, changes=changes
        )

    def _record_stage(
        self, event_type: str, stage: Stage, changes: dict[str, Any] | None = None
    ) -> None:
        self.events.record(
            event_type,
            subject_type="stage",
            subject_id=stage.id,
            data=schemas.Stage.snapshot(stage),
            changes=changes,
        )


def _pipeline_view(pipeline: Pipeline, stages: Sequence[Stage]) -> schemas.Pipeline:
    return schemas.Pipeline(
        id=pipeline.id,
        name=pipeline.name,
        stages=[schemas.Stage.model_validate(stage) for stage in stages],
        version=pipeline.version,
        created_at=pipeline.created_at,
        updated_at=pipeline.updated_at,
    )


@dataclass(frozen=True, slots=True)
class DealQuery:
    pipeline_id: UUID | None = None
    stage_id: UUID | None = None
    status: str | None = None
    owner_id: UUID | None = None
    customer_id: UUID | None = None
    company_id: UUID | None = None
    expected_close_after: date | None = None
    expected_close_before: date | None = None


class DealService:
    def __init__(self, session: AsyncSession, context: Context) -> None:
        self.session = session
        self.context = context
        self.pipelines = PipelineRepository(session, context.workspace_id)
        self.stages = StageRepository(session, context.workspace_id)
        self.deals = DealRepository(session, context.workspace_id)
        self.customers = CustomerRepository(session, context.workspace_id)
        self.companies = CompanyRepository(session, context.workspace_id)
        self.users = UserRepository(session, context.workspace_id)
        self.definitions = FieldDefinitionRepository(session, context.workspace_id)
        self.events = EventRecorder(session, context)

    async def create(self, data: schemas.DealCreate) -> schemas.Deal:
        pipeline, stage = await self._placement(data.pipeline_id, data.stage_id)
        now = utcnow()
        deal = Deal(
            name=data.name,
            pipeline_id=pipeline.id,
            stage_id=stage.id,
            status=stage.kind,
            stage_changed_at=now,
            closed_at=now if stage.kind != schemas.StageKind.OPEN else None,
            attributes={},
        )
        await self._write(deal, data, creating=True)
        self.deals.add(deal)
        await self.session.flush()
        self._history(deal, None, stage, now, None)
        await self._set_contacts(deal, data.contacts)
        view = (await self.views([deal]))[0]
        self.events.record(
            "deal.created", subject_type="deal", subject_id=deal.id, data=_json(view)
        )
        await self._announce_close(deal, stage, view)
        return view

    async def get(self, deal_id: UUID) -> Deal:
        return await self.deals.require(deal_id)

    async def view(self, deal_id: UUID) -> schemas.Deal:
        return (await self.views([await self.get(deal_id)]))[0]

    async def page(self, request: PageRequest, query: DealQuery) -> Page[schemas.Deal]:
        page = await self.deals.page(self._filtered(query), request)
        return Page(items=await self.views(page.items), next_cursor=page.next_cursor)

    async def search(self, raw_filter: Any, request: PageRequest) -> Page[schemas.Deal]:
        stmt = self.deals.select()
        if raw_filter is not None:
            definitions = await self.definitions.for_object(FieldObject.DEAL)
            registry = deal_fields(self._dialect(), list(definitions.values()))
            stmt = stmt.where(
                compile_filter(raw_filter, registry, now=utcnow(), path=("body", "filter"))
            )
        page = await self.deals.page(stmt, request)
        return Page(items=await self.views(page.items), next_cursor=page.next_cursor)

    async def update(
        self, deal_id: UUID, data: schemas.DealUpdate, *, expected_versions: frozenset[int] | None
    ) -> schemas.Deal:
        deal = await self.get(deal_id)
        ensure_version(deal.version, expected_versions)
        before = _json((await self.views([deal]))[0])
        await self._write(deal, data, creating=False)
        if "contacts" in data.model_fields_set:
            await self._set_contacts(deal, data.contacts)
        target: Stage | None = None
        if data.stage_id is not None and data.stage_id != deal.stage_id:
            target = await self.stages.get(data.stage_id)
            if target is None or target.pipeline_id != deal.pipeline_id:
                raise ValidationFailed.at(
                    ("body", "stage_id"), "Not a stage of the deal's pipeline."
                )
        if target is not None:
            await self.enter_stage(deal, target, record_update=False)
        await self.session.flush()
        view = (await self.views([deal]))[0]
        after = _json(view)
        diff = changes_between(before, after)
        moved = {name: diff.pop(name) for name in _STAGE_FIELDS if name in diff}
        if diff:
            self.events.record(
                "deal.updated", subject_type="deal", subject_id=deal.id, data=after, changes=diff
            )
        if target is not None:
            self.events.record(
                "deal.stage_changed",
                subject_type="deal",
                subject_id=deal.id,
                data=after,
                changes=moved,
            )
            await self._announce_close(deal, target, view)
        return view

    async def delete(self, deal_id: UUID, *, expected_versions: frozenset[int] | None) -> None:
        deal = await self.get(deal_id)
        ensure_version(deal.version, expected_versions)
        data = _json((await self.views([deal]))[0])
        await self.deals.delete(deal)
        await self.session.flush()
        self.events.record("deal.deleted", subject_type="deal", subject_id=deal_id, data=data)

    async def history(self, deal_id: UUID) -> list[DealStageChange]:
        await self.get(deal_id)
        return await self.deals.history(deal_id)

    async def enter_stage(self, deal: Deal, stage: Stage, *, record_update: bool = True) -> None:
        """Moves the deal, keeping the move in its history with the time spent before."""
        now = utcnow()
        seconds = int((now - deal.stage_changed_at).total_seconds())
        previous = await self.stages.get(deal.stage_id)
        self._history(deal, previous, stage, now, seconds)
        deal.stage_id = stage.id
        deal.status = stage.kind
        deal.stage_changed_at = now
        deal.closed_at = now if stage.kind != schemas.StageKind.OPEN else None
        if record_update:
            await self.session.flush()
            view = (await self.views([deal]))[0]
            self.events.record(
                "deal.stage_changed",
                subject_type="deal",
                subject_id=deal.id,
                data=_json(view),
                changes={
                    "stage_id": {
                        "old": str(previous.id) if previous else None,
                        "new": str(stage.id),
                    }
                },
            )
            await self._announce_close(deal, stage, view)

    async def views(self, deals: Sequence[Deal]) -> list[schemas.Deal]:
        contacts = await self.deals.contacts([deal.id for deal in deals])
        stage_ids = {deal.stage_id for deal in deals}
        stages = await self.stages.get_many(stage_ids)
        now = utcnow()
        return [
            _deal_view(deal, contacts.get(deal.id, []), stages.get(deal.stage_id), now)
            for deal in deals
        ]

    async def _placement(
        self, pipeline_id: UUID | None, stage_id: UUID | None
    ) -> tuple[Pipeline, Stage]:
        if pipeline_id is not None:
            pipeline = await self.pipelines.get(pipeline_id)
            if pipeline is None:
                raise ValidationFailed.at(
                    ("body", "pipeline_id"), f"No pipeline with id {pipeline_id}."
                )
        else:
            first = await self.pipelines.first()
            if first is None:
                raise ValidationFailed.at(("body", "pipeline_id"), "Create a pipeline first.")
            pipeline = first
        stages = (await self.stages.of_pipelines([pipeline.id]))[pipeline.id]
        if stage_id is None:
            if not stages:
                raise ValidationFailed.at(("body", "stage_id"), "The pipeline has no stages.")
            return pipeline, stages[0]
        stage = next((s for s in stages if s.id == stage_id), None)
        if stage is None:
            raise ValidationFailed.at(("body", "stage_id"), "Not a stage of the deal's pipeline.")
        return pipeline, stage

    async def _write(self, deal: Deal, data: schemas.DealWrite, *, creating: bool) -> None:
        fields = data.model_fields_set | ({"amount", "currency"} if creating else set())
        references: dict[str, WorkspaceRepository[Any]] = {
            "customer_id": self.customers,
            "company_id": self.companies,
            "owner_id": self.users,
        }
        for name, repository in references.items():
            value = getattr(data, name)
            if name in fields and value is not None and not await repository.existing_ids({value}):
                raise ValidationFailed.at(("body", name), f"No {repository.noun} with id {value}.")
        contact_ids = {contact.customer_id for contact in data.contacts or []}
        missing = contact_ids - await self.customers.existing_ids(contact_ids)
        if missing:
            raise ValidationFailed.at(("body", "contacts"), f"No customer with id {min(missing)}.")
        for name in fields - {"attributes", "contacts", "stage_id", "pipeline_id"}:
            setattr(deal, name, getattr(data, name))
        if "attributes" in fields or creating:
            deal.attributes = apply_attributes(
                {} if creating else deal.attributes,
                data.attributes or {},
                await self.definitions.for_object(FieldObject.DEAL),
                loc=("body", "attributes"),
                creating=creating,
            )

    async def _set_contacts(
        self, deal: Deal, contacts: Sequence[schemas.DealContactIn] | None
    ) -> None:
        unique = {contact.customer_id: contact.role for contact in contacts or []}
        await self.deals.set_contacts(deal.id, list(unique.items()))

    def _history(
        self,
        deal: Deal,
        previous: Stage | None,
        stage: Stage,
        at: datetime,
        seconds: int | None,
    ) -> None:
        actor = self.context.actor
        self.session.add(
            DealStageChange(
                workspace_id=self.context.workspace_id,
                deal_id=deal.id,
                pipeline_id=deal.pipeline_id,
                from_stage_id=previous.id if previous else None,
                to_stage_id=stage.id,
                changed_at=at,
                changed_by=str(actor.api_key_id) if actor.api_key_id else actor.kind,
                seconds_in_previous_stage=seconds,
            )
        )

    async def _announce_close(self, deal: Deal, stage: Stage, view: schemas.Deal) -> None:
        """`deal.won` / `deal.lost`; a won deal moves its customer forward to `customer`."""
        if stage.kind == schemas.StageKind.OPEN:
            return
        self.events.record(
            f"deal.{stage.kind}", subject_type="deal", subject_id=deal.id, data=_json(view)
        )
        if stage.kind == schemas.StageKind.WON and deal.customer_id is not None:
            await self._advance_customer(deal.customer_id)

    async def _advance_customer(self, customer_id: UUID) -> None:
        workspace = await WorkspaceDirectory(self.session).by_id(self.context.workspace_id)
        stages = list(workspace.lifecycle_stages) if workspace else []
        if WON_LIFECYCLE_STAGE not in stages:
            return
        customers = CustomerService(self.session, self.context)
        customer = await customers.get(customer_id)
        current = (
            stages.index(customer.lifecycle_stage) if customer.lifecycle_stage in stages else -1
        )
        if current < stages.index(WON_LIFECYCLE_STAGE):
            await customers.update(
                customer_id,
                CustomerUpdate(lifecycle_stage=WON_LIFECYCLE_STAGE),
                expected_versions=None,
            )

    def _filtered(self, query: DealQuery) -> Select[Deal]:
        stmt = self.deals.select()
        for column, value in (
            (Deal.pipeline_id, query.pipeline_id),
            (Deal.stage_id, query.stage_id),
            (Deal.status, query.status),
            (Deal.owner_id, query.owner_id),
            (Deal.customer_id, query.customer_id),
            (Deal.company_id, query.company_id),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        if query.expected_close_after is not None:
            stmt = stmt.where(Deal.expected_close_date >= query.expected_close_after)
        if query.expected_close_before is not None:
            stmt = stmt.where(Deal.expected_close_date < query.expected_close_before)
        return stmt

    def _dialect(self) -> str:
        return self.session.bind.dialect.name if self.session.bind is not None else "sqlite"


def _json(view: schemas.Deal) -> dict[str, Any]:
    return view.model_dump(mode="json")


def _deal_view(
    deal: Deal, contacts: Sequence[DealContact], stage: Stage | None, now: datetime
) -> schemas.Deal:
    rotting = bool(
        stage is not None
        and stage.rotting_days
        and deal.status == schemas.StageKind.OPEN
        and now - deal.stage_changed_at > timedelta(days=stage.rotting_days)
    )
    data = {name: getattr(deal, name) for name in schemas.Deal.model_fields if hasattr(deal, name)}
    data["contacts"] = [schemas.DealContact.model_validate(contact) for contact in contacts]
    data["rotting"] = rotting
    return schemas.Deal.model_validate(data)
