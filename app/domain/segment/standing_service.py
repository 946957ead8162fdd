"""Rules for loyalty tiers, scoring rules and score thresholds. A change of a tier or rule
makes the worker evaluate every customer of the workspace again, at once."""

from collections.abc import Iterator
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.context import Context
from app.core.errors import Conflict, ValidationFailed
from app.core.etags import ensure_version
from app.db.pagination import Page, PageRequest
from app.domain.customer.service import CustomerService
from app.domain.outbox.service import EventRecorder, changes_between
from app.domain.segment import standing_schemas as schemas
from app.domain.segment.entities import ScoringRule, Tier
from app.domain.segment.membership import depends_on
from app.domain.segment.standing_repository import (
    ScoringRuleRepository,
    StandingSettingsRepository,
    TierRepository,
)
from app.domain.segment.worker import note_segment_work
from app.filters.compiler import newest_behaviour

Loc = tuple[str | int, ...]
FILTER: Loc = ("body", "filter")


def _conditions(raw: Any, path: Loc) -> Iterator[tuple[str, Loc]]:
    """(field, path of the field) of each customer-level condition (not those in `where`)."""
    if not isinstance(raw, dict):
        return
    for group in ("all", "any"):
        children = raw.get(group)
        if isinstance(children, list):
            for index, child in enumerate(children):
                yield from _conditions(child, (*path, group, index))
    if "not" in raw:
        yield from _conditions(raw["not"], (*path, "not"))
    name = raw.get("field")
    if isinstance(name, str):
        yield name, (*path, "field")


class _Rules:
    def __init__(self, session: AsyncSession, context: Context) -> None:
        self.session = session
        self.context = context
        bind = session.bind
        dialect = bind.dialect.name if bind is not None else "sqlite"
        self.customers = CustomerService(session, context)
        self.settings = StandingSettingsRepository(session, context.workspace_id, dialect)
        self.events = EventRecorder(session, context)

    async def _check_filter(self, raw: Any, forbidden: frozenset[str], noun: str) -> list[str]:
        """What a valid filter reads; 422 naming the path of what is wrong with it."""
        await self.customers.compile_filter(raw, FILTER)
        for name, loc in _conditions(raw, FILTER):
            if name in forbidden:
                raise ValidationFailed.at(loc, f"A {noun}'s filter cannot name '{name}'.")
        return depends_on(raw)

    async def _rules_changed(self) -> None:
        await self.settings.rules_changed()
        note_segment_work(self.session)

    def _record(
        self,
        event_type: str,
        subject_type: str,
        subject_id: UUID,
        data: dict[str, Any],
        changes: dict[str, Any] | None = None,
    ) -> None:
        self.events.record(
            event_type,
            subject_type=subject_type,
            subject_id=subject_id,
            data=data,
            changes=changes,
        )


class TierService(_Rules):
    FORBIDDEN = frozenset({"tier"})

    def __init__(self, session: AsyncSession, context: Context) -> None:
        super().__init__(session, context)
        self.tiers = TierRepository(session, context.workspace_id)

    async def create(self, data: schemas.TierCreate) -> Tier:
        await self._ensure_free(data.key, data.rank, None)
        reads = await self._check_filter(data.filter, self.FORBIDDEN, "tier")
        tier = Tier(
            key=data.key, name=data.name, rank=data.rank, filter=data.filter, depends_on=reads
        )
        self.tiers.add(tier)
        await self.session.flush()
        await self._rules_changed()
        self._record("tier.created", "tier", tier.id, schemas.Tier.snapshot(tier))
        return tier

    async def get(self, tier_id: UUID) -> Tier:
        return await self.tiers.require(tier_id)

    async def page(self, page: PageRequest) -> Page[Tier]:
        return await self.tiers.page(self.tiers.select(), page)

    async def update(
        self, tier_id: UUID, data: schemas.TierUpdate, *, expected_versions: frozenset[int] | None
    ) -> Tier:
        tier = await self.tiers.require(tier_id)
        ensure_version(tier.version, expected_versions)
        before = schemas.Tier.snapshot(tier)
        changes = data.model_dump(exclude_unset=True)
        await self._ensure_free(changes.get("key"), changes.get("rank"), tier.id)
        if "filter" in changes and changes["filter"] != tier.filter:
            tier.depends_on = await self._check_filter(changes["filter"], self.FORBIDDEN, "tier")
        for name in ("key", "name", "rank", "filter"):
            if name in changes:
                setattr(tier, name, changes[name])
        diff = changes_between(before, schemas.Tier.snapshot(tier))
        if diff:
            await self.session.flush()
            await self._rules_changed()
            self._record("tier.updated", "tier", tier.id, schemas.Tier.snapshot(tier), diff)
        return tier

    async def delete(self, tier_id: UUID, *, expected_versions: frozenset[int] | None) -> None:
        tier = await self.tiers.require(tier_id)
        ensure_version(tier.version, expected_versions)
        data = schemas.Tier.snapshot(tier)
        await self.tiers.delete(tier)
        await self.session.flush()
        await self._rules_changed()  # its holders fall to the next tier down
        self._record("tier.deleted", "tier", tier_id, data)

    async def _ensure_free(self, key: str | None, rank: int | None, tier_id: UUID | None) -> None:
        if key is not None and await self.tiers.taken("key", key, tier_id):
            raise Conflict(f"A tier with key '{key}' exists already.")
        if rank is not None and await self.tiers.taken("rank", rank, tier_id):
            raise Conflict(f"Another tier has rank {rank}; give each tier its own rank.")


