"""The fields a company filter may name."""

from collections.abc import Sequence

from app.domain.company.entities import Company
from app.domain.customer.entities import FieldDefinition
from app.domain.customer.filters import attribute_field, json_list
from app.filters.fields import Field, FieldRegistry, Kind


def company_fields(dialect: str, definitions: Sequence[FieldDefinition]) -> FieldRegistry:
    fields = {
        "id": Field(Kind.UUID, Company.id),
        "created_at": Field(Kind.DATETIME, Company.created_at),
        "updated_at": Field(Kind.DATETIME, Company.updated_at),
        "name": Field(Kind.TEXT, Company.name),
        "name_kana": Field(Kind.TEXT, Company.name_kana),
        "domain": Field(Kind.TEXT, Company.domain),
        "industry": Field(Kind.TEXT, Company.industry),
        "employee_count": Field(Kind.NUMBER, Company.employee_count),
        "owner_id": Field(Kind.UUID, Company.owner_id),
        "tags": json_list(Company.tags, dialect, None),
        "address.prefecture": Field(Kind.TEXT, Company.address["prefecture"].as_string()),
        "address.city": Field(Kind.TEXT, Company.address["city"].as_string()),
    }
    by_key = {definition.key: definition for definition in definitions}

    def attribute(key: str) -> Field | None:
        definition = by_key.get(key)
        return attribute_field(Company.attributes, definition, dialect) if definition else None

    return FieldRegistry(fields, prefixed={"attributes": attribute})
