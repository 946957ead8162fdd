"""The fields a deal filter may name."""

from collections.abc import Sequence

from app.domain.customer.entities import FieldDefinition
from app.domain.customer.filters import attribute_field
from app.domain.pipeline.entities import Deal
from app.filters.fields import Field, FieldRegistry, Kind


def deal_fields(dialect: str, definitions: Sequence[FieldDefinition]) -> FieldRegistry:
    fields = {
        "id": Field(Kind.UUID, Deal.id),
        "name": Field(Kind.TEXT, Deal.name),
        "pipeline_id": Field(Kind.UUID, Deal.pipeline_id),
        "stage_id": Field(Kind.UUID, Deal.stage_id),
        "status": Field(Kind.ENUM, Deal.status, options=frozenset({"open", "won", "lost"})),
        "amount": Field(Kind.NUMBER, Deal.amount),
        "currency": Field(Kind.TEXT, Deal.currency),
        "customer_id": Field(Kind.UUID, Deal.customer_id),
        "company_id": Field(Kind.UUID, Deal.company_id),
        "owner_id": Field(Kind.UUID, Deal.owner_id),
        "expected_close_date": Field(Kind.DATE, Deal.expected_close_date),
        "source": Field(Kind.TEXT, Deal.source),
        "lost_reason": Field(Kind.TEXT, Deal.lost_reason),
        "stage_changed_at": Field(Kind.DATETIME, Deal.stage_changed_at),
        "closed_at": Field(Kind.DATETIME, Deal.closed_at),
        "created_at": Field(Kind.DATETIME, Deal.created_at),
        "updated_at": Field(Kind.DATETIME, Deal.updated_at),
    }
    by_key = {definition.key: definition for definition in definitions}

    def attribute(key: str) -> Field | None:
        definition = by_key.get(key)
        return attribute_field(Deal.attributes, definition, dialect) if definition else None

    return FieldRegistry(fields, prefixed={"attributes": attribute})
