"""Companies: /v1/companies, and their contacts."""

from typing import Annotated
from uuid import UUID

from fastapi import Query, Request, Response, status

from app.api.deps import FixedOrderPageDep, IfMatchDep, PageDep, ReadUnit, Unit, WriteUnit
from app.api.errors import problem_responses
from app.api.responses import created_at_location, list_response, set_etag
from app.api.v1.routing import resource_router
from app.api.v1.schemas.common import ListResponse
from app.api.v1.schemas.search import SearchRequest
from app.api.v1.schemas.timeline import Timeline, timeline_response
from app.domain.access.scopes import Scope
from app.domain.company.schemas import Company, CompanyCreate, CompanyUpdate
from app.domain.company.service import CompanyQuery, CompanyService
from app.domain.customer.schemas import Customer
from app.domain.customer.service import CustomerQuery, CustomerService
from app.domain.interaction.timeline import EntryKind, TimelineService

router = resource_router("/companies", "companies")


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a company")
async def create_company(
    body: CompanyCreate,
    request: Request,
    response: Response,
    unit: Unit = WriteUnit(Scope.CUSTOMERS_WRITE),
) -> Company:
    company = await CompanyService(unit.session, unit.context).create(body)
    created_at_location(response, request, company.id)
    set_etag(response, company.version)
    return Company.model_validate(company)


@router.get("", summary="List companies")
async def list_companies(
    request: Request,
    response: Response,
    page: PageDep,
    q: Annotated[
        str | None, Query(max_length=200, description="Matches name, kana, domain")
    ] = None,
    industry: Annotated[str | None, Query(max_length=100)] = None,
    owner_id: UUID | None = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    domain: Annotated[str | None, Query(max_length=253)] = None,
    unit: Unit = ReadUnit(Scope.CUSTOMERS_READ),
) -> ListResponse[Company]:
    """Sort by `created_at` (default), `updated_at` or `name`, each also descending."""
    query = CompanyQuery(q=q, industry=industry, owner_id=owner_id, tag=tag, domain=domain)
    companies = await CompanyService(unit.session, unit.context).page(page, query)
    return list_response(request, response, companies, Company.model_validate)


@router.post("/search", summary="Search companies with the filter DSL")
async def search_companies(
    body: SearchRequest,
    request: Request,
    response: Response,
    unit: Unit = ReadUnit(Scope.CUSTOMERS_READ),
) -> ListResponse[Company]:
    companies = await CompanyService(unit.session, unit.context).search(body.filter, body.page())
    return list_response(request, response, companies, Company.model_validate)


@router.get("/{company_id}", responses=problem_responses(404), summary="Get a company")
async def get_company(
    company_id: UUID, response: Response, unit: Unit = ReadUnit(Scope.CUSTOMERS_READ)
) -> Company:
    company = await CompanyService(unit.session, unit.context).get(company_id)
    set_etag(response, company.version)
    return Company.model_validate(company)


@router.patch("/{company_id}", responses=problem_responses(404, 412), summary="Update a company")
async def update_company(
    company_id: UUID,
    body: CompanyUpdate,
    response: Response,
    if_match: IfMatchDep,
    unit: Unit = WriteUnit(Scope.CUSTOMERS_WRITE),
) -> Company:
    service = CompanyService(unit.session, unit.context)
    company = await service.update(company_id, body, expected_versions=if_match)
    set_etag(response, company.version)
    return Company.model_validate(company)


@router.delete(
    "/{company_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(404, 409, 412),
    summary="Delete a company without contacts",
)
async def delete_company(
    company_id: UUID, if_match: IfMatchDep, unit: Unit = WriteUnit(Scope.CUSTOMERS_WRITE)
) -> None:
    await CompanyService(unit.session, unit.context).delete(company_id, expected_versions=if_match)


@router.get(
    "/{company_id}/customers",
    responses=problem_responses(404),
    summary="List a company's customers (contacts)",
    response_model_exclude_unset=True,
)
async def list_company_customers(
    company_id: UUID,
    request: Request,
    response: Response,
    page: PageDep,
    unit: Unit = ReadUnit(Scope.CUSTOMERS_READ),
) -> ListResponse[Customer]:
    await CompanyService(unit.session, unit.context).get(company_id)
    customers = await CustomerService(unit.session, unit.context).page(
        page, CustomerQuery(company_id=company_id)
    )
    return list_response(request, response, customers, Customer.model_validate)


@router.get(
    "/{company_id}/timeline",
    responses=problem_responses(404),
    summary="What happened with a company, newest first",
)
async def company_timeline(
    company_id: UUID,
    request: Request,
    response: Response,
    page_request: FixedOrderPageDep,
    kind: Annotated[
        str | None,
        Query(
            pattern=r"^(interaction|deal|change)(,(interaction|deal|change))*$",
            description="Only these kinds, comma-separated: interaction, deal, change",
        ),
    ] = None,
    unit: Unit = ReadUnit(Scope.CUSTOMERS_READ),
) -> Timeline:
    """Interactions logged against the company, its deals' stage moves and its own changes, in
    one list with one cursor."""
    kinds = {EntryKind(value) for value in kind.split(",")} if kind else set()
    page = await TimelineService(unit.session, unit.context).company_page(
        company_id, page_request, kinds
    )
    return timeline_response(request, response, page)
