import pytest

from app.core.cursors import decode_cursor, encode_cursor
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
