"""Keyset pagination: stable order on (sort field, id), opaque cursors, any page depth."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any, Generic, TypeVar
from uuid import UUID

from sqlalchemy import Select, and_, literal, or_, tuple_
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from app.core.cursors import cursor_value, decode_cursor, encode_cursor
from app.core.errors import ValidationFailed

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    sort: str = "created_at"
    origin: str = "query"  # where the client gave these: "query" or "body", for error paths


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


def _key_to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


@dataclass(frozen=True, slots=True)
class SortKey:
    """Something a list can be ordered by: its SQL expression and its value on a fetched row.

    A nullable key sorts its empty rows last in either direction.
    """

    expression: Any
    value_of: Callable[[Any], Any]
    python_type: type
    nullable: bool = False


def column_key(column: InstrumentedAttribute[Any]) -> SortKey:
    """A NOT NULL column as a sort key."""
    return SortKey(column, attrgetter(column.key), column.type.python_type)


def _after(
    key: SortKey,
    value: Any,
    tiebreak: InstrumentedAttribute[Any],
    last_id: Any,
    descending: bool,
) -> ColumnElement[bool]:
    """Rows after (value, last_id) in the order (key, tiebreak), nulls last."""
    bound_value = literal(value, key.expression.type)
    bound_id = literal(last_id, tiebreak.type)
    if not key.nullable:
        columns, bounds = tuple_(key.expression, tiebreak), tuple_(bound_value, bound_id)
        return columns < bounds if descending else columns > bounds
    later_id = tiebreak < bound_id if descending else tiebreak > bound_id
    if value is None:
        return and_(key.expression.is_(None), later_id)
    beyond = key.expression < bound_value if descending else key.expression > bound_value
    return or_(
        key.expression.is_(None),
        beyond,
        and_(key.expression == bound_value, later_id),
    )


def apply_page(
    stmt: Select[Any],
    request: PageRequest,
    *,
    sortable: Mapping[str, SortKey],
    tiebreak: InstrumentedAttribute[Any],
) -> Select[Any]:
    """Order `stmt` by the requested sort and restrict it to the rows after the cursor.

    The statement fetches one row more than the page so the caller knows whether one follows.
    """
    descending = request.sort.startswith("-")
    key = sortable.get(request.sort.removeprefix("-"))
    if key is None:
        allowed = ", ".join(sorted(f"{name}, -{name}" for name in sortable))
        raise ValidationFailed.at((request.origin, "sort"), f"Sort by one of: {allowed}.")
    by_tiebreak_only = key.expression is tiebreak
    if request.cursor is not None:
        cursor_loc = (request.origin, "cursor")
        raw_key = decode_cursor(request.cursor, request.sort, loc=cursor_loc)
        if len(raw_key) != (1 if by_tiebreak_only else 2):
            raise ValidationFailed.at(cursor_loc, "The cursor is malformed.")
        last_id = cursor_value(raw_key[-1], tiebreak.type.python_type, cursor_loc)
        if by_tiebreak_only:
            bound = literal(last_id, tiebreak.type)
            stmt = stmt.where(tiebreak < bound if descending else tiebreak > bound)
        else:
            value = cursor_value(raw_key[0], key.python_type, cursor_loc)
            if value is None and not key.nullable:
                raise ValidationFailed.at(cursor_loc, "The cursor is malformed.")
            stmt = stmt.where(_after(key, value, tiebreak, last_id, descending))
    ordering = [] if by_tiebreak_only else ([key.expression.is_(None)] if key.nullable else [])
    if not by_tiebreak_only:
        ordering.append(key.expression.desc() if descending else key.expression.asc())
    ordering.append(tiebreak.desc() if descending else tiebreak.asc())
    return stmt.order_by(*ordering).limit(request.limit + 1)


def make_page(
    rows: Sequence[T],
    request: PageRequest,
    *,
    sortable: Mapping[str, SortKey],
    tiebreak: InstrumentedAttribute[Any],
) -> Page[T]:
    if len(rows) <= request.limit:
        return Page(items=rows, next_cursor=None)
    items = rows[: request.limit]
    key = sortable[request.sort.removeprefix("-")]
    last = items[-1]
    last_id = _key_to_json(getattr(last, tiebreak.key))
    values = (
        [last_id] if key.expression is tiebreak else [_key_to_json(key.value_of(last)), last_id]
    )
    return Page(items=items, next_cursor=encode_cursor(request.sort, values))
