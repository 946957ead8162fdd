"""Rules for webhook endpoints and their delivery log."""

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.context import Context
from app.core.errors import NotFound
from app.core.etags import ensure_version
from app.core.ids import uuid7
from app.db.pagination import Page, PageRequest
from app.db.repository import WorkspaceRepository
from app.domain.outbox.service import EventRecorder, changes_between
from app.domain.webhook import schemas
from app.domain.webhook.entities import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.domain.webhook.signing import new_secret
from app.domain.webhook.ssrf import check_url, resolve_public

ROTATION_OVERLAP = timedelta(hours=24)
PENDING = "pending"
PING = "webhook.ping"


class EndpointRepository(WorkspaceRepository[WebhookEndpoint]):
    entity = WebhookEndpoint
    noun = "webhook"


class DeliveryRepository(WorkspaceRepository[WebhookDelivery]):
    entity = WebhookDelivery
    noun = "delivery"

    async def attempts(self, delivery_id: UUID) -> list[WebhookAttempt]:
        stmt = (
            select(WebhookAttempt)
            .where(
                WebhookAttempt.workspace_id == self.workspace_id,
                WebhookAttempt.delivery_id == delivery_id,
            )
            .order_by(WebhookAttempt.attempted_at)
        )
        return list((await self.session.execute(stmt)).scalars())


