"""The shapes of inbound events and orders."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from app.core.money import is_currency
from app.core.schemas import InputModel, ResourceModel
from app.core.values import Email, Phone

EventId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,199}$")]
ShopOrderId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Sku = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Amount = Annotated[int, Field(ge=0, le=10**15, strict=True)]
Quantity = Annotated[int, Field(ge=1, le=1_000_000, strict=True)]


def _currency(code: str) -> str:
    if not is_currency(code):
        raise ValueError("Not an ISO 4217 currency code, e.g. JPY or USD.")
    return code


Currency = Annotated[str, AfterValidator(_currency)]


class KnownEventType(StrEnum):
    ORDER_COMPLETED = "order.completed"
    ORDER_REFUNDED = "order.refunded"
    ORDER_CANCELLED = "order.cancelled"
    PAGE_VIEWED = "page.viewed"
    CART_ABANDONED = "cart.abandoned"
    CUSTOMER_IDENTIFIED = "customer.identified"


EventType = Annotated[
    str,
    StringConstraints(
        pattern=r"^(order\.completed|order\.refunded|order\.cancelled|page\.viewed|"
        r"cart\.abandoned|customer\.identified|x-[a-z0-9][a-z0-9._-]{0,60})$"
    ),
]


class CustomerReference(InputModel):
    """Who the event is about: resolved to one customer, created when unknown."""

    external_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    source: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,49}$")] = Field(
        default="shop", description="Whose id `external_id` is"
    )
    email: Email | None = None
    phone: Phone | None = None
    family_name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    given_name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None

    @model_validator(mode="after")
    def _identifies_someone(self) -> Self:
        if not (self.external_id or self.email or self.phone):
            raise ValueError("Give external_id, email or phone.")
        return self


class OrderLineIn(InputModel):
    sku: Sku
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    category: Annotated[str, StringConstraints(max_length=100)] | None = None
    quantity: Quantity
    unit_price: Amount


class OrderIn(InputModel):
    order_id: ShopOrderId
    currency: Currency
    channel: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,49}$")] = Field(
        default="online", examples=["online", "store", "phone", "marketplace"]
    )
    store_id: Annotated[str, StringConstraints(max_length=100)] | None = None
    lines: list[OrderLineIn] = Field(min_length=1, max_length=500)
    discount: Amount = 0
    tax: Amount = 0
    total: Amount | None = Field(
        default=None, description="Defaults to the lines' sum, less discount, plus tax"
    )


class RefundLineIn(InputModel):
    sku: Sku
    quantity: Quantity


class RefundIn(InputModel):
    order_id: ShopOrderId
    lines: list[RefundLineIn] | None = Field(default=None, min_length=1, max_length=500)
    amount: Amount | None = Field(default=None, description="Instead of lines")

    @model_validator(mode="after")
    def _lines_or_amount(self) -> Self:
        if (self.lines is None) == (self.amount is None):
            raise ValueError("Give either lines or amount.")
        return self


class OrderReference(InputModel):
    order_id: ShopOrderId


class EventIn(InputModel):
    event_id: EventId = Field(description="The shop's id: the same id is applied once, forever")
    type: EventType
    occurred_at: datetime
    customer: CustomerReference
    order: dict[str, Any] | None = Field(
        default=None,
        description="order.completed: the order; order.refunded: order_id with lines or "
        "amount; order.cancelled: order_id",
    )
    properties: dict[str, Any] = Field(default_factory=dict)


class EventResult(ResourceModel):
    event_id: str
    status: str = Field(description="accepted, or duplicate when the id was seen before")
    customer_id: UUID | None
    order_id: UUID | None


class OrderLine(ResourceModel):
    sku: str
    name: str | None
    category: str | None
    quantity: int
    unit_price: int
    refunded_quantity: int = 0


class Order(ResourceModel):
    id: UUID
    order_id: str = Field(description="The shop's order id")
    customer_id: UUID | None = Field(description="Null once the customer was erased")
    currency: str
    channel: str
    store_id: str | None
    lines: list[OrderLine]
    discount: int
    tax: int
    total: int
    refunded_total: int
    status: str = Field(description="completed, partially_refunded, refunded or cancelled")
    occurred_at: datetime
    created_at: datetime
    updated_at: datetime
