"""Imports every entity so that Base.metadata knows all tables (Alembic, tests)."""

from app.core.idempotency import IdempotencyRecord
from app.db.base import Base
from app.domain.access.entities import ApiKey, User, Workspace
from app.domain.outbox.entities import DomainEvent

__all__ = ["ApiKey", "Base", "DomainEvent", "IdempotencyRecord", "User", "Workspace"]