class WebhookService:
    def __init__(self, session: AsyncSession, context: Context, *, allow_private: bool) -> None:
        self.session = session
        self.context = context
        self.allow_private = allow_private
        self.endpoints = EndpointRepository(session, context.workspace_id)
        self.deliveries = DeliveryRepository(session, context.workspace_id)
        self.events = EventRecorder(session, context)

    async def create(self, data: schemas.WebhookCreate) -> WebhookEndpoint:
        await self._check_target(data.url)
        endpoint = self.endpoints.add(
            WebhookEndpoint(
                url=data.url,
                description=data.description,
                event_types=list(dict.fromkeys(data.event_types)),
                changed_fields=data.changed_fields,
                enabled=True if data.enabled is None else data.enabled,
                ordered=True if data.ordered is None else data.ordered,
                headers=data.headers or {},
                secret=new_secret(),
            )
        )
        await self.session.flush()
        self._record("webhook.created", endpoint)
        return endpoint

    async def get(self, endpoint_id: UUID) -> WebhookEndpoint:
        return await self.endpoints.require(endpoint_id)

    async def page(self, request: PageRequest) -> Page[WebhookEndpoint]:
        return await self.endpoints.page(self.endpoints.select(), request)

    async def update(
        self,
        endpoint_id: UUID,
        data: schemas.WebhookUpdate,
        *,
        expected_versions: frozenset[int] | None,
    ) -> WebhookEndpoint:
        endpoint = await self.get(endpoint_id)
        ensure_version(endpoint.version, expected_versions)
        changes = data.model_dump(exclude_unset=True)
        if "url" in changes:
            await self._check_target(changes["url"])
        before = schemas.Webhook.snapshot(endpoint)
        for name, value in changes.items():
            setattr(endpoint, name, value)
        if changes.get("enabled"):
            endpoint.failing_since = None
            endpoint.disabled_reason = None
        await self.session.flush()
        after = schemas.Webhook.snapshot(endpoint)
        if diff := changes_between(before, after):
            self._record("webhook.updated", endpoint, diff)
        return endpoint

    async def delete(self, endpoint_id: UUID, *, expected_versions: frozenset[int] | None) -> None:
        endpoint = await self.get(endpoint_id)
        ensure_version(endpoint.version, expected_versions)
        self._record("webhook.deleted", endpoint)
        await self.endpoints.delete(endpoint)
        await self.session.flush()

    async def rotate_secret(self, endpoint_id: UUID) -> WebhookEndpoint:
        """A new secret; the old one keeps signing beside it for 24 hours."""
        endpoint = await self.get(endpoint_id)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = utcnow() + ROTATION_OVERLAP
        endpoint.secret = new_secret()
        await self.session.flush()
        self._record("webhook.secret_rotated", endpoint)
        return endpoint

    async def ping(self, endpoint_id: UUID) -> WebhookDelivery:
        """Queues a `webhook.ping` event for this endpoint alone."""
        event_id = uuid7()
        payload = {
            "id": str(event_id),
            "type": PING,
            "created_at": utcnow().isoformat().replace("+00:00", "Z"),
            "workspace_id": str(self.context.workspace_id),
            "data": {"webhook_id": str(endpoint_id)},
        }
        return await self.send(endpoint_id, PING, payload, event_id=event_id)

    async def send(
        self,
        endpoint_id: UUID,
        event_type: str,
        payload: dict[str, Any],
        *,
        event_id: UUID | None = None,
    ) -> WebhookDelivery:
        """Queues `payload` for this endpoint alone (a ping, a workflow's `send_webhook`),
        signed and retried like any delivery; its `webhook-id` is `event_id`, new by default."""
        endpoint = await self.get(endpoint_id)
        delivery = self.deliveries.add(
            WebhookDelivery(
                endpoint_id=endpoint.id,
                event_id=event_id or uuid7(),
                event_type=event_type,
                sequence=0,  # waits for nothing queued before it
                payload=payload,
                status=PENDING,
                attempts=0,
                next_attempt_at=utcnow(),
            )
        )
        await self.session.flush()
        return delivery

    async def deliveries_page(
        self,
        endpoint_id: UUID,
        request: PageRequest,
        *,
        status: str | None,
        event_type: str | None,
        created_after: datetime | None,
        created_before: datetime | None,
    ) -> Page[WebhookDelivery]:
        await self.get(endpoint_id)
        stmt: Select[WebhookDelivery] = self.deliveries.select().where(
            WebhookDelivery.endpoint_id == endpoint_id
        )
        if status is not None:
            stmt = stmt.where(WebhookDelivery.status == status)
        if event_type is not None:
            stmt = stmt.where(WebhookDelivery.event_type == event_type)
        if created_after is not None:
            stmt = stmt.where(WebhookDelivery.created_at >= created_after)
        if created_before is not None:
            stmt = stmt.where(WebhookDelivery.created_at < created_before)
        return await self.deliveries.page(stmt, request)

    async def delivery(
        self, endpoint_id: UUID, delivery_id: UUID
    ) -> tuple[WebhookDelivery, list[WebhookAttempt]]:
        delivery = await self.deliveries.require(delivery_id)
        if delivery.endpoint_id != endpoint_id:
            raise NotFound("delivery", delivery_id)
        return delivery, await self.deliveries.attempts(delivery_id)

    async def redeliver(self, endpoint_id: UUID, delivery_id: UUID) -> WebhookDelivery:
        """Sends the delivery again from the first attempt, whatever happened before."""
        delivery, _ = await self.delivery(endpoint_id, delivery_id)
        delivery.status = PENDING
        delivery.attempts = 0
        delivery.next_attempt_at = utcnow()
        delivery.completed_at = None
        await self.session.flush()
        return delivery

    async def replay(self, endpoint_id: UUID, start: datetime, end: datetime) -> int:
        """Sends again every delivery of the endpoint created within [start, end)."""
        await self.get(endpoint_id)
        result: Any = await self.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.workspace_id == self.context.workspace_id,
                WebhookDelivery.endpoint_id == endpoint_id,
                WebhookDelivery.created_at >= start,
                WebhookDelivery.created_at < end,
            )
            .values(status=PENDING, attempts=0, next_attempt_at=utcnow(), completed_at=None)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)

    async def _check_target(self, url: str) -> None:
        target = check_url(url, allow_private=self.allow_private)
        await resolve_public(target.host, target.port, allow_private=self.allow_private)

    def _record(
        self, event_type: str, endpoint: WebhookEndpoint, changes: dict[str, Any] | None = None
    ) -> None:
        self.events.record(
            event_type,
            subject_type="webhook",
            subject_id=endpoint.id,
            data=schemas.Webhook.snapshot(endpoint),
            changes=changes,
        )
