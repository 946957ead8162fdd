"""Webhook endpoints and their delivery log: /v1/webhooks (scope webhooks:manage)."""

from datetime import datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import Query, Request, Response, status
from pydantic import BaseModel, Field

from app.api.deps import IfMatchDep, PageDep, ReadUnit, Unit, WriteUnit
from app.api.errors import problem_responses
from app.api.responses import created_at_location, list_response, set_etag
from app.api.v1.routing import resource_router
from app.api.v1.schemas.common import ListResponse
from app.core.clock import utcnow
from app.domain.access.scopes import Scope
from app.domain.webhook.schemas import (
    Attempt,
    Delivery,
    DeliveryDetail,
    Webhook,
    WebhookCreate,
    WebhookUpdate,
    WebhookWithSecret,
)
from app.domain.webhook.service import WebhookService

router = resource_router("/webhooks", "webhooks")


def _service(unit: Unit, request: Request) -> WebhookService:
    allow_private: bool = request.app.state.settings.webhook_allow_private
    return WebhookService(unit.session, unit.context, allow_private=allow_private)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Subscribe an endpoint")
async def create_webhook(
    body: WebhookCreate,
    request: Request,
    response: Response,
    unit: Unit = WriteUnit(Scope.WEBHOOKS_MANAGE),
) -> WebhookWithSecret:
    """The URL must be https and resolve only to public addresses. The answer carries the
    signing secret, shown only now (and on rotation)."""
    endpoint = await _service(unit, request).create(body)
    created_at_location(response, request, endpoint.id)
    set_etag(response, endpoint.version)
    return WebhookWithSecret.model_validate(endpoint)


@router.get("", summary="List webhook endpoints")
async def list_webhooks(
    request: Request,
    response: Response,
    page: PageDep,
    unit: Unit = ReadUnit(Scope.WEBHOOKS_MANAGE),
) -> ListResponse[Webhook]:
    endpoints = await _service(unit, request).page(page)
    return list_response(request, response, endpoints, Webhook.model_validate)


@router.get("/{webhook_id}", responses=problem_responses(404), summary="Get an endpoint")
async def get_webhook(
    webhook_id: UUID,
    request: Request,
    response: Response,
    unit: Unit = ReadUnit(Scope.WEBHOOKS_MANAGE),
) -> Webhook:
    endpoint = await _service(unit, request).get(webhook_id)
    set_etag(response, endpoint.version)
    return Webhook.model_validate(endpoint)


@router.patch("/{webhook_id}", responses=problem_responses(404, 412), summary="Update an endpoint")
async def update_webhook(
    webhook_id: UUID,
    body: WebhookUpdate,
    request: Request,
    response: Response,
    if_match: IfMatchDep,
    unit: Unit = WriteUnit(Scope.WEBHOOKS_MANAGE),
) -> Webhook:
    """Enabling a disabled endpoint clears its failure state."""
    endpoint = await _service(unit, request).update(webhook_id, body, expected_versions=if_match)
    set_etag(response, endpoint.version)
    return Webhook.model_validate(endpoint)


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(404, 412),
    summary="Delete an endpoint and its delivery log",
)
async def delete_webhook(
    webhook_id: UUID,
    request: Request,
    if_match: IfMatchDep,
    unit: Unit = WriteUnit(Scope.WEBHOOKS_MANAGE),
) -> None:
    await _service(unit, request).delete(webhook_id, expected_versions=if_match)


@router.post(
    "/{webhook_id}/rotate-secret",
    responses=problem_responses(404),
    summary="Rotate the signing secret",
)
async def rotate_webhook_secret(
    webhook_id: UUID, request: Request, unit: Unit = WriteUnit(Scope.WEBHOOKS_MANAGE)
) -> WebhookWithSecret:
    """The new secret signs from now on; the old one keeps signing beside it for 24 hours,
    so receivers can switch without losing a delivery."""
    endpoint = await _service(unit, request).rotate_secret(webhook_id)
    return WebhookWithSecret.model_validate(endpoint)


@router.post(
    "/{webhook_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(404),
    summary="Send a webhook.ping",
)
async def ping_webhook(
    webhook_id: UUID, request: Request, unit: Unit = WriteUnit(Scope.WEBHOOKS_MANAGE)
) -> Delivery:
    return Delivery.model_validate(await _service(unit, request).ping(webhook_id))


class Replay(BaseModel):
    queued: int = Field(description="Deliveries that will be sent again")


@router.post(
    "/{webhook_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(404),
    summary="Send again every delivery of a time range",
)
async def replay_webhook(
    webhook_id: UUID,
    request: Request,
    from_: Annotated[datetime | None, Query(alias="from", description="Default: 24 h ago")] = None,
    to: Annotated[datetime | None, Query(description="Default: now")] = None,
    unit: Unit = WriteUnit(Scope.WEBHOOKS_MANAGE),
) -> Replay:
    """Every delivery created within [from, to) is queued again, in its original order."""
    end = to or utcnow()
    start = from_ or end - timedelta(hours=24)
    queued = await _service(unit, request).replay(webhook_id, start, end)
    return Replay(queued=queued)


@router.get(
    "/{webhook_id}/deliveries", responses=problem_responses(404), summary="The delivery log"
)
async def list_deliveries(
    webhook_id: UUID,
    request: Request,
    response: Response,
    page: PageDep,
    status: Annotated[str | None, Query(pattern=r"^(pending|delivering|succeeded|failed)$")] = None,
    event_type: Annotated[str | None, Query(max_length=100)] = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    unit: Unit = ReadUnit(Scope.WEBHOOKS_MANAGE),
) -> ListResponse[Delivery]:
    deliveries = await _service(unit, request).deliveries_page(
        webhook_id,
        page,
        status=status,
        event_type=event_type,
        created_after=created_after,
        created_before=created_before,
    )
    return list_response(request, response, deliveries, Delivery.model_validate)


@router.get(
    "/{webhook_id}/deliveries/{delivery_id}",
    responses=problem_responses(404),
    summary="A delivery with every attempt",
)
async def get_delivery(
    webhook_id: UUID,
    delivery_id: UUID,
    request: Request,
    unit: Unit = ReadUnit(Scope.WEBHOOKS_MANAGE),
) -> DeliveryDetail:
    delivery, attempts = await _service(unit, request).delivery(webhook_id, delivery_id)
    return DeliveryDetail.model_validate(
        {
            **Delivery.snapshot(delivery),
            "payload": delivery.payload,
            "attempts_log": [Attempt.model_validate(attempt) for attempt in attempts],
        }
    )


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(404),
    summary="Send a delivery again",
)
async def redeliver(
    webhook_id: UUID,
    delivery_id: UUID,
    request: Request,
    unit: Unit = WriteUnit(Scope.WEBHOOKS_MANAGE),
) -> Delivery:
    return Delivery.model_validate(await _service(unit, request).redeliver(webhook_id, delivery_id))
