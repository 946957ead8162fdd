"""Imports every entity so that Base.metadata knows all tables (Alembic, tests)."""

from app.core.idempotency import IdempotencyRecord
from app.db.base import Base
from app.domain.access.entities import ApiKey, User, Workspace
from app.domain.commerce.entities import InboundEvent, Order, OrderLine
from app.domain.company.entities import Company
from app.domain.customer.entities import (
    Customer,
    CustomerIdentity,
    CustomerRedirect,
    FieldDefinition,
)
from app.domain.imports.entities import ImportChunk, ImportJob, ImportRowError
from app.domain.insight.entities import InsightCohortActivity, InsightCohortSize, InsightModel
from app.domain.interaction.entities import Interaction
from app.domain.outbox.entities import DomainEvent
from app.domain.pipeline.entities import Deal, DealContact, DealStageChange, Pipeline, Stage
from app.domain.segment.entities import (
    ScoringRule,
    Segment,
    SegmentMember,
    SegmentMembershipChange,
    SegmentSize,
    StandingSettings,
    Tier,
)
from app.domain.webhook.entities import (
    DispatcherCursor,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from app.domain.workflow.entities import Workflow, WorkflowRun, WorkflowVersion

__all__ = [
    "ApiKey",
    "Base",
    "Company",
    "Customer",
    "CustomerIdentity",
    "CustomerRedirect",
    "Deal",
    "DealContact",
    "DealStageChange",
    "DispatcherCursor",
    "DomainEvent",
    "FieldDefinition",
    "IdempotencyRecord",
    "ImportChunk",
    "ImportJob",
    "ImportRowError",
    "InboundEvent",
    "InsightCohortActivity",
    "InsightCohortSize",
    "InsightModel",
    "Interaction",
    "Order",
    "OrderLine",
    "Pipeline",
    "ScoringRule",
    "Segment",
    "SegmentMember",
    "SegmentMembershipChange",
    "SegmentSize",
    "Stage",
    "StandingSettings",
    "Tier",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "Workflow",
    "WorkflowRun",
    "WorkflowVersion",
    "Workspace",
]
