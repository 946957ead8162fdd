"""Every error as RFC 9457 problem+json: one renderer, one handler per exception family."""

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError, InterfaceError, InternalError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.core.errors import (
    PROBLEM_TYPE_PREFIX,
    AppError,
    Conflict,
    ServiceUnavailable,
    ValidationFailed,
)

PROBLEM_MEDIA_TYPE = "application/problem+json"
logger = logging.getLogger("kokyaku.api")

_HTTP_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    500: ("internal-error", "Internal server error"),
}


class ProblemError(BaseModel):
    loc: list[str | int]
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details; some problems add members such as `existing_id`."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemError] | None = None


def problem_response(
    status: int,
    *,
    slug: str,
    title: str,
    detail: str,
    extensions: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = {"type": PROBLEM_TYPE_PREFIX + slug, "title": title, "status": status, "detail": detail}
    if extensions:
        body.update(extensions)
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def problem_body(error: AppError) -> dict[str, Any]:
    """The problem document of `error`, e.g. for one item of a batch answer."""
    return {
        "type": error.type,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        **error.extensions,
    }


def app_error_response(error: AppError) -> Response:
    return Response(
        orjson.dumps(problem_body(error)),
        status_code=error.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=error.headers(),
    )


def internal_error_response() -> Response:
    slug, title = _HTTP_SLUGS[500]
    return problem_response(
        500, slug=slug, title=title, detail="The server failed; the error has been logged."
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries declaring problem+json bodies for these statuses."""
    schema = {"$ref": "#/components/schemas/Problem"}
    return {
        status: {
            "description": _describe(status),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}},
        }
        for status in statuses
    }


def _describe(status: int) -> str:
    descriptions = {
        400: "Malformed request",
        401: "Missing, unknown, revoked or expired API key",
        403: "The API key lacks the scope this operation needs",
        404: "No such resource in this workspace",
        409: "Conflict with the current state (a duplicate, or a request in flight)",
        412: "If-Match names a version that is not current",
        413: "Request body over the size limit",
        415: "The body is not JSON",
        422: "Invalid input; `errors` locates each problem",
        429: "Rate limit exceeded; see Retry-After",
        500: "Server failure",
        503: "Temporarily unavailable; retry later",
    }
    return descriptions[status]


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _handle_app_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _handle_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _handle_http)  # type: ignore[arg-type]
    app.add_exception_handler(StaleDataError, _handle_stale)  # type: ignore[arg-type]
    app.add_exception_handler(OperationalError, _handle_database_unavailable)  # type: ignore[arg-type]
    # A connection the server closed (restart, failover, terminated backend) surfaces as an
    # InterfaceError, or as another driver error flagged as a disconnect; the pool drops it and
    # the next request gets a fresh one.
    app.add_exception_handler(InterfaceError, _handle_database_unavailable)  # type: ignore[arg-type]
    app.add_exception_handler(InternalError, _handle_database_unavailable)  # type: ignore[arg-type]
    app.add_exception_handler(DBAPIError, _handle_database_error)  # type: ignore[arg-type]
    app.add_exception_handler(OSError, _handle_database_unavailable)  # type: ignore[arg-type]


async def _handle_app_error(_request: Request, error: AppError) -> Response:
    return app_error_response(error)


async def _handle_validation(_request: Request, error: RequestValidationError) -> Response:
    return app_error_response(ValidationFailed.from_errors(error.errors()))


async def _handle_http(_request: Request, error: StarletteHTTPException) -> Response:
    slug, title = _HTTP_SLUGS.get(error.status_code, ("http-error", "HTTP error"))
    detail = error.detail if isinstance(error.detail, str) else title
    return problem_response(
        error.status_code, slug=slug, title=title, detail=detail, headers=error.headers
    )


async def _handle_stale(_request: Request, _error: StaleDataError) -> Response:
    return app_error_response(
        Conflict("The resource was changed by another request at the same time; retry.")
    )


# SQLSTATE classes of a PostgreSQL that cannot serve now rather than of a statement it refused:
# 08 connection exception, 53 insufficient resources (disk full, out of memory, too many
# connections), 57 operator intervention (shutting down, starting up, statement cancelled).
# The driver reports a server that refuses new connections while it stops or starts as a
# plain database error, not as a disconnect.
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "53", "57"})


def _server_unavailable(error: DBAPIError) -> bool:
    sqlstate = getattr(error.orig, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES


async def _handle_database_error(request: Request, error: DBAPIError) -> Response:
    if error.connection_invalidated or _server_unavailable(error):
        return await _handle_database_unavailable(request, error)
    logger.error("database error", exc_info=error)  # a bug: a statement the database refused
    return internal_error_response()


async def _handle_database_unavailable(_request: Request, error: DBAPIError | OSError) -> Response:
    logger.warning("database unavailable: %s", type(error).__name__)
    return app_error_response(
        ServiceUnavailable("The database is unavailable or busy; retry shortly.")
    )
