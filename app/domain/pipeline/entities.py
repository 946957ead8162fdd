"""Pipelines with ordered stages, deals, their contacts and every stage move."""

from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Date, ForeignKeyConstraint, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, Timestamped, Versioned, WorkspaceScoped
from app.db.types import JsonDocument, UtcDateTime


class Pipeline(WorkspaceScoped, Timestamped, Versioned, Base):
    __tablename__ = "pipeline"
    __table_args__ = (Index("ix_pipeline_name", "workspace_id", "name", unique=True),)

    name: Mapped[str] = mapped_column(String(200))


class Stage(WorkspaceScoped, Timestamped, Versioned, Base):
    __tablename__ = "stage"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "pipeline_id"],
            ["pipeline.workspace_id", "pipeline.id"],
            name="fk_stage_pipeline",
            ondelete="CASCADE",
        ),
        Index("ix_stage_pipeline", "workspace_id", "pipeline_id", "position"),
    )

    pipeline_id: Mapped[UUID] = mapped_column(Uuid)
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer)
    probability: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))
    rotting_days: Mapped[int | None] = mapped_column(Integer)


class Deal(WorkspaceScoped, Timestamped, Versioned, Base):
    __tablename__ = "deal"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "pipeline_id"],
            ["pipeline.workspace_id", "pipeline.id"],
            name="fk_deal_pipeline",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "stage_id"], ["stage.workspace_id", "stage.id"], name="fk_deal_stage"
        ),
        ForeignKeyConstraint(
            ["workspace_id", "customer_id"],
            ["customer.workspace_id", "customer.id"],
            name="fk_deal_customer",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "company_id"],
            ["company.workspace_id", "company.id"],
            name="fk_deal_company",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "owner_id"], ["user.workspace_id", "user.id"], name="fk_deal_owner"
        ),
        Index("ix_deal_created", "workspace_id", "created_at", "id"),
        Index("ix_deal_board", "workspace_id", "stage_id", "created_at", "id"),
        Index("ix_deal_pipeline_close", "workspace_id", "pipeline_id", "expected_close_date"),
        Index("ix_deal_customer", "workspace_id", "customer_id"),
        Index("ix_deal_company", "workspace_id", "company_id"),
        Index("ix_deal_owner", "workspace_id", "owner_id"),
    )

    name: Mapped[str] = mapped_column(String(200))
    pipeline_id: Mapped[UUID] = mapped_column(Uuid)
    stage_id: Mapped[UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(10))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    customer_id: Mapped[UUID | None] = mapped_column(Uuid)
    company_id: Mapped[UUID | None] = mapped_column(Uuid)
    owner_id: Mapped[UUID | None] = mapped_column(Uuid)
    expected_close_date: Mapped[date | None] = mapped_column(Date)
    source: Mapped[str | None] = mapped_column(String(100))
    lost_reason: Mapped[str | None] = mapped_column(String(500))
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    stage_changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class DealContact(Base):
    """A customer involved in a deal, in a role such as decision maker."""

    __tablename__ = "deal_contact"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "deal_id"],
            ["deal.workspace_id", "deal.id"],
            name="fk_deal_contact_deal",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "customer_id"],
            ["customer.workspace_id", "customer.id"],
            name="fk_deal_contact_customer",
            ondelete="CASCADE",
        ),
        Index("ix_deal_contact_customer", "workspace_id", "customer_id"),
    )

    workspace_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    deal_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    customer_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    role: Mapped[str | None] = mapped_column(String(50))


class DealStageChange(WorkspaceScoped, Base):
    """One move of a deal between stages (its creation enters the first stage)."""

    __tablename__ = "deal_stage_change"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "deal_id"],
            ["deal.workspace_id", "deal.id"],
            name="fk_deal_stage_change_deal",
            ondelete="CASCADE",
        ),
        Index("ix_deal_stage_change_deal", "workspace_id", "deal_id", "changed_at"),
        Index("ix_deal_stage_change_pipeline", "workspace_id", "pipeline_id", "changed_at"),
        # The funnel, without sorting or visiting the table: the deepest stage each deal
        # reached (moves deal by deal, covered on PostgreSQL) and the time spent in each stage
        # (already in order for the percentiles).
        Index(
            "ix_deal_stage_change_deal_reach",
            "workspace_id",
            "pipeline_id",
            "deal_id",
            postgresql_include=["to_stage_id"],
        ),
        Index(
            "ix_deal_stage_change_time_in_stage",
            "workspace_id",
            "pipeline_id",
            "from_stage_id",
            "seconds_in_previous_stage",
        ),
    )

    deal_id: Mapped[UUID] = mapped_column(Uuid)
    pipeline_id: Mapped[UUID] = mapped_column(Uuid)
    from_stage_id: Mapped[UUID | None] = mapped_column(Uuid)
    to_stage_id: Mapped[UUID] = mapped_column(Uuid)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    changed_by: Mapped[str | None] = mapped_column(String(100))
    seconds_in_previous_stage: Mapped[int | None] = mapped_column(BigInteger)
