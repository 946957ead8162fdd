"""The shapes of customers and custom field definitions, as clients write and read them."""

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar
from uuid import UUID

from pydantic import AfterValidator, Field, StringConstraints, field_validator

from app.core.clock import utcnow
from app.core.schemas import InputModel, Name, ResourceModel, UpdateModel
from app.core.values import Address, Email, Kana, Phone, Tags, unique
from app.domain.access.schemas import User
from app.domain.company.schemas import Company

MAX_IDENTITIES = 20

PersonName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Source = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,49}$")]
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Channel = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,29}$")]
Emails = Annotated[list[Email], Field(max_length=MAX_IDENTITIES), AfterValidator(unique)]
Phones = Annotated[list[Phone], Field(max_length=MAX_IDENTITIES), AfterValidator(unique)]


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


class RfmScores(ResourceModel):
    """Scores 1–5 by quintiles of the workspace's customers (5 is best); null before a first
    order or before the first computation."""

    recency: int | None
    frequency: int | None
    monetary: int | None
    group: str | None = Field(description="champions, loyal, at_risk, hibernating, ...")


class CustomerMetrics(ResourceModel):
    """Kept current by every order, refund and cancellation; read-only. The RFM scores, churn
    risk and predictions are recomputed per workspace by the worker (`insights_computed_at`)."""

    order_count: int = Field(description="Orders neither cancelled nor fully refunded")
    total_spent: int = Field(description="Net of refunds, in the minor unit of `currency`")
    currency: str | None
    first_order_at: datetime | None
    last_order_at: datetime | None
    average_order_value: int
    average_days_between_orders: float | None
    favourite_category: str | None
    favourite_channel: str | None
    rfm: RfmScores
    churn_risk: bool | None = Field(
        description="Past twice the usual interval between orders (see /v1/insights/churn-risk)"
    )
    predicted_ltv: int | None = Field(
        description="Expected spend in the next 12 months (BG/NBD × Gamma-Gamma), in `currency`"
    )
    probability_alive: float | None = Field(description="BG/NBD probability of being active")
    insights_computed_at: datetime | None


class ScoreItem(ResourceModel):
    rule_id: UUID
    name: str
    points: int = Field(description="What the rule adds now, after decay")


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
    metrics: CustomerMetrics
    tier: str | None = Field(description="Key of the loyalty tier held now (read-only)")
    tier_since: datetime | None = Field(description="Since when the tier is held (read-only)")
    score: int = Field(description="Lead score: the sum of the breakdown (read-only)")
    score_breakdown: list[ScoreItem] = Field(
        description="The scoring rules the customer matches and their points (read-only)"
    )
    version: int
    created_at: datetime
    updated_at: datetime
    company: Company | None = Field(
        default=None, description="The company itself, only with ?expand=company"
    )
    owner: User | None = Field(
        default=None, description="The owner itself, only with ?expand=owner"
    )


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
Options = Annotated[list[Option], Field(min_length=1, max_length=500), AfterValidator(unique)]


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
