"""The router every v1 resource module starts from, so shared rules are declared once."""

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Depends, Request

from app.api.deps import require_json
from app.api.errors import problem_responses

API_PREFIX = "/v1"


def resource_router(
    path: str, tag: str, *, body_check: Callable[[Request], Awaitable[None]] = require_json
) -> APIRouter:
    """A router for `/v1{path}` declaring the problems any operation can answer; its request
    bodies must pass `body_check` (JSON, unless it uploads files).

    Each route keeps its full path (not nested under a /v1 router) so that logs and metrics
    label requests by their complete route template.
    """
    return APIRouter(
        prefix=API_PREFIX + path,
        tags=[tag],
        dependencies=[Depends(body_check)],
        responses=problem_responses(401, 403, 413, 415, 422, 429, 500, 503),
    )
