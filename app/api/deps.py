"""Dependencies every route shares: authentication, scopes, sessions, paging, If-Match."""

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.auth import Authenticator
from app.core.context import Actor, Context
from app.core.errors import Forbidden, Unauthorized
from app.core.etags import parse_if_match
from app.db.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageRequest
from app.db.session import Database
from app.domain.access.scopes import Scope, grants
from app.domain.access.service import Principal
from app.domain.segment.worker import segment_work_waiting


@dataclass(frozen=True, slots=True)
class Unit:
    """One request's unit of work: its session and who acts in which workspace."""

    session: AsyncSession
    context: Context
    principal: Principal


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


_bearer = HTTPBearer(auto_error=False, bearerFormat="kky_...", description="An API key")


async def authenticated(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    token = credentials.credentials if credentials is not None else None
    if not token:
        raise Unauthorized("Send an API key as 'Authorization: Bearer kky_...'.")
    principal = await get_authenticator(request).principal(token)
    if principal is None:
        raise Unauthorized("The API key is unknown, revoked or expired.")
    return principal


def _context(request: Request, principal: Principal) -> Context:
    actor = Actor(
        kind="api_key", api_key_id=principal.api_key_id, request_id=request.state.request_id
    )
    return Context(workspace_id=principal.workspace_id, actor=actor)


def _authorize(principal: Principal, scope: Scope) -> None:
    if not grants(principal.scopes, scope):
        raise Forbidden(f"This API key lacks the scope '{scope}'.", required_scope=str(scope))


def _reading(scope: Scope) -> Callable[..., AsyncIterator[Unit]]:
    async def open_read_unit(
        request: Request, principal: Annotated[Principal, Depends(authenticated)]
    ) -> AsyncIterator[Unit]:
        _authorize(principal, scope)
        async with get_database(request).reader() as session:
            yield Unit(session, _context(request, principal), principal)

    open_read_unit.required_scope = scope  # type: ignore[attr-defined]
    return open_read_unit


def _writing(scope: Scope) -> Callable[..., AsyncIterator[Unit]]:
    async def open_write_unit(
        request: Request, principal: Annotated[Principal, Depends(authenticated)]
    ) -> AsyncIterator[Unit]:
        _authorize(principal, scope)
        async with get_database(request).writer() as session:
            try:
                yield Unit(session, _context(request, principal), principal)
            except BaseException:
                await session.rollback()
                raise
            # Commit before the response goes out, so a client that saw 2xx can read its write.
            segments_changed = segment_work_waiting(session)
            await session.commit()
            request.app.state.dispatcher.wake()  # new events may be waiting for delivery
            if segments_changed:
                request.app.state.segment_worker.wake()

    open_write_unit.required_scope = scope  # type: ignore[attr-defined]
    return open_write_unit


def ReadUnit(scope: Scope) -> Any:  # noqa: N802 - reads like the type it provides
    """A read-only unit of work for a route that needs `scope`."""
    return Depends(_reading(scope), scope="function")


def WriteUnit(scope: Scope) -> Any:  # noqa: N802
    """A unit of work committed when the route returns, rolled back when it raises."""
    return Depends(_writing(scope), scope="function")


LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")]
CursorQuery = Annotated[
    str | None, Query(max_length=1000, description="`next_cursor` of the previous page")
]


def page_params(default_sort: str = "created_at") -> Callable[..., Awaitable[PageRequest]]:
    """Reads `limit`, `cursor` and `sort` (default `default_sort`) from the query string."""

    async def page_request(
        limit: LimitQuery = DEFAULT_LIMIT,
        cursor: CursorQuery = None,
        sort: Annotated[
            str,
            Query(
                max_length=100,
                pattern=r"^-?[a-z_]+(\.[a-z0-9_]+)?$",
                description="Field to sort by (custom fields as attributes.<key>); prefix with '-' "
                "for descending order",
            ),
        ] = default_sort,
    ) -> PageRequest:
        return PageRequest(limit=limit, cursor=cursor, sort=sort)

    return page_request


async def _page_in_fixed_order(
    limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None
) -> PageRequest:
    return PageRequest(limit=limit, cursor=cursor)


PageDep = Annotated[PageRequest, Depends(page_params())]
# A list in an order of its own (a timeline: newest first): `limit` and `cursor`, no `sort`.
FixedOrderPageDep = Annotated[PageRequest, Depends(_page_in_fixed_order)]


async def expected_versions(
    if_match: Annotated[
        str | None,
        Header(description="The ETag you read; the write answers 412 if it is no longer current"),
    ] = None,
) -> frozenset[int] | None:
    return parse_if_match(if_match)


IfMatchDep = Annotated[frozenset[int] | None, Depends(expected_versions)]
