"""Customers: /v1/customers."""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Query, Request, Response, status
from pydantic import BaseModel

from app.api.deps import FixedOrderPageDep, IfMatchDep, PageDep, ReadUnit, Unit, WriteUnit
from app.api.errors import problem_body, problem_responses
from app.api.responses import created_at_location, list_response, set_etag
from app.api.v1.routing import resource_router
from app.api.v1.schemas.common import ListResponse
from app.api.v1.schemas.search import (
    BatchItemResult,
    BatchRequest,
    BatchResponse,
    SearchRequest,
)
from app.api.v1.schemas.timeline import Timeline, timeline_response
from app.core.errors import ValidationFailed
from app.db.pagination import Page
from app.domain.access.scopes import Scope
from app.domain.commerce.schemas import Order
from app.domain.commerce.service import IngestService, OrderQuery
from app.domain.customer.entities import Customer as CustomerEntity
from app.domain.customer.schemas import Customer, CustomerCreate, CustomerMerge, CustomerUpdate
from app.domain.customer.service import CustomerQuery, CustomerService
from app.domain.interaction.timeline import EntryKind, TimelineService
from app.domain.segment.schemas import CustomerSegment
from app.domain.segment.service import SegmentService

router = resource_router("/customers", "customers")


class DuplicatePair(BaseModel):
    customer_ids: list[UUID]
    reason: str
    value: str


class DuplicateList(BaseModel):
    data: list[DuplicatePair]


ExpandQuery = Annotated[
    str | None,
    Query(
        pattern=r"^(company|owner)(,(company|owner))?$",
        description="Embed related objects in the read: company, owner (comma-separated)",
    ),
]


def _expansions(expand: str | None) -> frozenset[str]:
    return frozenset(expand.split(",")) if expand else frozenset()


async def _page_of_views(
    service: CustomerService, page: Page[CustomerEntity], expand: str | None
) -> Page[Customer]:
    views = await service.views(page.items, _expansions(expand))
    return Page(items=views, next_cursor=page.next_cursor)


def _external_id(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    source, separator, external_id = value.partition(":")
    if not separator or not source or not external_id:
        raise ValidationFailed.at(("query", "external_id"), "Write it as source:id, e.g. shop:u-1.")
    return source, external_id


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
    response_model_exclude_unset=True,
)
async def create_customer(
    body: CustomerCreate,
    request: Request,
    response: Response,
    unit: Unit = WriteUnit(Scope.CUSTOMERS_WRITE),
) -> Customer:
    """Create a customer. An email or external id that another customer has answers 409 with
    `existing_id`."""
    customer = await CustomerService(unit.session, unit.context).create(body)
    created_at_location(response, request, customer.id)
    set_etag(response, customer.version)
    return Customer.model_validate(customer)


@router.get("", summary="List customers", response_model_exclude_unset=True)
async def list_customers(
    request: Request,
    response: Response,
    page: PageDep,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Matches names, kana, emails, phones and company names, ignoring width, "
            "case and kana spelling",
        ),
    ] = None,
    lifecycle_stage: Annotated[str | None, Query(max_length=50)] = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    company_id: UUID | None = None,
    owner_id: UUID | None = None,
    email: Annotated[str | None, Query(max_length=320)] = None,
    external_id: Annotated[
        str | None, Query(max_length=260, description="source:id, e.g. shop:u-1001")
    ] = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    updated_after: datetime | None = None,
    expand: ExpandQuery = None,
    unit: Unit = ReadUnit(Scope.CUSTOMERS_READ),
) -> ListResponse[Customer]:
    """Sort by `created_at` (default), `updated_at` or `display_name`, each also descending."""
    query = CustomerQuery(
        q=q,
        lifecycle_stage=lifecycle_stage,
        tag=tag,
        company_id=company_id,
        owner_id=owner_id,
        email=email,
        external_id=_external_id(external_id),
        created_after=created_after,
        created_before=created_before,
        updated_after=updated_after,
    )
    service = CustomerService(unit.session, unit.context)
    views = await _page_of_views(service, await service.page(page, query), expand)
    return list_response(request, response, views, lambda view: view)


@router.post(
    "/search", summary="Search customers with the filter DSL", response_model_exclude_unset=True
)
async def search_customers(
    body: SearchRequest,
    request: Request,
    response: Response,
    expand: ExpandQuery = None,
    unit: Unit = ReadUnit(Scope.CUSTOMERS_READ),
) -> ListResponse[Customer]:
    service = CustomerService(unit.session, unit.context)
    views = await _page_of_views(service, await service.search(body.filter, body.page()), expand)
    return list_response(request, response, views, lambda view: view)


@router.post("/batch", summary="Create or update up to 1,000 customers")
async def batch_customers(
    body: BatchRequest, unit: Unit = WriteUnit(Scope.CUSTOMERS_WRITE)
) -> BatchResponse:
    """Each item is a customer as for create. An item whose external id or email matches a
    customer updates it (adding the emails and phones it brings); others are created. Results
    come in input order; a bad item fails alone."""
    results = await CustomerService(unit.session, unit.context).batch(body.items)
    return BatchResponse(
        results=[
            BatchItemResult.model_validate(
                {
                    "index": result.index,
                    "status": result.status,
                    "id": result.customer_id,
                    "error": problem_body(result.error) if result.error else None,
                }
            )
            for result in results
        ]
    )


