"""Webhook endpoints, one delivery per (endpoint, event), and every attempt of a delivery."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, ForeignKeyConstraint, Index, Integer, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, Timestamped, Versioned, WorkspaceScoped
from app.db.types import JsonDocument, UtcDateTime


class WebhookEndpoint(WorkspaceScoped, Timestamped, Versioned, Base):
    __tablename__ = "webhook_endpoint"
    __table_args__ = (Index("ix_webhook_endpoint_created", "workspace_id", "created_at", "id"),)

    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(500))
    event_types: Mapped[list[str]] = mapped_column(JsonDocument)
    changed_fields: Mapped[list[str] | None] = mapped_column(JsonDocument)
    enabled: Mapped[bool] = mapped_column(default=True)
    ordered: Mapped[bool] = mapped_column(default=True)
    headers: Mapped[dict[str, str]] = mapped_column(JsonDocument, default=dict)
    # Signing needs the secret itself, so it is kept as it is; the API shows it only at creation
    # and rotation. During a rotation the previous secret signs too, until it expires.
    secret: Mapped[str] = mapped_column(String(200))
    previous_secret: Mapped[str | None] = mapped_column(String(200))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    failing_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))


class WebhookDelivery(WorkspaceScoped, Timestamped, Base):
    """An event to send to an endpoint, retried until it succeeds or is given up."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "endpoint_id"],
            ["webhook_endpoint.workspace_id", "webhook_endpoint.id"],
            name="fk_webhook_delivery_endpoint",
            ondelete="CASCADE",
        ),
        Index("ix_webhook_delivery_endpoint", "workspace_id", "endpoint_id", "created_at", "id"),
        Index("ix_webhook_delivery_queue", "workspace_id", "endpoint_id", "sequence"),
        # The dispatcher's work: deliveries due now.
        Index(
            "ix_webhook_delivery_due",
            "next_attempt_at",
            sqlite_where=text("status IN ('pending', 'delivering')"),
            postgresql_where=text("status IN ('pending', 'delivering')"),
        ),
    )

    endpoint_id: Mapped[UUID] = mapped_column(Uuid)
    event_id: Mapped[UUID] = mapped_column(Uuid)
    event_type: Mapped[str] = mapped_column(String(100))
    # Order of the events for this endpoint: the outbox (transaction, position) flattened.
    sequence: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class WebhookAttempt(WorkspaceScoped, Base):
    __tablename__ = "webhook_attempt"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "delivery_id"],
            ["webhook_delivery.workspace_id", "webhook_delivery.id"],
            name="fk_webhook_attempt_delivery",
            ondelete="CASCADE",
        ),
        Index("ix_webhook_attempt_delivery", "workspace_id", "delivery_id", "attempted_at"),
    )

    delivery_id: Mapped[UUID] = mapped_column(Uuid)
    attempted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    response_body: Mapped[str | None] = mapped_column(Text)
    request_headers: Mapped[dict[str, str]] = mapped_column(JsonDocument)


class DispatcherCursor(Base):
    """How far the fan-out has read the outbox, shared by every dispatcher process."""

    __tablename__ = "dispatcher_cursor"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    transaction_id: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(BigInteger)
    next_sequence: Mapped[int] = mapped_column(BigInteger)
