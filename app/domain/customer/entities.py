"""The customer record, its identities (emails, phones, external ids) and custom fields."""

from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.db.base import Base, Timestamped, Versioned, WorkspaceScoped
from app.db.types import JsonDocument, UtcDateTime


class Customer(WorkspaceScoped, Timestamped, Versioned, Base):
    """One person. Lists (emails, phones, tags) are kept here for reading in one row; the
    identities that must be unique or looked up are mirrored in `customer_identity`."""

    __tablename__ = "customer"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "company_id"],
            ["company.workspace_id", "company.id"],
            name="fk_customer_company",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "owner_id"],
            ["user.workspace_id", "user.id"],
            name="fk_customer_owner_user",
        ),
        Index("ix_customer_created", "workspace_id", "created_at", "id"),
        Index("ix_customer_updated", "workspace_id", "updated_at", "id"),
        Index("ix_customer_display_name", "workspace_id", "display_name", "id"),
        Index("ix_customer_company", "workspace_id", "company_id", "created_at", "id"),
        Index("ix_customer_owner", "workspace_id", "owner_id", "created_at", "id"),
        Index("ix_customer_stage", "workspace_id", "lifecycle_stage", "created_at", "id"),
        Index("ix_customer_name_key", "workspace_id", "name_key", "birthday"),
        Index("ix_customer_tier", "workspace_id", "tier", "id"),
        Index("ix_customer_score", "workspace_id", "score", "id"),
        # The RFM grid is counted from the stored scores without reading the rows.
        Index(
            "ix_customer_rfm",
            "workspace_id",
            "rfm_recency",
            "rfm_frequency",
            "rfm_monetary",
            "spent_currency",
            "total_spent",
        ),
        # Insight summaries and cohort sizes are counted from this index without the rows.
        Index(
            "ix_customer_purchases",
            "workspace_id",
            "first_order_at",
            postgresql_include=[
                "spent_currency",
                "order_count",
                "total_spent",
                "predicted_ltv_12m",
            ],
        ),
    )

    family_name: Mapped[str | None] = mapped_column(String(100))
    given_name: Mapped[str | None] = mapped_column(String(100))
    family_name_kana: Mapped[str | None] = mapped_column(String(100))
    given_name_kana: Mapped[str | None] = mapped_column(String(100))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    emails: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    phones: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    external_ids: Mapped[dict[str, str]] = mapped_column(JsonDocument, default=dict)
    address: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    birthday: Mapped[date | None] = mapped_column(Date)
    company_id: Mapped[UUID | None] = mapped_column(Uuid)
    owner_id: Mapped[UUID | None] = mapped_column(Uuid)
    lifecycle_stage: Mapped[str | None] = mapped_column(String(50))
    tags: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    consents: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    search_text: Mapped[str] = mapped_column(Text, default="")
    name_key: Mapped[str | None] = mapped_column(String(200))

    # Purchase metrics, kept by the commerce domain in the transaction of each order event.
    order_count: Mapped[int] = mapped_column(Integer, default=0)
    total_spent: Mapped[int] = mapped_column(BigInteger, default=0)
    spent_currency: Mapped[str | None] = mapped_column(String(3))
    first_order_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_order_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    average_order_value: Mapped[int] = mapped_column(BigInteger, default=0)
    average_days_between_orders: Mapped[float | None] = mapped_column(Float)
    favourite_category: Mapped[str | None] = mapped_column(String(100))
    favourite_channel: Mapped[str | None] = mapped_column(String(50))

    # Loyalty tier and lead score, kept by the segment domain's rules (derived, like metrics).
    tier: Mapped[str | None] = mapped_column(String(50))
    tier_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    score: Mapped[int] = mapped_column(Integer, default=0)
    score_breakdown: Mapped[list[dict[str, Any]]] = mapped_column(JsonDocument, default=list)
    # Scores relative to the workspace, recomputed by the worker (app/domain/insight).
    rfm_recency: Mapped[int | None] = mapped_column(SmallInteger)
    rfm_frequency: Mapped[int | None] = mapped_column(SmallInteger)
    rfm_monetary: Mapped[int | None] = mapped_column(SmallInteger)
    rfm_group: Mapped[str | None] = mapped_column(String(30))
    churn_risk: Mapped[bool | None] = mapped_column(Boolean)
    predicted_ltv_12m: Mapped[int | None] = mapped_column(BigInteger)
    probability_alive: Mapped[float | None] = mapped_column(Float)
    insights_computed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    @property
    def metrics(self) -> dict[str, Any]:
        """The read-only purchase figures, as the API shows them."""
        return {
            "order_count": self.order_count or 0,
            "total_spent": self.total_spent or 0,
            "currency": self.spent_currency,
            "first_order_at": self.first_order_at,
            "last_order_at": self.last_order_at,
            "average_order_value": self.average_order_value or 0,
            "average_days_between_orders": self.average_days_between_orders,
            "favourite_category": self.favourite_category,
            "favourite_channel": self.favourite_channel,
            "rfm": {
                "recency": self.rfm_recency,
                "frequency": self.rfm_frequency,
                "monetary": self.rfm_monetary,
                "group": self.rfm_group,
            },
            "churn_risk": self.churn_risk,
            "predicted_ltv": self.predicted_ltv_12m,
            "probability_alive": self.probability_alive,
            "insights_computed_at": self.insights_computed_at,
        }


class CustomerIdentity(Base):
    """An email, phone or external id that points at one customer.

    Emails and external ids are unique per workspace (and source); phones are not, as a
    household may share one.
    """

    __tablename__ = "customer_identity"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "customer_id"],
            ["customer.workspace_id", "customer.id"],
            name="fk_customer_identity_customer",
            ondelete="CASCADE",
        ),
        Index(
            "ix_customer_identity_unique",
            "workspace_id",
            "kind",
            "source",
            "value",
            unique=True,
            sqlite_where=text("kind <> 'phone'"),
            postgresql_where=text("kind <> 'phone'"),
        ),
        Index(
            "ix_customer_identity_phone",
            "workspace_id",
            "value",
            sqlite_where=text("kind = 'phone'"),
            postgresql_where=text("kind = 'phone'"),
        ),
    )

    workspace_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    customer_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    source: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(String(320), primary_key=True)


class CustomerRedirect(Base):
    """A customer merged into another: its id keeps answering with a pointer to the survivor."""

    __tablename__ = "customer_redirect"

    workspace_id: Mapped[UUID] = mapped_column(
        Uuid, ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    merged_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    survivor_id: Mapped[UUID] = mapped_column(Uuid)
    merged_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class FieldDefinition(WorkspaceScoped, Timestamped, Versioned, Base):
    """A custom field of customers, companies or deals: values live in their `attributes`."""

    __tablename__ = "field_definition"
    __table_args__ = (
        Index("ix_field_definition_key", "workspace_id", "object", "key", unique=True),
    )

    object: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(20))
    options: Mapped[list[str] | None] = mapped_column(JsonDocument)
    required: Mapped[bool] = mapped_column(Boolean, default=False)
