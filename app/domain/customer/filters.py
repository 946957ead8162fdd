"""The fields a customer filter may name, for lists, search, segments and workflows."""

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import and_, exists, select
from sqlalchemy.sql.elements import ColumnElement

from app.core.values import normalise_phone
from app.db.dialect import json_array_holds, json_array_non_empty
from app.db.pagination import SortKey
from app.domain.company.entities import Company
from app.domain.customer.behaviours import behaviour_fields
from app.domain.customer.entities import Customer, CustomerIdentity, FieldDefinition
from app.domain.customer.identity import EMAIL, PHONE
from app.domain.customer.schemas import FieldType
from app.domain.insight.rfm import RfmGroup
from app.domain.segment.entities import SegmentMember
from app.filters.fields import Expression, Field, FieldRegistry, Kind

# Keys that may appear in a JSON path: those our schemas allow for sources and channels.
_JSON_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,49}$")
_TEXT_COLUMNS = ("family_name", "given_name", "family_name_kana", "given_name_kana", "display_name")
_METRICS: Mapping[str, tuple[str, Kind]] = {
    "order_count": ("order_count", Kind.NUMBER),
    "total_spent": ("total_spent", Kind.NUMBER),
    "currency": ("spent_currency", Kind.TEXT),
    "first_order_at": ("first_order_at", Kind.DATETIME),
    "last_order_at": ("last_order_at", Kind.DATETIME),
    "average_order_value": ("average_order_value", Kind.NUMBER),
    "average_days_between_orders": ("average_days_between_orders", Kind.NUMBER),
    "favourite_category": ("favourite_category", Kind.TEXT),
    "favourite_channel": ("favourite_channel", Kind.TEXT),
    # Recomputed per workspace by the worker (app/domain/insight/scoring.py).
    "rfm.recency": ("rfm_recency", Kind.NUMBER),
    "rfm.frequency": ("rfm_frequency", Kind.NUMBER),
    "rfm.monetary": ("rfm_monetary", Kind.NUMBER),
    "churn_risk": ("churn_risk", Kind.BOOLEAN),
    "predicted_ltv": ("predicted_ltv_12m", Kind.NUMBER),
    "probability_alive": ("probability_alive", Kind.NUMBER),
    "insights_computed_at": ("insights_computed_at", Kind.DATETIME),
}
_ADDRESS_PARTS = ("postal_code", "prefecture", "city", "country")
_COMPANY_FIELDS: Mapping[str, tuple[str, Kind]] = {
    "name": ("name", Kind.TEXT),
    "domain": ("domain", Kind.TEXT),
    "industry": ("industry", Kind.TEXT),
    "employee_count": ("employee_count", Kind.NUMBER),
}


def has_identity(
    kind: str, value: str | None = None, *, source: str | None = None
) -> ColumnElement[bool]:
    """The customer has an identity of `kind` (with this `value` and `source`, when given):
    answered from the identity index, where the same test on the customer's columns would
    read every customer of the workspace."""
    conditions = [CustomerIdentity.value == value] if value is not None else []
    if source is not None:
        conditions.append(CustomerIdentity.source == source)
    return exists(
        select(CustomerIdentity.value).where(
            CustomerIdentity.workspace_id == Customer.workspace_id,
            CustomerIdentity.customer_id == Customer.id,
            CustomerIdentity.kind == kind,
            *conditions,
        )
    )


def in_segment(segment_id: UUID | None) -> ColumnElement[bool]:
    """The customer is a member of the segment (of any segment, when None)."""
    conditions = [SegmentMember.segment_id == segment_id] if segment_id is not None else []
    return exists(
        select(SegmentMember.customer_id).where(
            SegmentMember.workspace_id == Customer.workspace_id,
            SegmentMember.customer_id == Customer.id,
            *conditions,
        )
    )


def _identity_list(kind: str, to_sql: Callable[[Any], Any]) -> Field:
    return Field(
        Kind.LIST,
        has=lambda value: has_identity(kind, value),
        non_empty=lambda: has_identity(kind),
        to_sql=to_sql,
    )


def json_list(array: Expression, dialect: str, options: Sequence[str] | None) -> Field:
    return Field(
        Kind.LIST,
        options=frozenset(options) if options is not None else None,
        has=lambda value: json_array_holds(array, value, dialect),
        non_empty=lambda: json_array_non_empty(array, dialect),
    )


def attribute_field(attributes: Any, definition: FieldDefinition, dialect: str) -> Field:
    """A custom field inside a JSON `attributes` column, typed by its definition."""
    element = attributes[definition.key]
    kind = FieldType(definition.type)
    options = frozenset(definition.options) if definition.options else None
    if kind is FieldType.MULTI_ENUM:
        return json_list(element, dialect, definition.options)
    if kind is FieldType.NUMBER:
        return Field(Kind.NUMBER, element.as_float())
    if kind is FieldType.MONEY:
        return Field(Kind.NUMBER, attributes[(definition.key, "amount")].as_float())
    if kind is FieldType.BOOLEAN:
        return Field(Kind.BOOLEAN, element.as_boolean())
    if kind is FieldType.DATE:
        return Field(Kind.DATE, element.as_string(), to_sql=lambda value: value.isoformat())
    if kind is FieldType.ENUM:
        return Field(Kind.ENUM, element.as_string(), options=options)
    return Field(Kind.TEXT, element.as_string())


