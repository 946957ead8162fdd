"""Workspaces (tenants), API keys and users (team members)."""

from datetime import datetime
from uuid import UUID

from sqlalchemy import Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.ids import uuid7
from app.db.base import Base, Timestamped, Versioned, WorkspaceScoped
from app.db.types import JsonDocument, UtcDateTime

DEFAULT_LIFECYCLE_STAGES = ("lead", "prospect", "customer", "repeat", "vip", "churned")


class Workspace(Timestamped, Versioned, Base):
    """One business. Every other row belongs to exactly one workspace."""

    __tablename__ = "workspace"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    lifecycle_stages: Mapped[list[str]] = mapped_column(
        JsonDocument, default=lambda: list(DEFAULT_LIFECYCLE_STAGES)
    )


class ApiKey(WorkspaceScoped, Timestamped, Base):
    """A credential of one workspace. Only the SHA-256 of the secret is kept."""

    __tablename__ = "api_key"
    __table_args__ = (
        # Authentication looks a key up by its hash before it knows the workspace.
        Index("ix_api_key_secret_hash", "secret_hash", unique=True),
    )

    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JsonDocument)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class User(WorkspaceScoped, Timestamped, Versioned, Base):
    """A team member (sales, marketing, support) who can own customers, deals and tasks.

    Not a login account: the frontend owns sign-in.
    """

    __tablename__ = "user"
    __table_args__ = (Index("ix_user_workspace_id_email", "workspace_id", "email", unique=True),)

    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(50))
    active: Mapped[bool] = mapped_column(default=True)
