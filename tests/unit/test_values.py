"""The fast paths of phone and email normalisation give exactly what the libraries give."""

import random
import string
from typing import Annotated, Any

import pytest
from pydantic import AfterValidator, EmailStr, TypeAdapter, ValidationError

from app.core.values import Email, normalise_email, normalise_phone, parse_phone
from app.seed import address, landline, mobile_phone

# What customer emails were validated with before the fast path.
LIBRARY_EMAIL = TypeAdapter(Annotated[EmailStr, AfterValidator(str.casefold)])
FAST_EMAIL = TypeAdapter(Email)


def outcome(function: Any, value: str) -> tuple[str, str]:
    try:
        return ("ok", function(value))
    except (ValueError, ValidationError) as error:
        if isinstance(error, ValidationError):
            return ("error", repr([(e["type"], e["msg"]) for e in error.errors()]))
        return ("error", str(error))


def phone_spellings(rng: random.Random) -> list[str]:
    """Numbers as people write them, near misses, and things the fast path must leave alone."""
    values = [mobile_phone(rng) for _ in range(500)]
    values += [landline(rng, address(rng)[0]) for _ in range(300)]
    prefixes = ["0", "+81", "+81 ", "+81-", "010", "00", "0120", "0570", "0800", "+1 ", "", "81"]
    for _ in range(4000):
        body = "".join(rng.choice(string.digits) for _ in range(rng.randint(1, 13)))
        if rng.random() < 0.5:  # hyphens in random places, sometimes doubled or at the ends
            count = min(len(body) + 1, rng.randint(1, 3))
            spots = sorted(rng.sample(range(len(body) + 1), k=count))
            for spot in reversed(spots):
                body = body[:spot] + rng.choice(["-", "-", "--", " "]) + body[spot:]
        values.append(rng.choice(prefixes) + body)
    values += [
        "090-1234-5678",
        "09012345678",
        "+819012345678",
        "+81 90-1234-5678",
        "+81 090-1234-5678",
        "090-0234-5678",
        "0120-123-456",
        "0570-123-456",
        "03-1234-5678",
        "0466-12-3456",
        "010-1-212-555-0100",
        "01012125550100",
        "050-1234-5678",
        "020-1234-5678",
        "0-90-1234-5678",
        "090-1234-567",
        "090-1234-56789",
        "+81",
        "0",
        "090",
    ]
    return values


def test_phone_fast_path_agrees_with_the_parser() -> None:
    rng = random.Random(20261123)
    differing = {
        value: (outcome(normalise_phone, value), outcome(parse_phone, value))
        for value in phone_spellings(rng)
        if outcome(normalise_phone, value) != outcome(parse_phone, value)
    }
    assert differing == {}


def test_common_japanese_forms_are_e164() -> None:
    for spelling in ("090-1234-5678", "09012345678", "+81 90-1234-5678", "+819012345678"):
        assert normalise_phone(spelling) == "+819012345678"
    assert normalise_phone("03-1234-5678") == "+81312345678"
    with pytest.raises(ValueError, match="Not a valid phone number"):
        normalise_phone("090-0234-5678")


def email_spellings(rng: random.Random) -> list[str]:
    atext = string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~"
    labels = [
        "example",
        "Example",
        "co",
        "jp",
        "JP",
        "com",
        "xn--r8jz45g",
        "a-b",
        "-ab",
        "ab-",
        "1",
        "123",
        "localhost",
        "test",
        "invalid",
        "local",
        "onion",
        "arpa",
        "x" * 63,
        "x" * 64,
        "ｅｘａｍｐｌｅ",
        "例え",
        "_dmarc",
        "",
    ]
    values = []
    for _ in range(3000):
        local = "".join(rng.choice(atext + "..") for _ in range(rng.randint(0, 70)))
        domain = ".".join(rng.choice(labels) for _ in range(rng.randint(1, 4)))
        if rng.random() < 0.05:
            domain = ".".join(["a" * 60] * rng.randint(3, 5)) + ".jp"
        values.append(f"{local}@{domain}")
    values += [
        "taro@example.jp",
        "Taro.Yamada+shop@Example.CO.JP",
        "Postmaster@example.jp",
        "a@b",
        "a@b.c",
        "a@example.123",
        "a@[127.0.0.1]",
        "a..b@example.jp",
        ".a@example.jp",
        "a.@example.jp",
        '"a b"@example.jp',
        '"ab"@example.jp',
        "Taro <taro@example.jp>",
        " taro@example.jp ",
        "taro@example.jp.",
        "taro@@example.jp",
        "taro",
        "たろう@example.jp",
        "taro@例え.jp",
        "taro@xn--r8jz45g.jp",
        "taro＠example.jp",
        "x" * 64 + "@example.jp",
        "x" * 65 + "@example.jp",
        "x" * 64 + "@" + ".".join(["a" * 63] * 3) + ".jp",
        "a@" + ".".join(["a" * 63] * 4),
    ]
    return values


def test_email_fast_path_agrees_with_email_str() -> None:
    rng = random.Random(20261123)
    differing = {
        value: (outcome(FAST_EMAIL.validate_python, value), expected)
        for value in email_spellings(rng)
        if outcome(FAST_EMAIL.validate_python, value)
        != (expected := outcome(LIBRARY_EMAIL.validate_python, value))
    }
    assert differing == {}


def test_plain_email_is_case_folded() -> None:
    assert normalise_email("Taro.Yamada+Shop@Example.CO.JP") == "taro.yamada+shop@example.co.jp"
    assert FAST_EMAIL.json_schema() == {"type": "string", "format": "email"}
