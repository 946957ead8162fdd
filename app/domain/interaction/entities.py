"""The interaction record; tasks, support requests and surveys carry their own fields."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ForeignKeyConstraint, Index, Integer, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, Timestamped, Versioned, WorkspaceScoped
from app.db.types import JsonDocument, UtcDateTime


class Interaction(WorkspaceScoped, Timestamped, Versioned, Base):
    __tablename__ = "interaction"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "customer_id"],
            ["customer.workspace_id", "customer.id"],
            name="fk_interaction_customer",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "company_id"],
            ["company.workspace_id", "company.id"],
            name="fk_interaction_company",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "owner_id"],
            ["user.workspace_id", "user.id"],
            name="fk_interaction_owner",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "assignee_id"],
            ["user.workspace_id", "user.id"],
            name="fk_interaction_assignee",
        ),
        Index("ix_interaction_created", "workspace_id", "created_at", "id"),
        Index("ix_interaction_customer", "workspace_id", "customer_id", "occurred_at", "id"),
        Index("ix_interaction_type", "workspace_id", "type", "occurred_at", "id"),
        Index("ix_interaction_tasks", "workspace_id", "assignee_id", "status", "due_at"),
        # The due-task sweep looks only at open tasks that have not been announced yet.
        Index(
            "ix_interaction_due",
            "due_at",
            sqlite_where=text("status = 'open' AND due_notified_at IS NULL"),
            postgresql_where=text("status = 'open' AND due_notified_at IS NULL"),
        ),
    )

    type: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[UUID] = mapped_column(Uuid)
    company_id: Mapped[UUID | None] = mapped_column(Uuid)
    deal_id: Mapped[UUID | None] = mapped_column(Uuid)
    owner_id: Mapped[UUID | None] = mapped_column(Uuid)
    channel: Mapped[str | None] = mapped_column(String(50))
    direction: Mapped[str | None] = mapped_column(String(10))
    subject: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    assignee_id: Mapped[UUID | None] = mapped_column(Uuid)
    status: Mapped[str | None] = mapped_column(String(20))
    priority: Mapped[str | None] = mapped_column(String(10))
    nps_score: Mapped[int | None] = mapped_column(Integer)
    answers: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    due_notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    search_text: Mapped[str] = mapped_column(Text, default="")