class ScoringService(_Rules):
    FORBIDDEN = frozenset({"tier", "score"})

    def __init__(self, session: AsyncSession, context: Context) -> None:
        super().__init__(session, context)
        self.rules = ScoringRuleRepository(session, context.workspace_id)

    async def create(self, data: schemas.ScoringRuleCreate) -> ScoringRule:
        await self._ensure_name_free(data.name, None)
        reads = await self._check_filter(data.filter, self.FORBIDDEN, "scoring rule")
        await self._check_decay(data.filter, data.half_life_days)
        rule = ScoringRule(
            name=data.name,
            points=data.points,
            filter=data.filter,
            half_life_days=data.half_life_days,
            depends_on=reads,
        )
        self.rules.add(rule)
        await self.session.flush()
        await self._rules_changed()
        self._record(
            "scoring_rule.created", "scoring_rule", rule.id, schemas.ScoringRule.snapshot(rule)
        )
        return rule

    async def get(self, rule_id: UUID) -> ScoringRule:
        return await self.rules.require(rule_id)

    async def page(self, page: PageRequest) -> Page[ScoringRule]:
        return await self.rules.page(self.rules.select(), page)

    async def update(
        self,
        rule_id: UUID,
        data: schemas.ScoringRuleUpdate,
        *,
        expected_versions: frozenset[int] | None,
    ) -> ScoringRule:
        rule = await self.rules.require(rule_id)
        ensure_version(rule.version, expected_versions)
        before = schemas.ScoringRule.snapshot(rule)
        changes = data.model_dump(exclude_unset=True)
        if "name" in changes and changes["name"] != rule.name:
            await self._ensure_name_free(changes["name"], rule.id)
        raw_filter = changes.get("filter", rule.filter)
        if "filter" in changes and changes["filter"] != rule.filter:
            rule.depends_on = await self._check_filter(raw_filter, self.FORBIDDEN, "scoring rule")
        await self._check_decay(raw_filter, changes.get("half_life_days", rule.half_life_days))
        for name in ("name", "points", "filter", "half_life_days"):
            if name in changes:
                setattr(rule, name, changes[name])
        diff = changes_between(before, schemas.ScoringRule.snapshot(rule))
        if diff:
            await self.session.flush()
            await self._rules_changed()
            self._record(
                "scoring_rule.updated",
                "scoring_rule",
                rule.id,
                schemas.ScoringRule.snapshot(rule),
                diff,
            )
        return rule

    async def delete(self, rule_id: UUID, *, expected_versions: frozenset[int] | None) -> None:
        rule = await self.rules.require(rule_id)
        ensure_version(rule.version, expected_versions)
        data = schemas.ScoringRule.snapshot(rule)
        await self.rules.delete(rule)
        await self.session.flush()
        await self._rules_changed()
        self._record("scoring_rule.deleted", "scoring_rule", rule_id, data)

    async def thresholds(self) -> list[int]:
        return await self.settings.thresholds()

    async def set_thresholds(self, thresholds: list[int]) -> list[int]:
        """Scores stay as they are; only later crossings are announced against the new list."""
        before = await self.settings.thresholds()
        await self.settings.set_thresholds(thresholds)
        if before != thresholds:
            self._record(
                "scoring_thresholds.updated",
                "workspace",
                self.context.workspace_id,
                {"thresholds": thresholds},
                {"thresholds": {"old": before, "new": thresholds}},
            )
        return thresholds

    async def _check_decay(self, raw_filter: Any, half_life_days: int | None) -> None:
        if half_life_days is None:
            return
        fields = await self.customers.filter_fields()
        if newest_behaviour(raw_filter, fields, now=utcnow(), path=FILTER) is None:
            raise ValidationFailed.at(
                ("body", "half_life_days"),
                "Decay needs a filter that is one behaviour condition (orders, interactions "
                "or events): the points halve from its newest matching row.",
            )

    async def _ensure_name_free(self, name: str, rule_id: UUID | None) -> None:
        if await self.rules.name_taken(name, rule_id):
            raise Conflict(f"A scoring rule named '{name}' exists already.")
