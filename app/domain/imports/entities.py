"""An import job, the parsed rows it still has to apply, and the rows that failed."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ForeignKeyConstraint, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, Timestamped, WorkspaceScoped
from app.db.types import JsonDocument, UtcDateTime


class ImportJob(WorkspaceScoped, Timestamped, Base):
    __tablename__ = "import_job"
    __table_args__ = (
        Index("ix_import_job_created", "workspace_id", "created_at", "id"),
        # The maintenance loop looks for jobs nobody is working on.
        Index("ix_import_job_status", "status", "heartbeat_at"),
    )

    object: Mapped[str] = mapped_column(String(20))
    format: Mapped[str] = mapped_column(String(10))
    filename: Mapped[str | None] = mapped_column(String(255))
    mapping: Mapped[dict[str, str] | None] = mapped_column(JsonDocument)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    processed_rows: Mapped[int] = mapped_column(Integer, default=0)
    created_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    api_key_id: Mapped[UUID | None] = mapped_column(Uuid)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ImportChunk(Base):
    """Up to a few hundred parsed rows; applied in one transaction, then marked done."""

    __tablename__ = "import_chunk"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "job_id"],
            ["import_job.workspace_id", "import_job.id"],
            name="fk_import_chunk_job",
            ondelete="CASCADE",
        ),
    )

    workspace_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    job_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_row: Mapped[int] = mapped_column(Integer)
    rows: Mapped[list[dict[str, Any]]] = mapped_column(JsonDocument)
    done: Mapped[bool] = mapped_column(default=False)


class ImportRowError(Base):
    __tablename__ = "import_row_error"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "job_id"],
            ["import_job.workspace_id", "import_job.id"],
            name="fk_import_row_error_job",
            ondelete="CASCADE",
        ),
    )

    workspace_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    job_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    row: Mapped[int] = mapped_column(Integer, primary_key=True)
    message: Mapped[str] = mapped_column(Text)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JsonDocument)
