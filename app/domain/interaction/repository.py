"""Queries for interactions."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.db.repository import WorkspaceRepository
from app.domain.interaction.entities import Interaction


class InteractionRepository(WorkspaceRepository[Interaction]):
    entity = Interaction
    noun = "interaction"
    sortable: ClassVar[Mapping[str, InstrumentedAttribute[Any]]] = {
        "occurred_at": Interaction.occurred_at,
        "updated_at": Interaction.updated_at,
    }

    async def move_customer(self, from_id: UUID, to_id: UUID) -> None:
        await self.session.execute(
            update(Interaction)
            .where(Interaction.workspace_id == self.workspace_id)
            .where(Interaction.customer_id == from_id)
            .values(customer_id=to_id)
            .execution_options(synchronize_session=False)
        )


async def claim_due_tasks(session: AsyncSession, now: datetime, limit: int) -> list[Interaction]:
    """Open tasks whose due time has passed and that were never announced, marked announced.

    The sweep looks across workspaces; each task is claimed once, whichever process sweeps.
    """
    due = (
        select(Interaction.workspace_id, Interaction.id)
        .where(
            Interaction.status == "open",
            Interaction.due_notified_at.is_(None),
            Interaction.due_at <= now,
        )
        .limit(limit)
    )
    claimed: list[Interaction] = []
    for workspace_id, task_id in (await session.execute(due)).all():
        result = await session.execute(
            update(Interaction)
            .where(
                Interaction.workspace_id == workspace_id,
                Interaction.id == task_id,
                Interaction.due_notified_at.is_(None),
            )
            .values(due_notified_at=now)
            .returning(Interaction)
            .execution_options(synchronize_session=False)
        )
        claimed.extend(result.scalars())
    return claimed
