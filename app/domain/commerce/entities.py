"""Inbound events (applied once per event id), orders and their lines."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ForeignKey, Index, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.core.ids import uuid7
from app.db.base import Base, Timestamped, Versioned, WorkspaceScoped
from app.db.types import JsonDocument, UtcDateTime


class InboundEvent(Base):
    """One event a shop posted. Its primary key is the shop's `event_id`: the row is claimed
    before the event is applied, so the same id is applied once, however many copies arrive."""

    __tablename__ = "inbound_event"
    __table_args__ = (
        Index("ix_inbound_event_customer", "workspace_id", "customer_id", "occurred_at", "id"),
        Index("ix_inbound_event_type", "workspace_id", "type", "occurred_at"),
        # Refunds and cancellations that arrived before their order wait here.
        Index(
            "ix_inbound_event_waiting",
            "workspace_id",
            "order_ref",
            sqlite_where=text("status = 'waiting'"),
            postgresql_where=text("status = 'waiting'"),
        ),
    )

    workspace_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    id: Mapped[UUID] = mapped_column(Uuid, default=uuid7)
    type: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    customer_id: Mapped[UUID | None] = mapped_column(Uuid)
    order_id: Mapped[UUID | None] = mapped_column(Uuid)
    order_ref: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDocument)


# The orders that count in figures: neither cancelled nor fully refunded.
COUNTED_CONDITION = "status IN ('completed', 'partially_refunded')"


class Order(WorkspaceScoped, Timestamped, Versioned, Base):
    __tablename__ = "order"
    __table_args__ = (
        Index("ix_order_shop_id", "workspace_id", "order_id", unique=True),
        Index("ix_order_created", "workspace_id", "created_at", "id"),
        Index("ix_order_occurred", "workspace_id", "occurred_at", "id"),
        Index("ix_order_customer", "workspace_id", "customer_id", "occurred_at", "id"),
        Index("ix_order_channel", "workspace_id", "channel", "occurred_at"),
        # Each customer's counted purchases with what behaviour filters count
        # and add up, so "bought twice, none in 90 days, spent ¥50,000" reads the index alone.
        Index(
            "ix_order_counted_by_customer",
            "workspace_id",
            "customer_id",
            "occurred_at",
            postgresql_include=["total", "refunded_total"],
            sqlite_where=text(COUNTED_CONDITION),
            postgresql_where=text(COUNTED_CONDITION),
        ),
        # Insights read a period's counted orders from this index alone, not from the rows.
        Index(
            "ix_order_counted",
            "workspace_id",
            "occurred_at",
            postgresql_include=[
                "customer_id",
                "currency",
                "total",
                "refunded_total",
                "customer_previous_at",
                "customer_next_at",
            ],
            sqlite_where=text(COUNTED_CONDITION),
            postgresql_where=text(COUNTED_CONDITION),
        ),
    )

    order_id: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[UUID | None] = mapped_column(Uuid)
    currency: Mapped[str] = mapped_column(String(3))
    channel: Mapped[str] = mapped_column(String(50))
    store_id: Mapped[str | None] = mapped_column(String(100))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JsonDocument)
    discount: Mapped[int] = mapped_column(Integer)
    tax: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    refunded_total: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Of a counted order: when the same customer's previous and next counted orders happened
    # (null: none), kept with the customer's metrics. A period's first order of a customer is
    # one whose previous order is before the period, so insights count a period's customers
    # without grouping its orders by customer.
    customer_previous_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    customer_next_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class OrderLine(Base):
    """The lines of orders as rows, for filters such as "bought a sku in category X"."""

    __tablename__ = "order_line"
    __table_args__ = (
        Index("ix_order_line_sku", "workspace_id", "sku"),
        Index("ix_order_line_category", "workspace_id", "category"),
    )

    # No foreign key to the order: lines are inserted only in the transaction that inserts
    # their order, and orders are never deleted but with their workspace. Checking the key
    # locked each new order again, row by row: the lines of 1,000 events took 88 ms to insert
    # with it, 55 ms without.
    workspace_id: Mapped[UUID] = mapped_column(
        Uuid, ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    order_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(100))
    name: Mapped[str | None] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(100))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(Integer)
    refunded_quantity: Mapped[int] = mapped_column(Integer, default=0)
