"""Shop events in (/v1/events, /v1/events/batch) and the domain event feed out (/v1/events/feed)."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import Query, Response, status
from pydantic import BaseModel, Field

from app.api.deps import ReadUnit, Unit, WriteUnit
from app.api.errors import Problem, problem_body, problem_responses
from app.api.v1.routing import resource_router
from app.api.v1.schemas.events import EventEnvelope, EventFeed
from app.api.v1.schemas.search import MAX_BATCH_ITEMS
from app.core.schemas import InputModel
from app.db.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.domain.access.scopes import Scope
from app.domain.commerce.schemas import EventIn, EventResult
from app.domain.commerce.service import IngestService, IngestStatus
from app.domain.outbox.service import EventFeedService, envelope

router = resource_router("/events", "events")


class EventBatchItemResult(BaseModel):
    index: int
    status: str = Field(description="accepted, duplicate or error")
    event_id: str | None
    customer_id: UUID | None
    order_id: UUID | None
    error: Problem | None


class EventBatchResponse(BaseModel):
    results: list[EventBatchItemResult]


class EventBatchRequest(InputModel):
    items: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_BATCH_ITEMS,
        description="Events as for POST /v1/events; each is validated and applied on its own",
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        **problem_responses(409),
        200: {"model": EventResult, "description": "Seen before: nothing was applied"},
    },
    summary="Post one shop event",
)
async def post_event(
    body: EventIn, response: Response, unit: Unit = WriteUnit(Scope.EVENTS_WRITE)
) -> EventResult:
    """Applied once per `event_id`, forever: a copy answers 200 with `"status": "duplicate"`
    and the original outcome. The customer is found by external id, email or phone, and
    created when unknown. A refund or cancellation may arrive before its order."""
    service = IngestService(unit.session, unit.context)
    [result] = await service.ingest([body.model_dump(mode="json", exclude_unset=True)], batch=False)
    if result.error is not None:
        raise result.error
    if result.status is IngestStatus.DUPLICATE:
        response.status_code = status.HTTP_200_OK
    return EventResult(
        event_id=result.event_id or body.event_id,
        status=result.status,
        customer_id=result.customer_id,
        order_id=result.order_id,
    )


@router.post("/batch", summary="Post up to 1,000 shop events")
async def post_events(
    body: EventBatchRequest, unit: Unit = WriteUnit(Scope.EVENTS_WRITE)
) -> EventBatchResponse:
    """Answers a result per event in input order; a bad event fails alone."""
    results = await IngestService(unit.session, unit.context).ingest(body.items, batch=True)
    return EventBatchResponse(
        results=[
            EventBatchItemResult.model_validate(
                {
                    "index": result.index,
                    "status": result.status,
                    "event_id": result.event_id,
                    "customer_id": result.customer_id,
                    "order_id": result.order_id,
                    "error": problem_body(result.error) if result.error else None,
                }
            )
            for result in results
        ]
    )


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
