"""Rules for interactions, tasks, support requests and surveys."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Select, and_
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.context import Actor, Context
from app.core.errors import ValidationFailed
from app.core.etags import ensure_version
from app.core.text import like_pattern, search_form
from app.db.pagination import Page, PageRequest, SortKey
from app.db.repository import WorkspaceRepository
from app.domain.access.repository import UserRepository
from app.domain.company.repository import CompanyRepository
from app.domain.customer.repository import CustomerRepository
from app.domain.interaction import schemas
from app.domain.interaction.entities import Interaction
from app.domain.interaction.repository import InteractionRepository, claim_due_tasks
from app.domain.outbox.service import EventRecorder, changes_between
from app.domain.pipeline.repository import DealRepository

_ONLY_FOR: dict[str, frozenset[str]] = {
    "due_at": frozenset({schemas.InteractionType.TASK}),
    "assignee_id": frozenset({schemas.InteractionType.TASK}),
    "priority": frozenset({schemas.InteractionType.SUPPORT_REQUEST}),
    "nps_score": frozenset({schemas.InteractionType.SURVEY}),
    "answers": frozenset({schemas.InteractionType.SURVEY}),
    "status": frozenset({schemas.InteractionType.TASK, schemas.InteractionType.SUPPORT_REQUEST}),
}
_STATUSES: dict[str, frozenset[str]] = {
    schemas.InteractionType.TASK: frozenset(schemas.TaskStatus),
    schemas.InteractionType.SUPPORT_REQUEST: frozenset(schemas.SupportStatus),
}
_REFERENCES = ("customer_id", "company_id", "owner_id", "assignee_id", "deal_id")
DUE_SWEEP_LIMIT = 500
MAX_AHEAD = timedelta(days=366)


@dataclass(frozen=True, slots=True)
class InteractionQuery:
    type: str | None = None
    customer_id: UUID | None = None
    company_id: UUID | None = None
    owner_id: UUID | None = None
    assignee_id: UUID | None = None
    status: str | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None
    occurred_after: datetime | None = None
    occurred_before: datetime | None = None
    q: str | None = None


def _search_text(interaction: Interaction) -> str:
    parts = [interaction.subject, interaction.body]
    return "\n".join(search_form(part) for part in parts if part)


class InteractionService:
    def __init__(self, session: AsyncSession, context: Context) -> None:
        self.session = session
        self.context = context
        self.interactions = InteractionRepository(session, context.workspace_id)
        self.customers = CustomerRepository(session, context.workspace_id)
        self.companies = CompanyRepository(session, context.workspace_id)
        self.users = UserRepository(session, context.workspace_id)
        self.events = EventRecorder(session, context)
        self._references: dict[str, WorkspaceRepository[Any]] = {
            "customer_id": self.customers,
            "company_id": self.companies,
            "owner_id": self.users,
            "assignee_id": self.users,
            "deal_id": DealRepository(session, context.workspace_id),
        }

    async def create(self, data: schemas.InteractionCreate) -> Interaction:
        interaction = Interaction(type=data.type, customer_id=data.customer_id)
        await self._write(interaction, data, creating=True)
        self.interactions.add(interaction)
        await self.session.flush()
        self.events.record(
            "interaction.created",
            subject_type="interaction",
            subject_id=interaction.id,
            data=schemas.Interaction.snapshot(interaction),
        )
        return interaction

    async def get(self, interaction_id: UUID) -> Interaction:
        return await self.interactions.require(interaction_id)

    async def page(self, page: PageRequest, query: InteractionQuery) -> Page[Interaction]:
        due = SortKey(Interaction.due_at, lambda row: row.due_at, datetime, nullable=True)
        return await self.interactions.page(self._filtered(query), page, {"due_at": due})

    async def update(
        self,
        interaction_id: UUID,
        data: schemas.InteractionUpdate,
        *,
        expected_versions: frozenset[int] | None,
    ) -> Interaction:
        interaction = await self.get(interaction_id)
        ensure_version(interaction.version, expected_versions)
        before = schemas.Interaction.snapshot(interaction)
        await self._write(interaction, data, creating=False)
        await self.session.flush()
        after = schemas.Interaction.snapshot(interaction)
        diff = changes_between(before, after)
        if diff:
            self.events.record(
                "interaction.updated",
                subject_type="interaction",
                subject_id=interaction.id,
                data=after,
                changes=diff,
            )
        completed = interaction.type == schemas.InteractionType.TASK and (
            interaction.status == schemas.TaskStatus.DONE
        )
        if "status" in diff and completed:
            self.events.record(
                "task.completed", subject_type="interaction", subject_id=interaction.id, data=after
            )
        return interaction

    async def delete(
        self, interaction_id: UUID, *, expected_versions: frozenset[int] | None
    ) -> None:
        interaction = await self.get(interaction_id)
        ensure_version(interaction.version, expected_versions)
        data = schemas.Interaction.snapshot(interaction)
        await self.interactions.delete(interaction)
        await self.session.flush()
        self.events.record(
            "interaction.deleted", subject_type="interaction", subject_id=interaction_id, data=data
        )

    async def _write(
        self, interaction: Interaction, data: schemas.InteractionWrite, *, creating: bool
    ) -> None:
        fields = data.model_fields_set
        kind = interaction.type
        for name in fields & _ONLY_FOR.keys():
            if getattr(data, name) is not None and kind not in _ONLY_FOR[name]:
                raise ValidationFailed.at(("body", name), f"A {kind} has no {name}.")
        if data.status is not None and data.status not in _STATUSES[kind]:
            allowed = ", ".join(sorted(_STATUSES[kind]))
            raise ValidationFailed.at(("body", "status"), f"A {kind} is one of: {allowed}.")
        await self._check_references(data)
        for name in fields:
            setattr(interaction, name, getattr(data, name))
        if creating:
            interaction.occurred_at = data.occurred_at or utcnow()
            if kind in _STATUSES and interaction.status is None:
                interaction.status = "open"
            if kind == schemas.InteractionType.SUPPORT_REQUEST and interaction.priority is None:
                interaction.priority = schemas.Priority.NORMAL
        elif "occurred_at" in fields and data.occurred_at is None:
            raise ValidationFailed.at(("body", "occurred_at"), "An interaction keeps its time.")
        if interaction.occurred_at > utcnow() + MAX_AHEAD:
            raise ValidationFailed.at(("body", "occurred_at"), "That is more than a year ahead.")
        if "status" in fields and interaction.type == schemas.InteractionType.TASK:
            done = interaction.status == schemas.TaskStatus.DONE
            interaction.completed_at = (interaction.completed_at or utcnow()) if done else None
        if "due_at" in fields:
            interaction.due_notified_at = None  # a new due time is announced anew
        interaction.search_text = _search_text(interaction)

    async def _check_references(self, data: schemas.InteractionWrite) -> None:
        for name in _REFERENCES:
            value = getattr(data, name, None)
            if value is None:
                continue
            repository = self._references[name]
            if not await repository.existing_ids({value}):
                raise ValidationFailed.at(("body", name), f"No {repository.noun} with id {value}.")

    def _filtered(self, query: InteractionQuery) -> Select[Interaction]:
        stmt = self.interactions.select()
        equal: list[tuple[Any, Any]] = [
            (Interaction.type, query.type),
            (Interaction.customer_id, query.customer_id),
            (Interaction.company_id, query.company_id),
            (Interaction.owner_id, query.owner_id),
            (Interaction.assignee_id, query.assignee_id),
            (Interaction.status, query.status),
        ]
        conditions: list[ColumnElement[bool]] = [
            column == value for column, value in equal if value is not None
        ]
        if query.due_before is not None:
            conditions.append(Interaction.due_at < query.due_before)
        if query.due_after is not None:
            conditions.append(Interaction.due_at >= query.due_after)
        if query.occurred_after is not None:
            conditions.append(Interaction.occurred_at >= query.occurred_after)
        if query.occurred_before is not None:
            conditions.append(Interaction.occurred_at < query.occurred_before)
        if query.q is not None and (fragment := search_form(query.q)):
            conditions.append(Interaction.search_text.like(like_pattern(fragment), escape="\\"))
        return stmt.where(and_(*conditions)) if conditions else stmt


async def announce_due_tasks(session: AsyncSession, now: datetime | None = None) -> int:
    """Emits `task.due` once for every open task whose due time has passed."""
    tasks = await claim_due_tasks(session, now or utcnow(), DUE_SWEEP_LIMIT)
    for task in tasks:
        EventRecorder(session, Context(task.workspace_id, Actor.system())).record(
            "task.due",
            subject_type="interaction",
            subject_id=task.id,
            data=schemas.Interaction.snapshot(task),
        )
    return len(tasks)
