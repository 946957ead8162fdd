"""Opaque pagination cursors: the sort they belong to and the last row's sort key."""

import base64
import binascii
from typing import Any

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
