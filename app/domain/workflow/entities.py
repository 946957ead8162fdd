"""Workflows, every version of their definition, and their runs."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.db.base import Base, Timestamped, Versioned, WorkspaceScoped
from app.db.types import JsonDocument, UtcDateTime

SCHEDULE = "schedule"
PENDING, RUNNING, WAITING = "pending", "running", "waiting"
SUCCEEDED, FAILED = "succeeded", "failed"


class Workflow(WorkspaceScoped, Timestamped, Versioned, Base):
    """The current definition; each saved definition is also kept as a WorkflowVersion."""

    __tablename__ = "workflow"
    __table_args__ = (
        Index("ix_workflow_created", "workspace_id", "created_at", "id"),
        # The engine's lookup: enabled workflows of a workspace started by an event type.
        Index("ix_workflow_trigger", "workspace_id", "trigger_type", "enabled"),
        Index(
            "ix_workflow_schedule_due",
            "next_run_at",
            sqlite_where=text("enabled AND next_run_at IS NOT NULL"),
            postgresql_where=text("enabled AND next_run_at IS NOT NULL"),
        ),
    )

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(1000))
    enabled: Mapped[bool] = mapped_column(default=True)
    # The event type that starts it, or "schedule".
    trigger_type: Mapped[str] = mapped_column(String(100))
    trigger: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    conditions: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JsonDocument)
    # Schedules: when the next run over the matching customers is due.
    next_run_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Round-robin owner assignments made so far; moved by SQL, not by the versioned ORM.
    assignments: Mapped[int] = mapped_column(Integer, default=0)


class WorkflowVersion(Base):
    """A definition as it was saved; runs execute the version they started with."""

    __tablename__ = "workflow_version"
    __table_args__ = (
        PrimaryKeyConstraint("workspace_id", "workflow_id", "version"),
        ForeignKeyConstraint(
            ["workspace_id", "workflow_id"],
            ["workflow.workspace_id", "workflow.id"],
            name="fk_workflow_version_workflow",
            ondelete="CASCADE",
        ),
    )

    workspace_id: Mapped[UUID] = mapped_column(Uuid, ForeignKey("workspace.id", ondelete="CASCADE"))
    workflow_id: Mapped[UUID] = mapped_column(Uuid)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    trigger: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    conditions: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JsonDocument)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class WorkflowRun(WorkspaceScoped, Timestamped, Base):
    """One execution of a workflow for one subject: its steps' outcomes and where it stands.

    `next_attempt_at` is when the run is next due (a retry, the end of a `wait`, or the end of a
    worker's lease); finished runs have none. It lives in the database, so a restart resumes.
    """

    __tablename__ = "workflow_run"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "workflow_id"],
            ["workflow.workspace_id", "workflow.id"],
            name="fk_workflow_run_workflow",
            ondelete="CASCADE",
        ),
        Index("ix_workflow_run_workflow", "workspace_id", "workflow_id", "created_at", "id"),
        # One run per workflow and triggering event, whoever matched it.
        Index("ix_workflow_run_event", "workspace_id", "workflow_id", "event_id", unique=True),
        Index(
            "ix_workflow_run_due",
            "next_attempt_at",
            sqlite_where=text("status IN ('pending', 'running', 'waiting')"),
            postgresql_where=text("status IN ('pending', 'running', 'waiting')"),
        ),
    )

    workflow_id: Mapped[UUID] = mapped_column(Uuid)
    workflow_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    subject_type: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[UUID] = mapped_column(Uuid)
    # The triggering event (none for scheduled runs) as receivers see it, for templates.
    event_id: Mapped[UUID | None] = mapped_column(Uuid)
    event: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    depth: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JsonDocument)
    error: Mapped[str | None] = mapped_column(String(1000))
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
