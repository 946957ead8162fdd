"""The shapes of customers and custom field definitions, as clients write and read them."""

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar
from uuid import UUID

import phonenumbers
from pydantic import AfterValidator, EmailStr, Field, StringConstraints, field_validator

from app.core.clock import utcnow
from app.core.schemas import InputModel, Name, ResourceModel, UpdateModel

DEFAULT_PHONE_REGION = "JP"
MAX_IDENTITIES = 20
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


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


PersonName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Kana = Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(_kana)]
Email = Annotated[EmailStr, AfterValidator(str.casefold)]
Phone = Annotated[
    str, StringConstraints(min_length=3, max_length=40), AfterValidator(normalise_phone)
]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Source = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,49}$")]
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Channel = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,29}$")]
Emails = Annotated[list[Email], Field(max_length=MAX_IDENTITIES), AfterValidator(_unique)]
Phones = Annotated[list[Phone], Field(max_length=MAX_IDENTITIES), AfterValidator(_unique)]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(_unique)]


class Address(InputModel):
    postal_code: Annotated[str, StringConstraints(max_length=20)] | None = None
    prefecture: Annotated[str, StringConstraints(max_length=50)] | None = None
    city: Annotated[str, StringConstraints(max_length=100)] | None = None
    line1: Annotated[str, StringConstraints(max_length=200)] | None = None
    line2: Annotated[str, StringConstraints(max_length=200)] | None = None
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = "JP"


class ConsentInput(InputModel):
    granted: bool
    at: datetime | None = Field(default=None, description="When it was given; now if omitted")
    source: Annotated[str, StringConstraints(max_length=100)] | None = None


def _not_in_future(value: date | None) -> date | None:
    if value is not None and value > utcnow().date():
        raise ValueError("A birthday cannot be in the future.")
    return value


Birthday = Annotated[date, AfterValidator(_not_in_future)]


class CustomerWrite(InputModel):
    """Fields a client may set on a customer (all optional on create, as in the read shape)."""

    family_name: PersonName | None = None
    given_name: PersonName | None = None
    family_name_kana: Kana | None = None
    given_name_kana: Kana | None = None
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None, description="Shown name; defaults to family and given name"
    )
    emails: Emails | None = Field(default=None, description="The first is the primary one")
    phones: Phones | None = Field(default=None, description="Normalised to E.164; region JP")
    external_ids: dict[Source, ExternalId | None] | None = Field(
        default=None,
        max_length=MAX_IDENTITIES,
        description="Source → id, unique per workspace and source (null removes one on update)",
    )
    address: Address | None = None
    birthday: Birthday | None = None
    company_id: UUID | None = None
    owner_id: UUID | None = None
    lifecycle_stage: Annotated[str, StringConstraints(max_length=50)] | None = None
    tags: Tags | None = None
    consents: dict[Channel, ConsentInput | None] | None = None
    attributes: dict[str, Any] | None = Field(
        default=None, description="Custom field values, validated against /v1/fields"
    )


class CustomerCreate(CustomerWrite):
    @field_validator("consents", "external_ids")
    @classmethod
    def _nothing_to_remove(cls, values: dict[str, Any] | None) -> dict[str, Any] | None:
        if values and any(value is None for value in values.values()):
            raise ValueError("A new customer has nothing to remove; omit the key.")
        return values


class CustomerUpdate(CustomerWrite, UpdateModel):
    """PATCH: lists replace; `external_ids`, `consents` and `attributes` merge (null removes)."""

    nullable: ClassVar[frozenset[str]] = frozenset(
        {
            "family_name",
            "given_name",
            "family_name_kana",
            "given_name_kana",
            "display_name",
            "address",
            "birthday",
            "company_id",
            "owner_id",
            "lifecycle_stage",
        }
    )


class Consent(ResourceModel):
    granted: bool
    at: datetime
    source: str | None


class Customer(ResourceModel):
    id: UUID
    family_name: str | None
    given_name: str | None
    family_name_kana: str | None
    given_name_kana: str | None
    display_name: str
    emails: list[str]
    phones: list[str]
    external_ids: dict[str, str]
    address: dict[str, Any] | None
    birthday: date | None
    company_id: UUID | None
    owner_id: UUID | None
    lifecycle_stage: str | None
    tags: list[str]
    consents: dict[str, Consent]
    attributes: dict[str, Any]
    metrics: dict[str, Any] = Field(
        default_factory=dict, description="Read-only purchase figures; empty until orders exist"
    )
    version: int
    created_at: datetime
    updated_at: datetime


class CustomerMerge(InputModel):
    other_id: UUID = Field(description="The customer merged into this one; it stops existing")


class FieldObject(StrEnum):
    CUSTOMER = "customer"
    COMPANY = "company"
    DEAL = "deal"


class FieldType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    ENUM = "enum"
    MULTI_ENUM = "multi_enum"
    MONEY = "money"


FieldKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Option = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Options = Annotated[list[Option], Field(min_length=1, max_length=500), AfterValidator(_unique)]


class FieldDefinitionCreate(InputModel):
    object: FieldObject
    key: FieldKey
    label: Name
    type: FieldType
    options: Options | None = Field(default=None, description="Required for enum and multi_enum")
    required: bool = False


class FieldDefinitionUpdate(UpdateModel):
    """The key, object and type of a field are fixed; its label, options and rule may change."""

    nullable: ClassVar[frozenset[str]] = frozenset({"options"})
    label: Name | None = None
    options: Options | None = None
    required: bool | None = None


class FieldDefinition(ResourceModel):
    id: UUID
    object: str
    key: str
    label: str
    type: str
    options: list[str] | None
    required: bool
    version: int
    created_at: datetime
    updated_at: datetime
