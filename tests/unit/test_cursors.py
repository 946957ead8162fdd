from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from app.core.cursors import CURSOR_LOC, cursor_value, decode_cursor, encode_cursor
from app.core.errors import ValidationFailed


def test_cursor_round_trips_its_key() -> None:
    token = encode_cursor("-created_at", ["2026-11-23T00:00:00+00:00", "0192"])
    assert decode_cursor(token, "-created_at") == ["2026-11-23T00:00:00+00:00", "0192"]


def test_cursor_is_opaque_url_safe_text() -> None:
    token = encode_cursor("name", ["山田", 1])
    assert token.isascii()
    assert not set(token) & set("+/=")


def test_cursor_of_another_sort_is_rejected() -> None:
    token = encode_cursor("name", ["a"])
    with pytest.raises(ValidationFailed):
        decode_cursor(token, "-name")


@pytest.mark.parametrize("token", ["", "%%%", "bm90IGpzb24", "e30", "WyJuYW1lIl0"])
def test_malformed_cursors_are_validation_errors(token: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        decode_cursor(token, "created_at")
    assert raised.value.extensions["errors"][0]["loc"] == ["query", "cursor"]


@pytest.mark.parametrize(
    ("value", "python_type", "expected"),
    [
        ("2026-11-23T00:00:00+00:00", datetime, datetime(2026, 11, 23, tzinfo=UTC)),
        (
            "01a20ae5-c7cd-7503-899c-361ced608031",
            UUID,
            UUID("01a20ae5-c7cd-7503-899c-361ced608031"),
        ),
        (2**63 - 1, int, 2**63 - 1),
        (3, float, 3),
        ("", str, ""),
        (False, bool, False),
        (None, int, None),
    ],
)
def test_cursor_values_of_their_type_are_read(value: Any, python_type: type, expected: Any) -> None:
    assert cursor_value(value, python_type, CURSOR_LOC) == expected


@pytest.mark.parametrize(
    ("value", "python_type"),
    [
        ("2026-11-23T00:00:00", datetime),  # no zone: stored times all have one
        (20261123, datetime),
        ("not-an-id", UUID),
        (123, UUID),
        ([], UUID),
        (2**63, int),
        (-(2**63) - 1, int),
        (True, int),
        ("1", int),
        (float("inf"), float),
        (1e300, float),
        (1, str),
        (1, bool),
    ],
)
def test_forged_cursor_values_are_validation_errors(value: Any, python_type: type) -> None:
    with pytest.raises(ValidationFailed):
        cursor_value(value, python_type, CURSOR_LOC)
