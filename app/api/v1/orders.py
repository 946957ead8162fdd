"""Orders: /v1/orders (read; orders arrive as shop events)."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import Query, Request, Response

from app.api.deps import PageDep, ReadUnit, Unit
from app.api.errors import problem_responses
from app.api.responses import list_response
from app.api.v1.routing import resource_router
from app.api.v1.schemas.common import ListResponse
from app.domain.access.scopes import Scope
from app.domain.commerce.schemas import Order
from app.domain.commerce.service import IngestService, OrderQuery

router = resource_router("/orders", "orders")


@router.get("", summary="List orders")
async def list_orders(
    request: Request,
    response: Response,
    page: PageDep,
    customer_id: UUID | None = None,
    channel: Annotated[str | None, Query(max_length=50)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    sku: Annotated[str | None, Query(max_length=100, description="Orders with this sku")] = None,
    occurred_after: datetime | None = None,
    occurred_before: datetime | None = None,
    unit: Unit = ReadUnit(Scope.CUSTOMERS_READ),
) -> ListResponse[Order]:
    """Sort by `created_at` (default), `occurred_at` or `updated_at`, each also descending."""
    query = OrderQuery(
        customer_id=customer_id,
        channel=channel,
        status=status,
        sku=sku,
        occurred_after=occurred_after,
        occurred_before=occurred_before,
    )
    orders = await IngestService(unit.session, unit.context).orders_page(page, query)
    return list_response(request, response, orders, Order.model_validate)


@router.get("/{order_id}", responses=problem_responses(404), summary="Get an order")
async def get_order(order_id: UUID, unit: Unit = ReadUnit(Scope.CUSTOMERS_READ)) -> Order:
    return Order.model_validate(await IngestService(unit.session, unit.context).get_order(order_id))
