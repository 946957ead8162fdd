"""The router every v1 resource module starts from, so shared rules are declared once."""

from fastapi import APIRouter

from app.api.errors import problem_responses

API_PREFIX = "/v1"


def resource_router(path: str, tag: str) -> APIRouter:
    """A router for `/v1{path}` declaring the problems any operation can answer.

    Each route keeps its full path (not nested under a /v1 router) so that logs and metrics
    label requests by their complete route template.
    """
    return APIRouter(
        prefix=API_PREFIX + path,
        tags=[tag],
        responses=problem_responses(400, 401, 403, 413, 415, 422, 429, 500, 503),
    )
