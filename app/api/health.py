"""Liveness, readiness and Prometheus metrics, outside /v1 and without authentication."""

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from app.api.deps import get_database
from app.api.errors import problem_responses
from app.core.errors import ServiceUnavailable
from app.db.migrations import current_revisions, head_revisions

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


@router.get("/healthz", summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="The database is reachable and migrated to the head revision",
    responses=problem_responses(503),
)
async def readyz(request: Request) -> Health:
    try:
        async with get_database(request).engine.connect() as connection:
            current = await current_revisions(connection)
    except Exception as error:
        raise ServiceUnavailable("The database is not reachable.") from error
    if current != head_revisions():
        raise ServiceUnavailable("The database schema is not at the current migration; migrate.")
    return Health(status="ready")


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
