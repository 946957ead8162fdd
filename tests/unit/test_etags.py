import pytest

from app.core.errors import PreconditionFailed
from app.core.etags import ensure_version, etag_for, parse_if_match


def test_etag_is_the_quoted_version() -> None:
    assert etag_for(3) == '"3"'


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("*", None),
        ('"3"', frozenset({3})),
        ('"3", "4"', frozenset({3, 4})),
        ('W/"3"', frozenset()),  # weak tags never match an If-Match
        ("3", frozenset()),
        ('"abc"', frozenset()),
    ],
)
def test_parse_if_match(header: str | None, expected: frozenset[int] | None) -> None:
    assert parse_if_match(header) == expected


def test_ensure_version_accepts_current_and_absent_precondition() -> None:
    ensure_version(2, None)
    ensure_version(2, frozenset({2}))


def test_ensure_version_rejects_stale_version_with_current_etag() -> None:
    with pytest.raises(PreconditionFailed) as raised:
        ensure_version(3, frozenset({2}))
    assert raised.value.extensions["current_etag"] == '"3"'
