"""A customer's standing: the loyalty tier they hold and their lead score, kept current like
dynamic segments.

The same two paths lead here: a unit of work that changed customers evaluates them just before
it commits (`follow`), and the segment worker sweeps every customer of a workspace now and then,
since time passing changes both ("spent in the last 12 months", decaying points).

Scores first, then tiers: a tier may ask for a score ("gold: score at least 80"), so the tier
expression reads the score written a moment before in the same transaction. A scoring rule may
name neither `score` nor `tier`, and a tier not `tier`, so nothing goes round in circles.

Decay: a rule with `half_life_days` whose filter is one behaviour condition (`orders`,
`interactions`, `events`) counts `points × 0.5 ^ (age / half_life_days)`, rounded to the
nearest whole point (halves away from zero), where `age` is the time in days since the newest
row meeting the condition's `where`.
When no such row exists (e.g. `has_none`), the points count in full.
"""

import logging
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, case, literal, null, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.core.clock import utcnow
from app.core.context import Context
from app.core.errors import ValidationFailed
from app.domain.customer import schemas as customer_schemas
from app.domain.customer.entities import Customer
from app.domain.customer.repository import CustomerRepository
from app.domain.customer.service import CustomerService
from app.domain.outbox.service import EventRecorder, PendingEvent
from app.domain.outbox.touches import CUSTOMER, touch_customers
from app.domain.segment.entities import ScoringRule, Tier
from app.domain.segment.standing_repository import (
    ScoringRuleRepository,
    StandingRepository,
    StandingSettingsRepository,
    TierRepository,
)
from app.filters.compiler import compile_filter, newest_behaviour
from app.filters.fields import FieldRegistry

logger = logging.getLogger(__name__)

CHUNK = 500
SECONDS_PER_DAY = 86_400


def crossed(old: int, new: int, thresholds: Sequence[int]) -> list[int]:
    """The thresholds a score passed going from `old` to `new` (reaching one counts)."""
    if new > old:
        return [t for t in thresholds if old < t <= new]
    return [t for t in thresholds if new < t <= old]


def decayed(points: int, newest: datetime | None, half_life_days: int | None, now: datetime) -> int:
    """What a matched rule adds now (see the module's note on decay)."""
    if half_life_days is None or newest is None:
        return points
    age_days = max(0.0, (now - newest).total_seconds() / SECONDS_PER_DAY)
    exact = points * 0.5 ** (age_days / half_life_days)
    return int(math.copysign(math.floor(abs(exact) + 0.5), exact))


@dataclass(frozen=True, slots=True)
class _Rules:
    tiers: list[Tier]  # highest rank first
    rules: list[ScoringRule]
    thresholds: list[int]

    @property
    def reads(self) -> set[str]:
        found = {kind for tier in self.tiers for kind in tier.depends_on}
        return found | {kind for rule in self.rules for kind in rule.depends_on}


