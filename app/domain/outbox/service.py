"""Recording domain events in the caller's transaction, and reading them back as a feed."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.context import Context
from app.core.cursors import cursor_value, decode_cursor, encode_cursor
from app.core.errors import ValidationFailed
from app.db.pagination import Page, PageRequest
from app.domain.outbox.entities import DomainEvent
from app.domain.outbox.repository import DomainEventRepository
from app.domain.outbox.touches import touch_by_event

FEED_CURSOR_KIND = "feed"
AFTER_LOC = ("query", "after")
UNCHANGING_FIELDS = frozenset({"version", "updated_at"})


def changes_between(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """`{"field": {"old": ..., "new": ...}}` for every field whose value differs."""
    return {
        name: {"old": before.get(name), "new": value}
        for name, value in after.items()
        if name not in UNCHANGING_FIELDS and before.get(name) != value
    }


def envelope(event: DomainEvent) -> dict[str, Any]:
    """The event as receivers see it (DESIGN §7)."""
    body: dict[str, Any] = {
        "id": str(event.id),
        "type": event.type,
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "workspace_id": str(event.workspace_id),
        "data": event.data,
    }
    if event.changes is not None:
        body["changes"] = event.changes
    return body


@dataclass(frozen=True, slots=True)
class FeedPage:
    events: list[DomainEvent]
    next_cursor: str
    has_more: bool


@dataclass(frozen=True, slots=True)
class PendingEvent:
    type: str
    subject_type: str
    subject_id: UUID
    data: dict[str, Any]
    changes: dict[str, Any] | None = None


class EventRecorder:
    """Writes domain events into the current unit of work: they commit or vanish with it."""

    def __init__(self, session: AsyncSession, context: Context) -> None:
        self.session = session
        self.context = context
        self.events = DomainEventRepository(session, context.workspace_id)
        self.actor = context.actor

    async def record_many(self, pending: list[PendingEvent]) -> None:
        """Many events in one statement, after those already recorded (batch endpoints)."""
        if not pending:
            return
        for event in pending:
            touch_by_event(
                self.session,
                self.context,
                event.type,
                event.subject_type,
                event.subject_id,
                event.data,
            )
        await self.session.flush()
        await self.events.insert_many(
            [
                {
                    "type": event.type,
                    "subject_type": event.subject_type,
                    "subject_id": event.subject_id,
                    "data": event.data,
                    "changes": event.changes,
                    "actor_kind": self.actor.kind,
                    "actor_api_key_id": self.actor.api_key_id,
                    "request_id": self.actor.request_id,
                    "workflow_run_id": self.actor.workflow_run_id,
                    "workflow_depth": self.actor.workflow_depth,
                }
                for event in pending
            ]
        )

    def record(
        self,
        event_type: str,
        *,
        subject_type: str,
        subject_id: UUID,
        data: dict[str, Any],
        changes: dict[str, Any] | None = None,
    ) -> DomainEvent:
        event = DomainEvent(
            type=event_type,
            subject_type=subject_type,
            subject_id=subject_id,
            data=data,
            changes=changes,
            actor_kind=self.actor.kind,
            actor_api_key_id=self.actor.api_key_id,
            request_id=self.actor.request_id,
            workflow_run_id=self.actor.workflow_run_id,
            workflow_depth=self.actor.workflow_depth,
        )
        self.events.add(event)
        touch_by_event(self.session, self.context, event_type, subject_type, subject_id, data)
        return event


class EventFeedService:
    def __init__(self, session: AsyncSession, context: Context) -> None:
        self.events = DomainEventRepository(session, context.workspace_id)

    async def read(self, after: str | None, limit: int) -> FeedPage:
        transaction_id, position = self._decode(after)
        rows = await self.events.feed_after(transaction_id, position, limit + 1)
        page = rows[:limit]
        if page:
            transaction_id, position = page[-1].transaction_id, page[-1].position
        return FeedPage(
            events=page,
            next_cursor=encode_cursor(FEED_CURSOR_KIND, [transaction_id, position]),
            has_more=len(rows) > limit,
        )

    async def audit_log(
        self,
        request: PageRequest,
        *,
        subject_type: str | None = None,
        subject_id: UUID | None = None,
        event_type: str | None = None,
        api_key_id: UUID | None = None,
    ) -> Page[DomainEvent]:
        return await self.events.audit_page(
            request,
            subject_type=subject_type,
            subject_id=subject_id,
            event_type=event_type,
            api_key_id=api_key_id,
        )

    @staticmethod
    def _decode(after: str | None) -> tuple[int, int]:
        if after is None:
            return (-1, -1)
        key = decode_cursor(after, FEED_CURSOR_KIND, loc=AFTER_LOC)
        if len(key) != 2 or None in key:
            raise ValidationFailed.at(AFTER_LOC, "The cursor is malformed.")
        transaction_id, position = (cursor_value(part, int, AFTER_LOC) for part in key)
        return transaction_id, position
