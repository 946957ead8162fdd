"""The outbox: one row per domain event, committed with the change that caused it."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, FetchedValue, ForeignKey, Index, SmallInteger, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.core.ids import uuid7
from app.db.base import Base
from app.db.types import BigIdentity, JsonDocument, UtcDateTime


class DomainEvent(Base):
    """A change, with who made it; the event feed, the audit log and webhooks read from here.

    `position` orders events within a transaction; `transaction_id` (PostgreSQL's xid8, 0 on
    SQLite whose writers are serialised) orders transactions, so the feed can hand out events
    in an order that a transaction committing late cannot jump into (see repository).
    """

    __tablename__ = "domain_event"
    __table_args__ = (
        Index("ix_domain_event_feed", "workspace_id", "transaction_id", "position"),
        # The webhook fan-out reads every workspace's events in the same order.
        Index("ix_domain_event_fan_out", "transaction_id", "position"),
        Index("ix_domain_event_subject", "workspace_id", "subject_type", "subject_id", "position"),
        # A customer's timeline reads their changes newest first.
        Index(
            "ix_domain_event_subject_time",
            "workspace_id",
            "subject_type",
            "subject_id",
            "created_at",
        ),
        Index("ix_domain_event_workspace_id_id", "workspace_id", "id", unique=True),
    )

    position: Mapped[int] = mapped_column(BigIdentity, primary_key=True, autoincrement=True)
    id: Mapped[UUID] = mapped_column(Uuid, default=uuid7, insert_sentinel=True)
    workspace_id: Mapped[UUID] = mapped_column(Uuid, ForeignKey("workspace.id", ondelete="CASCADE"))
    # Set by the database: txid_current() on PostgreSQL, 0 on SQLite (migration 0003).
    transaction_id: Mapped[int] = mapped_column(BigInteger, server_default=FetchedValue())
    type: Mapped[str] = mapped_column(String(100))
    subject_type: Mapped[str] = mapped_column(String(50))
    subject_id: Mapped[UUID] = mapped_column(Uuid)
    data: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    changes: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    actor_kind: Mapped[str] = mapped_column(String(20))
    actor_api_key_id: Mapped[UUID | None] = mapped_column(Uuid)
    request_id: Mapped[str | None] = mapped_column(String(200))
    # The workflow run whose action caused the event, and how many runs deep the chain is.
    workflow_run_id: Mapped[UUID | None] = mapped_column(Uuid)
    workflow_depth: Mapped[int | None] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
