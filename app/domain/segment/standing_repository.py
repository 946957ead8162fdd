"""Queries for loyalty tiers, scoring rules, the workspace's score thresholds, and the tier
and score columns of customers."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, cast
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    exists,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.db.dialect import insert_new
from app.db.repository import WORKSPACE, WorkspaceRepository
from app.domain.customer.entities import Customer
from app.domain.segment.entities import ScoringRule, Segment, StandingSettings, Tier
from app.domain.segment.repository import DYNAMIC

# Built once: it runs before every commit that changed customers.
_DEFINED = select(
    exists().where(Tier.workspace_id == WORKSPACE),
    exists().where(ScoringRule.workspace_id == WORKSPACE),
    exists().where(Segment.workspace_id == WORKSPACE, Segment.kind == DYNAMIC),
)


@dataclass(frozen=True, slots=True)
class Followers:
    """Which definitions that follow customer changes a workspace has."""

    tiers: bool
    scoring_rules: bool
    dynamic_segments: bool


class FollowerRepository:
    """Which definitions of the workspace follow customer changes."""

    def __init__(self, session: AsyncSession, workspace_id: UUID) -> None:
        self.session = session
        self.workspace_id = workspace_id

    async def defined(self) -> Followers:
        """What of tiers, scoring rules and dynamic segments the workspace has, in one query:
        a shop with none of them pays one query per change instead of loading each kind."""
        row = (await self.session.execute(_DEFINED, {"workspace": self.workspace_id})).one()
        return Followers(tiers=row[0], scoring_rules=row[1], dynamic_segments=row[2])


class TierRepository(WorkspaceRepository[Tier]):
    entity = Tier
    noun = "tier"
    sortable: ClassVar[Mapping[str, InstrumentedAttribute[Any]]] = {
        "rank": Tier.rank,
        "key": Tier.key,
    }

    async def ranked(self) -> list[Tier]:
        """Every tier, highest rank first."""
        stmt = self.select().order_by(Tier.rank.desc())
        return list((await self.session.execute(stmt)).scalars())

    async def taken(self, column: str, value: Any, other_than: UUID | None) -> bool:
        stmt = select(Tier.id).where(
            Tier.workspace_id == self.workspace_id, getattr(Tier, column) == value
        )
        if other_than is not None:
            stmt = stmt.where(Tier.id != other_than)
        return (await self.session.execute(stmt.limit(1))).first() is not None


class ScoringRuleRepository(WorkspaceRepository[ScoringRule]):
    entity = ScoringRule
    noun = "scoring rule"
    sortable: ClassVar[Mapping[str, InstrumentedAttribute[Any]]] = {
        "name": ScoringRule.name,
        "points": ScoringRule.points,
    }

    async def every(self) -> list[ScoringRule]:
        stmt = self.select().order_by(ScoringRule.created_at, ScoringRule.id)
        return list((await self.session.execute(stmt)).scalars())

    async def name_taken(self, name: str, other_than: UUID | None) -> bool:
        stmt = select(ScoringRule.id).where(
            ScoringRule.workspace_id == self.workspace_id, ScoringRule.name == name
        )
        if other_than is not None:
            stmt = stmt.where(ScoringRule.id != other_than)
        return (await self.session.execute(stmt.limit(1))).first() is not None


class StandingSettingsRepository:
    """The one settings row of a workspace, created when first needed."""

    def __init__(self, session: Any, workspace_id: UUID, dialect: str) -> None:
        self.session = session
        self.workspace_id = workspace_id
        self.dialect = dialect

    async def get(self) -> StandingSettings | None:
        settings: StandingSettings | None = await self.session.get(
            StandingSettings, self.workspace_id
        )
        return settings

    async def thresholds(self) -> list[int]:
        stmt = select(StandingSettings.score_thresholds).where(
            StandingSettings.workspace_id == self.workspace_id
        )
        found = (await self.session.execute(stmt)).scalar_one_or_none()
        return list(found or [])

    async def _ensure(self) -> None:
        table = cast(Table, StandingSettings.__table__)
        await self.session.execute(
            insert_new(table, self.dialect).values(
                workspace_id=self.workspace_id, score_thresholds=[], swept_at=None
            )
        )

    async def set_thresholds(self, thresholds: Sequence[int]) -> None:
        await self._ensure()
        table = cast(Table, StandingSettings.__table__)
        await self.session.execute(
            update(table)
            .where(table.c.workspace_id == self.workspace_id)
            .values(score_thresholds=list(thresholds))
        )
        settings = await self.get()
        if settings is not None:
            await self.session.refresh(settings)

    async def rules_changed(self) -> None:
        """Every customer needs evaluating again: the worker sweeps this workspace at once."""
        await self._ensure()
        table = cast(Table, StandingSettings.__table__)
        await self.session.execute(
            update(table).where(table.c.workspace_id == self.workspace_id).values(swept_at=None)
        )


class StandingRepository:
    """The tier and score columns of customers: derived, so writing them is no new version."""

    def __init__(self, session: Any, workspace_id: UUID) -> None:
        self.session = session
        self.workspace_id = workspace_id

    async def store(self, rows: Sequence[dict[str, Any]]) -> None:
        """Each row has `id` and the same other columns."""
        if not rows:
            return
        table = cast(Table, Customer.__table__)
        stmt = (
            update(table)
            .where(table.c.workspace_id == self.workspace_id, table.c.id == bindparam("b_id"))
            .values({name: bindparam(f"b_{name}") for name in rows[0] if name != "id"})
        )
        await self.session.execute(
            stmt, [{f"b_{name}": value for name, value in row.items()} for row in rows]
        )

    async def current(self, ids: Sequence[UUID]) -> dict[UUID, dict[str, Any]]:
        """The stored tier and score columns, read from the rows themselves (not from objects
        a session may have loaded before another unit changed them)."""
        columns = ("tier", "tier_since", "score", "score_breakdown")
        stmt = select(Customer.id, *(getattr(Customer, name) for name in columns)).where(
            Customer.workspace_id == self.workspace_id, Customer.id.in_(ids)
        )
        return {
            row[0]: dict(zip(columns, row[1:], strict=True))
            for row in (await self.session.execute(stmt)).all()
        }

    async def ids_after(self, after: UUID | None, limit: int) -> list[UUID]:
        stmt = select(Customer.id).where(Customer.workspace_id == self.workspace_id)
        if after is not None:
            stmt = stmt.where(Customer.id > after)
        return list((await self.session.execute(stmt.order_by(Customer.id).limit(limit))).scalars())


def due_settings(sweep_before: datetime) -> ColumnElement[bool]:
    """Workspaces whose tiers and scores a worker should sweep now: those whose rules changed,
    and, every so often, those that have any rules (a workspace without rules has nothing
    that time could change once its last change was swept)."""
    has_rules = or_(
        exists(select(Tier.id).where(Tier.workspace_id == StandingSettings.workspace_id)),
        exists(
            select(ScoringRule.id).where(ScoringRule.workspace_id == StandingSettings.workspace_id)
        ),
    )
    return or_(
        StandingSettings.swept_at.is_(None),
        and_(StandingSettings.swept_at < sweep_before, has_rules),
    )