_SORT_TYPES: Mapping[FieldType, type] = {
    FieldType.NUMBER: float,
    FieldType.MONEY: float,
    FieldType.BOOLEAN: bool,
    FieldType.TEXT: str,
    FieldType.DATE: str,
    FieldType.ENUM: str,
}


def attribute_sorts(
    sort: str, attributes: Any, definitions: Mapping[str, FieldDefinition], dialect: str
) -> dict[str, SortKey]:
    """`{"attributes.<key>": SortKey}` when `sort` names a sortable custom field, else `{}`."""
    name = sort.removeprefix("-")
    key = name.removeprefix("attributes.")
    definition = definitions.get(key) if name.startswith("attributes.") else None
    if definition is None or FieldType(definition.type) not in _SORT_TYPES:
        return {}
    kind = FieldType(definition.type)
    field = attribute_field(attributes, definition, dialect)

    def value_of(entity: Any) -> Any:
        value = entity.attributes.get(key)
        return value["amount"] if kind is FieldType.MONEY and value is not None else value

    return {name: SortKey(field.expression, value_of, _SORT_TYPES[kind], nullable=True)}


def customer_fields(
    dialect: str,
    definitions: Sequence[FieldDefinition],
    lifecycle_stages: Sequence[str],
    tier_keys: Sequence[str] = (),
) -> FieldRegistry:
    """Every field of the customer DSL; names under a prefix are checked as they are used."""
    fields: dict[str, Field] = {
        "id": Field(Kind.UUID, Customer.id),
        "created_at": Field(Kind.DATETIME, Customer.created_at),
        "updated_at": Field(Kind.DATETIME, Customer.updated_at),
        "birthday": Field(Kind.DATE, Customer.birthday),
        "company_id": Field(Kind.UUID, Customer.company_id),
        "owner_id": Field(Kind.UUID, Customer.owner_id),
        "lifecycle_stage": Field(
            Kind.ENUM, Customer.lifecycle_stage, options=frozenset(lifecycle_stages)
        ),
        "tags": json_list(Customer.tags, dialect, None),
        "emails": _identity_list(EMAIL, to_sql=lambda value: str(value).casefold()),
        "phones": _identity_list(PHONE, to_sql=normalise_phone),
        "segments": Field(
            Kind.LIST,
            element_kind=Kind.UUID,
            has=lambda segment_id: in_segment(segment_id),
            non_empty=lambda: in_segment(None),
        ),
        # Kept by the workspace's tier and scoring rules.
        "tier": Field(Kind.ENUM, Customer.tier, options=frozenset(tier_keys)),
        "score": Field(Kind.NUMBER, Customer.score),
        **behaviour_fields(),
    }
    fields.update({name: Field(Kind.TEXT, getattr(Customer, name)) for name in _TEXT_COLUMNS})
    fields.update(
        {
            f"metrics.{name}": Field(kind, getattr(Customer, column))
            for name, (column, kind) in _METRICS.items()
        }
    )
    fields["metrics.rfm.group"] = Field(
        Kind.ENUM, Customer.rfm_group, options=frozenset(group.value for group in RfmGroup)
    )
    fields.update(
        {
            f"address.{part}": Field(Kind.TEXT, Customer.address[part].as_string())
            for part in _ADDRESS_PARTS
        }
    )
    by_key = {definition.key: definition for definition in definitions}

    def attribute(key: str) -> Field | None:
        definition = by_key.get(key)
        return attribute_field(Customer.attributes, definition, dialect) if definition else None

    def company(name: str) -> Field | None:
        spec = _COMPANY_FIELDS.get(name)
        if spec is None:
            return None
        column, kind = spec
        value = (
            select(getattr(Company, column))
            .where(
                and_(
                    Company.workspace_id == Customer.workspace_id,
                    Company.id == Customer.company_id,
                )
            )
            .scalar_subquery()
        )
        return Field(kind, value)

    return FieldRegistry(
        fields,
        prefixed={
            "attributes": attribute,
            "company": company,
            "external_ids": lambda source: (
                Field(Kind.TEXT, Customer.external_ids[source].as_string())
                if _JSON_KEY.match(source)
                else None
            ),
            "consents": lambda channel: (
                Field(Kind.BOOLEAN, Customer.consents[(channel, "granted")].as_boolean())
                if _JSON_KEY.match(channel)
                else None
            ),
        },
        fingerprint=(
            dialect,
            tuple((definition.id, definition.version) for definition in definitions),
            tuple(lifecycle_stages),
            tuple(tier_keys),
        ),
    )
