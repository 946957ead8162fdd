"""The company record."""

from typing import Any
from uuid import UUID

from sqlalchemy import ForeignKeyConstraint, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, Timestamped, Versioned, WorkspaceScoped
from app.db.types import JsonDocument


class Company(WorkspaceScoped, Timestamped, Versioned, Base):
    __tablename__ = "company"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "owner_id"],
            ["user.workspace_id", "user.id"],
            name="fk_company_owner_user",
        ),
        Index("ix_company_created", "workspace_id", "created_at", "id"),
        Index("ix_company_updated", "workspace_id", "updated_at", "id"),
        Index("ix_company_name", "workspace_id", "name", "id"),
        Index("ix_company_domain", "workspace_id", "domain"),
        Index("ix_company_owner", "workspace_id", "owner_id"),
    )

    name: Mapped[str] = mapped_column(String(200))
    name_kana: Mapped[str | None] = mapped_column(String(200))
    domain: Mapped[str | None] = mapped_column(String(253))
    industry: Mapped[str | None] = mapped_column(String(100))
    employee_count: Mapped[int | None] = mapped_column(Integer)
    phone: Mapped[str | None] = mapped_column(String(32))
    address: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    owner_id: Mapped[UUID | None] = mapped_column(Uuid)
    tags: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    search_text: Mapped[str] = mapped_column(Text, default="")
