"""The domain event feed: /v1/events/feed, for scripts that poll instead of taking webhooks."""

from typing import Annotated

from fastapi import Query

from app.api.deps import ReadUnit, Unit
from app.api.v1.routing import resource_router
from app.api.v1.schemas.events import EventEnvelope, EventFeed
from app.db.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.domain.access.scopes import Scope
from app.domain.outbox.service import EventFeedService, envelope

router = resource_router("/events", "events")


@router.get(
    "/feed",
    summary="Read domain events in order",
    description=(
        "Every committed change of the workspace, oldest first. Store `next_cursor` and pass it "
        "as `after` to continue; an event is never skipped, even when transactions commit out "
        "of order."
    ),
)
async def read_event_feed(
    after: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    unit: Unit = ReadUnit(Scope.EVENTS_READ),
) -> EventFeed:
    page = await EventFeedService(unit.session, unit.context).read(after, limit)
    return EventFeed(
        data=[EventEnvelope.model_validate(envelope(event)) for event in page.events],
        next_cursor=page.next_cursor,
        has_more=page.has_more,
    )
