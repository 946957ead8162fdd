"""What a customer did, as filter fields: `orders`, `interactions` and `events`, each with
fields of its own for the condition's `where`, e.g. "has orders in category shoes within 90d,
at least 2 times", and for orders "spent at least ¥100,000 (net of refunds) within 12 months".

Orders are purchases: completed or partly refunded, as in the customer's metrics; cancelled and
fully refunded orders do not count. Events are what shops posted (`page.viewed`, ...), except
those that failed.
"""

import re
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, exists, literal, select
from sqlalchemy.sql.elements import ColumnElement

from app.domain.commerce.entities import InboundEvent, Order, OrderLine
from app.domain.commerce.repository import COUNTED_STATUSES, FAILED
from app.domain.customer.entities import Customer
from app.domain.interaction.entities import Interaction
from app.domain.interaction.schemas import (
    Direction,
    InteractionType,
    Priority,
    SupportStatus,
    TaskStatus,
)
from app.filters.fields import Behaviour, Field, FieldRegistry, Kind, Summary

# Property names an event filter may name: those a shop would use as JSON keys.
_PROPERTY_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


def _with_some_line(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists(
        select(literal(1)).where(
            OrderLine.workspace_id == Order.workspace_id,
            OrderLine.order_id == Order.id,
            condition,
        )
    )


def _line_field(name: str) -> Field | None:
    kinds = {
        "sku": Kind.TEXT,
        "name": Kind.TEXT,
        "category": Kind.TEXT,
        "quantity": Kind.NUMBER,
        "unit_price": Kind.NUMBER,
    }
    kind = kinds.get(name)
    if kind is None:
        return None
    return Field(kind, getattr(OrderLine, name), within=_with_some_line)


def _order_fields() -> FieldRegistry:
    return FieldRegistry(
        {
            "order_id": Field(Kind.TEXT, Order.order_id),
            "occurred_at": Field(Kind.DATETIME, Order.occurred_at),
            "total": Field(Kind.NUMBER, Order.total),
            "refunded_total": Field(Kind.NUMBER, Order.refunded_total),
            "currency": Field(Kind.TEXT, Order.currency),
            "channel": Field(Kind.TEXT, Order.channel),
            "store_id": Field(Kind.TEXT, Order.store_id),
            "status": Field(Kind.ENUM, Order.status, options=frozenset(COUNTED_STATUSES)),
        },
        prefixed={"lines": _line_field},
    )


def _enum(column: Any, *enums: type[StrEnum]) -> Field:
    return Field(Kind.ENUM, column, options=frozenset(m.value for enum in enums for m in enum))


def _interaction_fields() -> FieldRegistry:
    return FieldRegistry(
        {
            "type": _enum(Interaction.type, InteractionType),
            "occurred_at": Field(Kind.DATETIME, Interaction.occurred_at),
            "channel": Field(Kind.TEXT, Interaction.channel),
            "direction": _enum(Interaction.direction, Direction),
            "subject": Field(Kind.TEXT, Interaction.subject),
            "status": _enum(Interaction.status, TaskStatus, SupportStatus),
            "priority": _enum(Interaction.priority, Priority),
            "nps_score": Field(Kind.NUMBER, Interaction.nps_score),
            "owner_id": Field(Kind.UUID, Interaction.owner_id),
            "deal_id": Field(Kind.UUID, Interaction.deal_id),
            "due_at": Field(Kind.DATETIME, Interaction.due_at),
            "completed_at": Field(Kind.DATETIME, Interaction.completed_at),
        }
    )


def _event_fields() -> FieldRegistry:
    def event_property(key: str) -> Field | None:
        if not _PROPERTY_KEY.match(key):
            return None
        return Field(Kind.TEXT, InboundEvent.payload[("properties", key)].as_string())

    return FieldRegistry(
        {
            "type": Field(Kind.TEXT, InboundEvent.type),
            "occurred_at": Field(Kind.DATETIME, InboundEvent.occurred_at),
        },
        prefixed={"properties": event_property},
    )


def behaviour_fields() -> dict[str, Field]:
    """The `orders`, `interactions` and `events` fields of the customer DSL."""
    orders = Behaviour(
        _order_fields(),
        Order,
        lambda: and_(
            Order.workspace_id == Customer.workspace_id,
            Order.customer_id == Customer.id,
            Order.status.in_(COUNTED_STATUSES),
        ),
        Order.occurred_at,
        owner=Order.customer_id,
        key=Customer.id,
        of_workspace=lambda workspace_id: and_(
            Order.workspace_id == workspace_id,
            Order.customer_id.is_not(None),
            Order.status.in_(COUNTED_STATUSES),
        ),
        amount=Order.total - Order.refunded_total,
        # The metrics count the same orders, and are worked out again from them whenever
        # they change, in the same transaction.
        summary=Summary(count=Customer.order_count, newest=Customer.last_order_at),
    )
    interactions = Behaviour(
        _interaction_fields(),
        Interaction,
        lambda: and_(
            Interaction.workspace_id == Customer.workspace_id,
            Interaction.customer_id == Customer.id,
        ),
        Interaction.occurred_at,
        owner=Interaction.customer_id,
        key=Customer.id,
        of_workspace=lambda workspace_id: Interaction.workspace_id == workspace_id,
    )
    events = Behaviour(
        _event_fields(),
        InboundEvent,
        lambda: and_(
            InboundEvent.workspace_id == Customer.workspace_id,
            InboundEvent.customer_id == Customer.id,
            InboundEvent.status != FAILED,
        ),
        InboundEvent.occurred_at,
        owner=InboundEvent.customer_id,
        key=Customer.id,
        of_workspace=lambda workspace_id: and_(
            InboundEvent.workspace_id == workspace_id,
            InboundEvent.customer_id.is_not(None),
            InboundEvent.status != FAILED,
        ),
    )
    return {
        name: Field(Kind.BEHAVIOUR, behaviour=behaviour)
        for name, behaviour in (
            ("orders", orders),
            ("interactions", interactions),
            ("events", events),
        )
    }