class Standing:
    def __init__(self, session: AsyncSession, context: Context) -> None:
        self.session = session
        self.context = context
        workspace_id = context.workspace_id
        bind = session.bind
        dialect = bind.dialect.name if bind is not None else "sqlite"
        self.tiers = TierRepository(session, workspace_id)
        self.rules = ScoringRuleRepository(session, workspace_id)
        self.settings = StandingSettingsRepository(session, workspace_id, dialect)
        self.standing = StandingRepository(session, workspace_id)
        self.customers = CustomerRepository(session, workspace_id)
        self.customer_service = CustomerService(session, context)
        self.events = EventRecorder(session, context)

    async def _load(self) -> _Rules:
        return _Rules(
            await self.tiers.ranked(), await self.rules.every(), await self.settings.thresholds()
        )

    async def follow(self, touched: Mapping[UUID, Collection[str]]) -> set[UUID]:
        """Evaluates the touched customers whose change can move a tier or score; returns
        those whose tier or score changed."""
        rules = await self._load()
        if not rules.tiers and not rules.rules:
            return set()
        reads = rules.reads
        ids = sorted(touched)
        changed: set[UUID] = set()
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            relevant = [customer_id for customer_id in chunk if reads & set(touched[customer_id])]
            if relevant:
                # The whole chunk is locked, in id order, as segment membership locks it next:
                # two units changing the same customers take their locks in the same order.
                changed |= await self._evaluate(chunk, relevant, rules)
        return changed

    async def sweep_chunk(self, after: UUID | None) -> UUID | None:
        """Evaluates the next customers after `after` (in id order); the last id handled, or
        None when the sweep is through. Customers that changed are noted as touched, so the
        segments that read tiers or scores follow in the same commit."""
        ids = await self.standing.ids_after(after, CHUNK)
        if not ids:
            return None
        changed = await self._evaluate(ids, ids, await self._load())
        touch_customers(self.session, self.context, changed, [CUSTOMER])
        return ids[-1]

    async def _evaluate(
        self, lock: Sequence[UUID], relevant: Sequence[UUID], rules: _Rules
    ) -> set[UUID]:
        customers = await self.customers.get_many(lock, lock=True)
        ids = [customer_id for customer_id in relevant if customer_id in customers]
        if not ids:
            return set()
        # Once locked, what another unit committed meanwhile is what this one compares with,
        # so a change is announced by one unit only.
        for customer_id, stored in (await self.standing.current(ids)).items():
            for name, value in stored.items():
                set_committed_value(customers[customer_id], name, value)
        now = utcnow()
        fields = await self.customer_service.filter_fields()
        score_changes = await self._scores(ids, customers, rules, fields, now)
        tier_changes = await self._tiers(ids, customers, rules, fields, now)
        await self._announce(customers, score_changes, tier_changes, rules.thresholds)
        return set(score_changes) | set(tier_changes)

    async def _scores(
        self,
        ids: list[UUID],
        customers: Mapping[UUID, Customer],
        rules: _Rules,
        fields: FieldRegistry,
        now: datetime,
    ) -> dict[UUID, tuple[int, int]]:
        """Writes new scores and breakdowns; (old, new) score of each customer that changed."""
        breakdowns: dict[UUID, list[dict[str, Any]]] = {customer_id: [] for customer_id in ids}
        if rules.rules:
            columns: list[Any] = []
            for rule in rules.rules:
                condition = self._compiled(rule.filter, fields, now, "scoring rule", rule.id)
                columns.append(case((condition, literal(1)), else_=literal(0)))
                since = (
                    newest_behaviour(rule.filter, fields, now=now, path=("filter",))
                    if rule.half_life_days
                    else None
                )
                columns.append(since if since is not None else null())
            stmt = select(Customer.id, *columns).where(
                Customer.workspace_id == self.context.workspace_id, Customer.id.in_(ids)
            )
            for row in (await self.session.execute(stmt)).all():
                for index, rule in enumerate(rules.rules):
                    if row[1 + 2 * index]:
                        newest = _aware(row[2 + 2 * index])
                        points = decayed(rule.points, newest, rule.half_life_days, now)
                        breakdowns[row[0]].append(
                            {"rule_id": str(rule.id), "name": rule.name, "points": points}
                        )
        changes: dict[UUID, tuple[int, int]] = {}
        rows = []
        for customer_id, breakdown in breakdowns.items():
            customer = customers[customer_id]
            score = sum(item["points"] for item in breakdown)
            if score == customer.score and breakdown == customer.score_breakdown:
                continue
            if score != customer.score:
                changes[customer_id] = (customer.score, score)
            rows.append({"id": customer_id, "score": score, "score_breakdown": breakdown})
            set_committed_value(customer, "score", score)
            set_committed_value(customer, "score_breakdown", breakdown)
        await self.standing.store(rows)
        return changes

    async def _tiers(
        self,
        ids: list[UUID],
        customers: Mapping[UUID, Customer],
        rules: _Rules,
        fields: FieldRegistry,
        now: datetime,
    ) -> dict[UUID, tuple[str | None, str | None]]:
        """Writes new tiers; (old, new) tier of each customer that changed."""
        if rules.tiers:
            # One CASE over the ranked tiers: the first (highest) whose filter matches wins.
            tier = case(
                *(
                    (self._compiled(t.filter, fields, now, "tier", t.id), literal(t.key))
                    for t in rules.tiers
                ),
                else_=null(),
            )
            stmt = select(Customer.id, tier).where(
                Customer.workspace_id == self.context.workspace_id, Customer.id.in_(ids)
            )
            held = {row[0]: row[1] for row in (await self.session.execute(stmt)).all()}
        else:
            held = {}
        changes: dict[UUID, tuple[str | None, str | None]] = {}
        rows = []
        for customer_id in ids:
            customer = customers[customer_id]
            new = held.get(customer_id)
            if new == customer.tier:
                continue
            since = now if new is not None else None
            changes[customer_id] = (customer.tier, new)
            rows.append({"id": customer_id, "tier": new, "tier_since": since})
            set_committed_value(customer, "tier", new)
            set_committed_value(customer, "tier_since", since)
        await self.standing.store(rows)
        return changes

    async def _announce(
        self,
        customers: Mapping[UUID, Customer],
        score_changes: Mapping[UUID, tuple[int, int]],
        tier_changes: Mapping[UUID, tuple[str | None, str | None]],
        thresholds: Sequence[int],
    ) -> None:
        pending: list[PendingEvent] = []
        snapshots: dict[UUID, dict[str, Any]] = {}

        def snapshot(customer_id: UUID) -> dict[str, Any]:
            if customer_id not in snapshots:
                snapshots[customer_id] = customer_schemas.Customer.snapshot(customers[customer_id])
            return snapshots[customer_id]

        for customer_id, (old_tier, new_tier) in tier_changes.items():
            pending.append(
                PendingEvent(
                    "customer.tier_changed",
                    "customer",
                    customer_id,
                    snapshot(customer_id),
                    {"tier": {"old": old_tier, "new": new_tier}},
                )
            )
        for customer_id, (old_score, new_score) in score_changes.items():
            if crossed(old_score, new_score, thresholds):
                pending.append(
                    PendingEvent(
                        "customer.score_changed",
                        "customer",
                        customer_id,
                        snapshot(customer_id),
                        {"score": {"old": old_score, "new": new_score}},
                    )
                )
        await self.events.record_many(pending)

    def _compiled(
        self, raw: Any, fields: FieldRegistry, now: datetime, noun: str, item_id: UUID
    ) -> ColumnElement[bool]:
        """A stored filter as SQL; one that no longer compiles (a custom field or tier it
        names was deleted) matches nobody rather than failing every write of the workspace."""
        try:
            return compile_filter(raw, fields, now=now, path=("filter",))
        except ValidationFailed:
            logger.warning("%s %s has a filter that no longer compiles", noun, item_id)
            return literal(False)


def _aware(moment: Any) -> datetime | None:
    if moment is None:
        return None
    if isinstance(moment, str):  # SQLite hands back text from an aggregate of a subquery
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    assert isinstance(moment, datetime)
    return moment
