"""The timeline envelope shared by customers and companies."""

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import Request, Response
from pydantic import BaseModel, Field

from app.domain.interaction.timeline import TimelinePage


class TimelineItem(BaseModel):
    kind: str = Field(
        description="interaction, order, event (shop events), deal, segment or change"
    )
    id: UUID
    type: str = Field(examples=["call", "order.completed", "page.viewed", "customer.updated"])
    occurred_at: datetime
    data: dict[str, Any]


class Timeline(BaseModel):
    data: list[TimelineItem]
    next_cursor: str | None


def timeline_response(request: Request, response: Response, page: TimelinePage) -> Timeline:
    if page.next_cursor is not None:
        next_url = request.url.include_query_params(cursor=page.next_cursor)
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return Timeline(
        data=[
            TimelineItem(
                kind=entry.kind,
                id=entry.id,
                type=entry.type,
                occurred_at=entry.occurred_at,
                data=entry.data,
            )
            for entry in page.entries
        ],
        next_cursor=page.next_cursor,
    )
