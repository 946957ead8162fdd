"""The shapes of companies, as clients write and read them."""

from datetime import datetime
from typing import Annotated, Any, ClassVar
from uuid import UUID

from pydantic import AfterValidator, Field, StringConstraints

from app.core.schemas import InputModel, Name, ResourceModel, UpdateModel
from app.core.values import Address, Kana, Phone, Tags

Domain = Annotated[
    str,
    StringConstraints(
        max_length=253,
        pattern=r"^([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$",
    ),
    AfterValidator(str.lower),
]
Industry = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class CompanyWrite(InputModel):
    name_kana: Kana | None = None
    domain: Domain | None = Field(default=None, examples=["example.co.jp"])
    industry: Industry | None = None
    employee_count: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    phone: Phone | None = None
    address: Address | None = None
    owner_id: UUID | None = None
    tags: Tags | None = None
    attributes: dict[str, Any] | None = Field(
        default=None, description="Custom field values, validated against /v1/fields"
    )


class CompanyCreate(CompanyWrite):
    name: Name


class CompanyUpdate(CompanyWrite, UpdateModel):
    nullable: ClassVar[frozenset[str]] = frozenset(
        {"name_kana", "domain", "industry", "employee_count", "phone", "address", "owner_id"}
    )
    name: Name | None = None


class Company(ResourceModel):
    id: UUID
    name: str
    name_kana: str | None
    domain: str | None
    industry: str | None
    employee_count: int | None
    phone: str | None
    address: dict[str, Any] | None
    owner_id: UUID | None
    tags: list[str]
    attributes: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime
