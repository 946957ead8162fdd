"""Response details shared by routes: list envelopes with Link headers, ETags, Location."""

from collections.abc import Callable
from typing import TypeVar

from fastapi import Request, Response

from app.api.v1.schemas.common import ListResponse
from app.core.etags import etag_for
from app.db.pagination import Page

EntityT = TypeVar("EntityT")
ItemT = TypeVar("ItemT")


def list_response(
    request: Request,
    response: Response,
    page: Page[EntityT],
    render: Callable[[EntityT], ItemT],
) -> ListResponse[ItemT]:
    if page.next_cursor is not None:
        next_url = request.url.include_query_params(cursor=page.next_cursor)
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return ListResponse[ItemT](
        data=[render(item) for item in page.items], next_cursor=page.next_cursor
    )


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag_for(version)


def created_at_location(response: Response, request: Request, resource_id: object) -> None:
    """201 Location for a resource created by POST to its collection."""
    response.headers["Location"] = f"{request.url.path.rstrip('/')}/{resource_id}"
