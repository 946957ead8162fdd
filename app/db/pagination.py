"""Keyset pagination: stable order on (sort field, id), opaque cursors, any page depth."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from sqlalchemy import Select, literal, tuple_
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from app.core.cursors import decode_cursor, encode_cursor
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


def _key_from_json(value: Any, python_type: type, loc: tuple[str, ...]) -> Any:
    if value is None:
        return None
    try:
        if python_type is datetime:
            return datetime.fromisoformat(value)
        if python_type is UUID:
            return UUID(value)
        if python_type in (str, int) and type(value) is python_type:
            return value
    except (TypeError, ValueError):
        pass
    raise ValidationFailed.at(loc, "The cursor is malformed.")


def apply_page(
    stmt: Select[Any],
    request: PageRequest,
    *,
    sortable: Mapping[str, InstrumentedAttribute[Any]],
    tiebreak: InstrumentedAttribute[Any],
) -> Select[Any]:
    """Order `stmt` by the requested sort and restrict it to the rows after the cursor.

    The statement fetches one row more than the page so the caller knows whether one follows.
    """
    descending = request.sort.startswith("-")
    column = sortable.get(request.sort.removeprefix("-"))
    if column is None:
        allowed = ", ".join(sorted(f"{name}, -{name}" for name in sortable))
        raise ValidationFailed.at((request.origin, "sort"), f"Sort by one of: {allowed}.")
    key_columns: tuple[InstrumentedAttribute[Any], ...] = (
        (column,) if column is tiebreak else (column, tiebreak)
    )
    if request.cursor is not None:
        cursor_loc = (request.origin, "cursor")
        raw_key = decode_cursor(request.cursor, request.sort, loc=cursor_loc)
        if len(raw_key) != len(key_columns):
            raise ValidationFailed.at(cursor_loc, "The cursor is malformed.")
        # Typed literals, so the key is bound the way the column stores it (UUID, UTC time).
        key = tuple_(
            *(
                literal(_key_from_json(value, col.type.python_type, cursor_loc), col.type)
                for value, col in zip(raw_key, key_columns, strict=True)
            )
        )
        position: ColumnElement[bool] = (
            tuple_(*key_columns) < key if descending else tuple_(*key_columns) > key
        )
        stmt = stmt.where(position)
    ordering = [col.desc() if descending else col.asc() for col in key_columns]
    return stmt.order_by(*ordering).limit(request.limit + 1)


def make_page(
    rows: Sequence[T],
    request: PageRequest,
    *,
    sortable: Mapping[str, InstrumentedAttribute[Any]],
    tiebreak: InstrumentedAttribute[Any],
) -> Page[T]:
    if len(rows) <= request.limit:
        return Page(items=rows, next_cursor=None)
    items = rows[: request.limit]
    column = sortable[request.sort.removeprefix("-")]
    last = items[-1]
    names = [column.key] if column is tiebreak else [column.key, tiebreak.key]
    key = [_key_to_json(getattr(last, name)) for name in names]
    return Page(items=items, next_cursor=encode_cursor(request.sort, key))