@router.get("/duplicates", summary="Pairs of customers that are likely one person")
async def list_duplicates(
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    unit: Unit = ReadUnit(Scope.CUSTOMERS_READ),
) -> DuplicateList:
    """Customers sharing a phone number, or the same name and birthday."""
    found = await CustomerService(unit.session, unit.context).duplicates(limit)
    return DuplicateList(
        data=[
            DuplicatePair(
                customer_ids=list(pair.customer_ids), reason=pair.reason, value=pair.value
            )
            for pair in found
        ]
    )


@router.get(
    "/{customer_id}",
    responses=problem_responses(404),
    summary="Get a customer",
    response_model_exclude_unset=True,
)
async def get_customer(
    customer_id: UUID,
    response: Response,
    expand: ExpandQuery = None,
    unit: Unit = ReadUnit(Scope.CUSTOMERS_READ),
) -> Customer:
    """A merged customer answers 404 with `merged_into`, the id of the survivor."""
    service = CustomerService(unit.session, unit.context)
    customer = await service.get(customer_id)
    set_etag(response, customer.version)
    return (await service.views([customer], _expansions(expand)))[0]


@router.patch(
    "/{customer_id}",
    responses=problem_responses(404, 409, 412),
    summary="Update a customer",
    response_model_exclude_unset=True,
)
async def update_customer(
    customer_id: UUID,
    body: CustomerUpdate,
    response: Response,
    if_match: IfMatchDep,
    unit: Unit = WriteUnit(Scope.CUSTOMERS_WRITE),
) -> Customer:
    """Merge semantics: omitted fields stay; lists replace; `external_ids`, `consents` and
    `attributes` merge key by key, null removing a key."""
    service = CustomerService(unit.session, unit.context)
    customer = await service.update(customer_id, body, expected_versions=if_match)
    set_etag(response, customer.version)
    return Customer.model_validate(customer)


@router.delete(
    "/{customer_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(404, 412),
    summary="Delete or erase a customer",
)
async def delete_customer(
    customer_id: UUID,
    if_match: IfMatchDep,
    erase: Annotated[
        bool,
        Query(description="Also remove the person's data from events and the audit log"),
    ] = False,
    unit: Unit = WriteUnit(Scope.CUSTOMERS_WRITE),
) -> None:
    await CustomerService(unit.session, unit.context).delete(
        customer_id, erase=erase, expected_versions=if_match
    )


@router.post(
    "/{customer_id}/merge",
    responses=problem_responses(404, 409, 412),
    summary="Merge another customer into this one",
    response_model_exclude_unset=True,
)
async def merge_customers(
    customer_id: UUID,
    body: CustomerMerge,
    response: Response,
    if_match: IfMatchDep,
    unit: Unit = WriteUnit(Scope.CUSTOMERS_WRITE),
) -> Customer:
    """This customer survives with both customers' emails, phones, external ids, tags and
    attributes (its own values win on conflict); the other answers 404 with `merged_into`."""
    service = CustomerService(unit.session, unit.context)
    customer = await service.merge(customer_id, body.other_id, expected_versions=if_match)
    set_etag(response, customer.version)
    return Customer.model_validate(customer)


@router.get(
    "/{customer_id}/timeline",
    responses=problem_responses(404),
    summary="Everything that happened with a customer, newest first",
)
async def customer_timeline(
    customer_id: UUID,
    request: Request,
    response: Response,
    page_request: FixedOrderPageDep,
    kind: Annotated[
        str | None,
        Query(
            pattern=r"^(interaction|order|event|deal|segment|change)"
            r"(,(interaction|order|event|deal|segment|change))*$",
            description="Only these kinds, comma-separated: "
            "interaction, order, event, deal, segment, change",
        ),
    ] = None,
    unit: Unit = ReadUnit(Scope.CUSTOMERS_READ),
) -> Timeline:
    """Interactions, orders, refunds, cancellations, page views and other shop events, deal
    stage moves, segments entered and left, and the record's own changes, in one list with one
    cursor (also those of customers merged in)."""
    kinds = {EntryKind(value) for value in kind.split(",")} if kind else set()
    page = await TimelineService(unit.session, unit.context).page(customer_id, page_request, kinds)
    return timeline_response(request, response, page)


@router.get(
    "/{customer_id}/orders", responses=problem_responses(404), summary="A customer's orders"
)
async def list_customer_orders(
    customer_id: UUID,
    request: Request,
    response: Response,
    page: PageDep,
    unit: Unit = ReadUnit(Scope.CUSTOMERS_READ),
) -> ListResponse[Order]:
    """Newest first unless `sort` says otherwise."""
    await CustomerService(unit.session, unit.context).get(customer_id)
    orders = await IngestService(unit.session, unit.context).orders_page(
        page, OrderQuery(customer_id=customer_id)
    )
    return list_response(request, response, orders, Order.model_validate)


@router.get(
    "/{customer_id}/export",
    responses=problem_responses(404),
    summary="Everything held about a customer",
)
async def export_customer(
    customer_id: UUID, unit: Unit = ReadUnit(Scope.CUSTOMERS_READ)
) -> dict[str, Any]:
    return await CustomerService(unit.session, unit.context).export(customer_id)


@router.get(
    "/{customer_id}/segments",
    responses=problem_responses(404),
    summary="List the segments a customer is in",
)
async def list_customer_segments(
    customer_id: UUID, unit: Unit = ReadUnit(Scope.SEGMENTS_READ)
) -> list[CustomerSegment]:
    memberships = await SegmentService(unit.session, unit.context).of_customer(customer_id)
    return [
        CustomerSegment(
            id=segment.id, name=segment.name, kind=segment.kind, entered_at=member.entered_at
        )
        for segment, member in memberships
    ]
