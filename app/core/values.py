"""Value types shared by the records of several domains: phones, kana, tags, addresses."""

import re
from functools import lru_cache
from typing import Annotated

import email_validator
import phonenumbers
from pydantic import AfterValidator, Field, StringConstraints, WithJsonSchema
from pydantic.networks import validate_email

from app.core.schemas import InputModel

DEFAULT_PHONE_REGION = "JP"
MAX_TAGS = 100

_KANA = re.compile(r"^[\u3040-\u30ff\uff66-\uff9f\s\u3000]+$")


def _kana(value: str) -> str:
    if not _KANA.match(value):
        raise ValueError("Write the reading in kana (hiragana or katakana).")
    return value


# How most Japanese numbers are written: the trunk 0 or +81, then the national number in digits
# and single hyphens (`090-1234-5678`, `0312345678`, `+81 90-1234-5678`). `010` is the
# international call prefix, not a trunk 0, so it is left to the library.
_JAPANESE_NUMBER = re.compile(r"(?:0(?!10)|\+81 ?)([1-9]\d*(?:-\d+)*)")
_JAPAN_COUNTRY_CODE = 81


def normalise_phone(value: str) -> str:
    """E.164 (`+819012345678`); numbers without a country code are read as Japanese.

    Parsing is most of the cost of a customer batch, so the common Japanese forms skip it: for
    them the parser's result is +81 and the digits after the prefix, and only validity, which
    the library still decides, is left to check. Anything else, or an invalid number, takes the
    parser's path (and gets its errors).
    """
    common = _JAPANESE_NUMBER.fullmatch(value)
    if common is not None:
        national = int(common.group(1).replace("-", ""))
        number = phonenumbers.PhoneNumber(
            country_code=_JAPAN_COUNTRY_CODE, national_number=national
        )
        if phonenumbers.is_valid_number(number):
            return f"+{_JAPAN_COUNTRY_CODE}{national}"
    return parse_phone(value)


def parse_phone(value: str) -> str:
    """`normalise_phone` by the library's parser alone, for any way of writing a number."""
    try:
        number = phonenumbers.parse(value, DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException as error:
        raise ValueError("Not a phone number.") from error
    if not phonenumbers.is_valid_number(number):
        raise ValueError("Not a valid phone number.")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


# An unquoted ASCII local part (email-validator's dot-atom) and an ASCII domain: almost every
# address. Those with quotes, display names, spaces or non-ASCII characters take the full path.
_ATOM = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+"
_PLAIN_EMAIL = re.compile(rf"({_ATOM}(?:\.{_ATOM})*)@([A-Za-z0-9.\-]+)")
_EMAIL_MAX_LENGTH = 254  # email-validator's limit, in UTF-8 bytes


@lru_cache(maxsize=4096)
def _email_domain(domain: str) -> tuple[str, str] | None:
    """The normalised and the ASCII form email-validator gives the domain, or None if it refuses
    it. Cached: a workspace's customers share a few hundred domains."""
    try:
        checked = email_validator.validate_email(f"x@{domain}", check_deliverability=False)
    except email_validator.EmailNotValidError:
        return None
    return checked.domain, checked.ascii_domain


def normalise_email(value: str) -> str:
    """The address as pydantic's `EmailStr` normalises it (by email-validator), case-folded.

    Validating an address is mostly email-validator splitting it character by character; for a
    plain address the local part is returned as it is and the domain's checks depend on the
    domain alone, so only the domain is validated, once. Other addresses, and those too long,
    go through `EmailStr`'s own path and get its errors.
    """
    plain = _PLAIN_EMAIL.fullmatch(value)
    if plain is not None:
        local, domain = plain.groups()
        forms = _email_domain(domain)
        if forms is not None:
            normalised = f"{local}@{forms[0]}"
            longest = max(len(value), len(normalised.encode()), len(local) + 1 + len(forms[1]))
            if longest <= _EMAIL_MAX_LENGTH:
                return normalised.casefold()
    return validate_email(value)[1].casefold()


def unique(values: list[str]) -> list[str]:
    """The values in their order, each once."""
    return list(dict.fromkeys(values))


Kana = Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(_kana)]
Email = Annotated[
    str, AfterValidator(normalise_email), WithJsonSchema({"type": "string", "format": "email"})
]
Phone = Annotated[
    str, StringConstraints(min_length=3, max_length=40), AfterValidator(normalise_phone)
]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(unique)]


class Address(InputModel):
    postal_code: Annotated[str, StringConstraints(max_length=20)] | None = None
    prefecture: Annotated[str, StringConstraints(max_length=50)] | None = None
    city: Annotated[str, StringConstraints(max_length=100)] | None = None
    line1: Annotated[str, StringConstraints(max_length=200)] | None = None
    line2: Annotated[str, StringConstraints(max_length=200)] | None = None
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = "JP"
