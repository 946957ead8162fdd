"""Rules for companies."""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.context import Context
from app.core.errors import Conflict, ValidationFailed
from app.core.etags import ensure_version
from app.core.text import like_pattern, search_form
from app.db.dialect import json_array_holds
from app.db.pagination import Page, PageRequest
from app.domain.access.repository import UserRepository
from app.domain.company import schemas
from app.domain.company.entities import Company
from app.domain.company.filters import company_fields
from app.domain.company.repository import CompanyRepository
from app.domain.customer.attributes import apply_attributes
from app.domain.customer.entities import Customer
from app.domain.customer.repository import FieldDefinitionRepository
from app.domain.customer.schemas import FieldObject
from app.domain.outbox.service import EventRecorder, changes_between
from app.filters.compiler import compile_filter


@dataclass(frozen=True, slots=True)
class CompanyQuery:
    q: str | None = None
    industry: str | None = None
    owner_id: UUID | None = None
    tag: str | None = None
    domain: str | None = None


def _search_text(company: Company) -> str:
    parts = [company.name, company.name_kana, company.domain]
    return "\n".join(search_form(part) for part in parts if part)


class CompanyService:
    def __init__(self, session: AsyncSession, context: Context) -> None:
        self.session = session
        self.context = context
        self.companies = CompanyRepository(session, context.workspace_id)
        self.definitions = FieldDefinitionRepository(session, context.workspace_id)
        self.users = UserRepository(session, context.workspace_id)
        self.events = EventRecorder(session, context)

    async def create(self, data: schemas.CompanyCreate) -> Company:
        company = Company(tags=[], attributes={})
        await self._write(company, data, creating=True)
        self.companies.add(company)
        await self.session.flush()
        self.events.record(
            "company.created",
            subject_type="company",
            subject_id=company.id,
            data=schemas.Company.snapshot(company),
        )
        return company

    async def get(self, company_id: UUID) -> Company:
        return await self.companies.require(company_id)

    async def page(self, page: PageRequest, query: CompanyQuery) -> Page[Company]:
        return await self.companies.page(self._filtered(query), page)

    async def search(self, raw_filter: Any, page: PageRequest) -> Page[Company]:
        stmt = self.companies.select()
        if raw_filter is not None:
            stmt = stmt.where(await self.compile_filter(raw_filter, ("body", "filter")))
        return await self.companies.page(stmt, page)

    async def compile_filter(
        self, raw_filter: Any, path: tuple[str | int, ...]
    ) -> ColumnElement[bool]:
        definitions = await self.definitions.for_object(FieldObject.COMPANY)
        registry = company_fields(self._dialect(), list(definitions.values()))
        return compile_filter(raw_filter, registry, now=utcnow(), path=path)

    async def update(
        self,
        company_id: UUID,
        data: schemas.CompanyUpdate,
        *,
        expected_versions: frozenset[int] | None,
    ) -> Company:
        company = await self.get(company_id)
        ensure_version(company.version, expected_versions)
        before = schemas.Company.snapshot(company)
        await self._write(company, data, creating=False)
        await self.session.flush()
        after = schemas.Company.snapshot(company)
        if diff := changes_between(before, after):
            self.events.record(
                "company.updated",
                subject_type="company",
                subject_id=company.id,
                data=after,
                changes=diff,
            )
        return company

    async def delete(self, company_id: UUID, *, expected_versions: frozenset[int] | None) -> None:
        company = await self.get(company_id)
        ensure_version(company.version, expected_versions)
        contacts = await self.session.scalar(
            select(func.count()).where(
                Customer.workspace_id == self.context.workspace_id,
                Customer.company_id == company_id,
            )
        )
        if contacts:
            raise Conflict(
                f"The company has {contacts} contacts; move them to another company or clear "
                "their company_id first.",
                contact_count=contacts,
            )
        data = schemas.Company.snapshot(company)
        await self.companies.delete(company)
        await self.session.flush()
        self.events.record(
            "company.deleted", subject_type="company", subject_id=company_id, data=data
        )

    def _filtered(self, query: CompanyQuery) -> Select[Company]:
        stmt = self.companies.select()
        if query.q is not None and (fragment := search_form(query.q)):
            stmt = stmt.where(Company.search_text.like(like_pattern(fragment), escape="\\"))
        if query.industry is not None:
            stmt = stmt.where(Company.industry == query.industry)
        if query.owner_id is not None:
            stmt = stmt.where(Company.owner_id == query.owner_id)
        if query.domain is not None:
            stmt = stmt.where(Company.domain == query.domain.lower())
        if query.tag is not None:
            stmt = stmt.where(json_array_holds(Company.tags, query.tag, self._dialect()))
        return stmt

    async def _write(self, company: Company, data: schemas.CompanyWrite, *, creating: bool) -> None:
        fields = data.model_fields_set
        owner_id = data.owner_id if "owner_id" in fields else None
        if owner_id is not None and not await self.users.existing_ids({owner_id}):
            raise ValidationFailed.at(("body", "owner_id"), f"No user with id {owner_id}.")
        definitions = await self.definitions.for_object(FieldObject.COMPANY)
        for name in fields:
            value = getattr(data, name)
            if name == "address":
                company.address = value.model_dump(exclude_none=True) if value else None
            elif name == "attributes":
                company.attributes = apply_attributes(
                    {} if creating else company.attributes,
                    value or {},
                    definitions,
                    loc=("body", "attributes"),
                    creating=creating,
                )
            elif name == "tags":
                company.tags = value or []
            else:
                setattr(company, name, value)
        if creating and "attributes" not in fields:
            company.attributes = apply_attributes(
                {}, {}, definitions, loc=("body", "attributes"), creating=True
            )
        company.search_text = _search_text(company)

    def _dialect(self) -> str:
        return self.session.bind.dialect.name if self.session.bind is not None else "sqlite"
