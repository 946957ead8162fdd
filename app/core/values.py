"""Value types shared by the records of several domains: phones, kana, tags, addresses."""

import re
from typing import Annotated

import phonenumbers
from pydantic import AfterValidator, EmailStr, Field, StringConstraints

from app.core.schemas import InputModel

DEFAULT_PHONE_REGION = "JP"
MAX_TAGS = 100

_KANA = re.compile(r"^[\u3040-\u30ff\uff66-\uff9f\s\u3000]+$")


def _kana(value: str) -> str:
    if not _KANA.match(value):
        raise ValueError("Write the reading in kana (hiragana or katakana).")
    return value


def normalise_phone(value: str) -> str:
    """E.164 (`+819012345678`); numbers without a country code are read as Japanese."""
    try:
        number = phonenumbers.parse(value, DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException as error:
        raise ValueError("Not a phone number.") from error
    if not phonenumbers.is_valid_number(number):
        raise ValueError("Not a valid phone number.")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def unique(values: list[str]) -> list[str]:
    """The values in their order, each once."""
    return list(dict.fromkeys(values))


Kana = Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(_kana)]
Email = Annotated[EmailStr, AfterValidator(str.casefold)]
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
