"""Stored outcomes of POST requests sent with an Idempotency-Key, scoped to the API key."""

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Uuid, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.db.base import Base
from app.db.types import JsonDocument, UtcDateTime


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_record"
    __table_args__ = (Index("ix_idempotency_record_expires_at", "expires_at"),)

    workspace_id: Mapped[UUID] = mapped_column(
        Uuid, ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    api_key_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int | None]
    response_headers: Mapped[list[list[str]] | None] = mapped_column(JsonDocument)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)

    @property
    def completed(self) -> bool:
        return self.response_status is not None


class Claim(StrEnum):
    ACQUIRED = "acquired"
    IN_FLIGHT = "in_flight"
    MISMATCH = "mismatch"
    COMPLETED = "completed"


class IdempotencyStore:
    """Claims keys and stores outcomes, each in its own short transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl: timedelta) -> None:
        self.sessions = sessions
        self.ttl = ttl

    async def claim(
        self, workspace_id: UUID, api_key_id: UUID, key: str, fingerprint: str
    ) -> tuple[Claim, IdempotencyRecord | None]:
        now = utcnow()
        identity = (workspace_id, api_key_id, key)
        async with self.sessions() as session:
            existing = await session.get(IdempotencyRecord, identity)
            if existing is not None and existing.expires_at <= now:
                await session.delete(existing)
                await session.flush()
                existing = None
            if existing is None:
                session.add(
                    IdempotencyRecord(
                        workspace_id=workspace_id,
                        api_key_id=api_key_id,
                        key=key,
                        fingerprint=fingerprint,
                        expires_at=now + self.ttl,
                    )
                )
                try:
                    await session.commit()
                except IntegrityError:
                    # Another request claimed the same key a moment ago.
                    return Claim.IN_FLIGHT, None
                return Claim.ACQUIRED, None
            if existing.fingerprint != fingerprint:
                return Claim.MISMATCH, existing
            if not existing.completed:
                return Claim.IN_FLIGHT, existing
            return Claim.COMPLETED, existing

    async def complete(
        self,
        identity: tuple[UUID, UUID, str],
        status: int,
        headers: list[list[str]],
        body: bytes,
    ) -> None:
        async with self.sessions() as session:
            record = await session.get(IdempotencyRecord, identity)
            if record is not None:
                record.response_status = status
                record.response_headers = headers
                record.response_body = body
                await session.commit()

    async def release(self, identity: tuple[UUID, UUID, str]) -> None:
        async with self.sessions() as session:
            await session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.workspace_id == identity[0],
                    IdempotencyRecord.api_key_id == identity[1],
                    IdempotencyRecord.key == identity[2],
                    IdempotencyRecord.response_status.is_(None),
                )
            )
            await session.commit()

    async def purge_expired(self) -> int:
        async with self.sessions() as session:
            result: Any = await session.execute(
                delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= utcnow())
            )
            await session.commit()
            return int(result.rowcount or 0)
