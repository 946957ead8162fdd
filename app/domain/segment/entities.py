"""Segments, their members, the history of entering and leaving, and their daily size."""

from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Date, ForeignKey, ForeignKeyConstraint, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.core.ids import uuid7
from app.db.base import Base, Timestamped, Versioned, WorkspaceScoped
from app.db.types import JsonDocument, UtcDateTime


class Segment(WorkspaceScoped, Timestamped, Versioned, Base):
    """A dynamic segment holds the customers its filter matches; a static one, those added.

    `status` is `computing` while the worker brings the members in line with a new filter;
    `depends_on` names what the filter reads (customer, orders, interactions, events,
    segments), so a change re-evaluates only the segments it can affect.
    """

    __tablename__ = "segment"
    __table_args__ = (
        Index("ix_segment_name", "workspace_id", "name", unique=True),
        Index("ix_segment_created", "workspace_id", "created_at", "id"),
        Index("ix_segment_status", "status", "swept_at"),
    )

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(10))
    filter: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    depends_on: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    status: Mapped[str] = mapped_column(String(10))
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    computed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    swept_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SegmentMember(Base):
    __tablename__ = "segment_member"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "segment_id"],
            ["segment.workspace_id", "segment.id"],
            name="fk_segment_member_segment",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "customer_id"],
            ["customer.workspace_id", "customer.id"],
            name="fk_segment_member_customer",
            ondelete="CASCADE",
        ),
        Index("ix_segment_member_customer", "workspace_id", "customer_id"),
    )

    workspace_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    segment_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    customer_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    entered_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SegmentMembershipChange(Base):
    """A customer entered or left a segment (for the timeline and for audits)."""

    __tablename__ = "segment_membership_change"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "segment_id"],
            ["segment.workspace_id", "segment.id"],
            name="fk_segment_membership_change_segment",
            ondelete="CASCADE",
        ),
        Index(
            "ix_segment_membership_change_customer",
            "workspace_id",
            "customer_id",
            "occurred_at",
            "id",
        ),
        Index("ix_segment_membership_change_segment", "workspace_id", "segment_id", "occurred_at"),
    )

    workspace_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    segment_id: Mapped[UUID] = mapped_column(Uuid)
    customer_id: Mapped[UUID] = mapped_column(Uuid)
    change: Mapped[str] = mapped_column(String(10))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SegmentSize(Base):
    """A segment's member count at the end of a day (the last count taken that day)."""

    __tablename__ = "segment_size"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "segment_id"],
            ["segment.workspace_id", "segment.id"],
            name="fk_segment_size_segment",
            ondelete="CASCADE",
        ),
    )

    workspace_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    segment_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    member_count: Mapped[int] = mapped_column(Integer)


class Tier(WorkspaceScoped, Timestamped, Versioned, Base):
    """A loyalty tier: a customer holds the highest-ranked tier whose filter they match."""

    __tablename__ = "tier"
    __table_args__ = (
        Index("ix_tier_key", "workspace_id", "key", unique=True),
        Index("ix_tier_rank", "workspace_id", "rank", unique=True),
    )

    key: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(200))
    rank: Mapped[int] = mapped_column(Integer)
    filter: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    depends_on: Mapped[list[str]] = mapped_column(JsonDocument, default=list)


class ScoringRule(WorkspaceScoped, Timestamped, Versioned, Base):
    """Points a customer earns while they match a filter, optionally halving every
    `half_life_days` since the newest behaviour row that made them match."""

    __tablename__ = "scoring_rule"
    __table_args__ = (
        Index("ix_scoring_rule_name", "workspace_id", "name", unique=True),
        Index("ix_scoring_rule_created", "workspace_id", "created_at", "id"),
    )

    name: Mapped[str] = mapped_column(String(200))
    points: Mapped[int] = mapped_column(Integer)
    filter: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    half_life_days: Mapped[int | None] = mapped_column(Integer)
    depends_on: Mapped[list[str]] = mapped_column(JsonDocument, default=list)


class StandingSettings(Base):
    """Per workspace: the score thresholds whose crossing is announced, and when tiers and
    scores were last re-evaluated for every customer (NULL: the rules changed, do it now)."""

    __tablename__ = "standing_settings"
    __table_args__ = (Index("ix_standing_settings_swept", "swept_at"),)

    workspace_id: Mapped[UUID] = mapped_column(
        Uuid, ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    score_thresholds: Mapped[list[int]] = mapped_column(JsonDocument, default=list)
    swept_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
