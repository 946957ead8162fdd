"""Opaque pagination cursors: the sort they belong to and the last row's sort key."""

import base64
import binascii
import contextlib
import math
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from app.core.errors import ValidationFailed

CURSOR_LOC = ("query", "cursor")


def encode_cursor(sort: str, key: list[Any]) -> str:
    raw = orjson.dumps([sort, *key])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(token: str, sort: str, loc: tuple[str, ...] = CURSOR_LOC) -> list[Any]:
    """The key a cursor carries, checked to belong to `sort`; 422 at `loc` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        decoded = orjson.loads(raw)
    except (binascii.Error, ValueError) as error:
        raise ValidationFailed.at(loc, "The cursor is malformed.") from error
    if not isinstance(decoded, list) or not decoded or decoded[0] != sort:
        raise ValidationFailed.at(loc, "The cursor does not belong to this list or sort order.")
    return decoded[1:]


# Keys are compared with columns of at most 64 bits; a larger number is no row's position.
_INT64 = range(-(2**63), 2**63)


def cursor_value(value: Any, python_type: type, loc: tuple[str, ...]) -> Any:
    """A cursor's key value as `python_type` (None stays None); 422 for anything no page could
    have handed out: cursors are not signed, so a client can send any JSON in one."""
    if value is None:
        return None
    parsed: Any = None
    if python_type is datetime and isinstance(value, str):
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(value)
        if parsed is not None and parsed.tzinfo is None:
            parsed = None  # every stored time has a zone; a naive one cannot be compared
    elif python_type is UUID and isinstance(value, str):
        with contextlib.suppress(ValueError):
            parsed = UUID(value)
    elif python_type is float and type(value) in (int, float):
        parsed = value if math.isfinite(value) and abs(value) < 2**63 else None
    elif python_type is int and type(value) is int:
        parsed = value if value in _INT64 else None
    elif python_type in (str, bool) and type(value) is python_type:
        parsed = value
    if parsed is None:
        raise ValidationFailed.at(loc, "The cursor is malformed.")
    return parsed
