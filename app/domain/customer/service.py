"""Rules for customers: writes with identity uniqueness, search, batch upsert, merge, erase."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.context import Context
from app.core.errors import AppError, Conflict, NotFound, ValidationFailed
from app.core.etags import ensure_version
from app.core.ids import uuid7
from app.core.schemas import validate_input
from app.core.text import digits, like_pattern, search_form
from app.db.dialect import json_array_holds
from app.db.pagination import Page, PageRequest, SortKey
from app.domain.access.repository import UserRepository, WorkspaceDirectory
from app.domain.access.schemas import User as UserView
from app.domain.commerce.metrics import refresh_metrics
from app.domain.commerce.repository import InboundEventRepository, OrderRepository
from app.domain.company.entities import Company
from app.domain.company.repository import CompanyRepository
from app.domain.company.schemas import Company as CompanyView
from app.domain.customer import schemas
from app.domain.customer.attributes import apply_attributes
from app.domain.customer.entities import Customer, FieldDefinition
from app.domain.customer.filters import attribute_sorts, customer_fields, has_identity
from app.domain.customer.identity import (
    EMAIL,
    EXTERNAL,
    IdentityKey,
    display_name,
    email_key,
    external_key,
    identity_keys,
    keys_of,
    refresh_derived,
    unique_keys,
)
from app.domain.customer.repository import CustomerRepository, FieldDefinitionRepository
from app.domain.interaction.repository import InteractionRepository
from app.domain.outbox.service import EventRecorder, PendingEvent, changes_between, envelope
from app.domain.pipeline.repository import DealRepository
from app.domain.segment.entities import Tier
from app.domain.segment.repository import MemberRepository
from app.filters.compiler import compile_filter
from app.filters.fields import FieldRegistry

Loc = tuple[str | int, ...]
_PHONE_QUERY_CHARACTERS = frozenset("0123456789+-() 　０１２３４５６７８９＋－（）")
MAX_BATCH = 1000
_NULLABLE_COLUMNS = tuple(column.key for column in Customer.__table__.columns if column.nullable)
_TIME = TypeAdapter(datetime)


class BatchStatus(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class BatchResult:
    index: int
    status: BatchStatus
    customer_id: UUID | None = None
    error: AppError | None = None


@dataclass(frozen=True, slots=True)
class CustomerQuery:
    """The simple filters of `GET /v1/customers`."""

    q: str | None = None
    lifecycle_stage: str | None = None
    tag: str | None = None
    company_id: UUID | None = None
    owner_id: UUID | None = None
    email: str | None = None
    external_id: tuple[str, str] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None


@dataclass
class _Lookups:
    """What writes need to know, loaded once for one customer or a whole batch."""

    definitions: dict[str, FieldDefinition]
    stages: list[str]
    companies: set[UUID]
    owners: set[UUID]
    holders: dict[IdentityKey, UUID] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reference:
    """How an event names its customer: any of a source's id, an email, a phone."""

    source: str
    external_id: str | None = None
    email: str | None = None
    phone: str | None = None
    family_name: str | None = None
    given_name: str | None = None


@dataclass(frozen=True, slots=True)
class Resolution:
    customer_ids: list[UUID]  # one per reference, in order
    created: list[Customer]  # not written yet: see `CustomerService.create_resolved`


@dataclass(frozen=True, slots=True)
class Duplicate:
    customer_ids: tuple[UUID, UUID]
    reason: str
    value: str


def _query_fragment(q: str) -> str:
    """How `q` is matched: by its digits when it looks like a phone number, else its search form."""
    stripped = q.strip()
    if len(digits(stripped)) >= 4 and set(stripped) <= _PHONE_QUERY_CHARACTERS:
        return digits(stripped)
    return search_form(stripped)


def _requested_keys(item: schemas.CustomerWrite) -> list[IdentityKey]:
    """The keys an upsert matches on: external ids first, then emails."""
    external = (item.external_ids or {}).items()
    keys = [external_key(source, value) for source, value in external if value is not None]
    return keys + [email_key(email) for email in item.emails or []]


class CustomerService:
    def __init__(self, session: AsyncSession, context: Context) -> None:
        self.session = session
        self.context = context
        self.customers = CustomerRepository(session, context.workspace_id)
        self.definitions = FieldDefinitionRepository(session, context.workspace_id)
        self.companies = CompanyRepository(session, context.workspace_id)
        self.users = UserRepository(session, context.workspace_id)
        self.events = EventRecorder(session, context)

    # Reading

    async def get(self, customer_id: UUID) -> Customer:
        customer = await self.customers.get(customer_id)
        if customer is None:
            survivor = await self.customers.survivor_of(customer_id)
            if survivor is not None:
                raise NotFound("customer", customer_id, merged_into=str(survivor))
            raise NotFound("customer", customer_id)
        return customer

    async def views(
        self, customers: Sequence[Customer], expand: frozenset[str] = frozenset()
    ) -> list[schemas.Customer]:
        """The customers as the API shows them, embedding the related objects in `expand`
        (`company`, `owner`) with one query per relation for the whole page."""
        companies: dict[UUID, Any] = {}
        owners: dict[UUID, Any] = {}
        if "company" in expand:
            companies = await self.companies.get_many(
                {c.company_id for c in customers if c.company_id is not None}
            )
        if "owner" in expand:
            owners = await self.users.get_many(
                {c.owner_id for c in customers if c.owner_id is not None}
            )
        views = []
        for customer in customers:
            view = schemas.Customer.model_validate(customer)
            embedded: dict[str, Any] = {}
            if "company" in expand:
                company = companies.get(customer.company_id) if customer.company_id else None
                embedded["company"] = CompanyView.model_validate(company) if company else None
            if "owner" in expand:
                owner = owners.get(customer.owner_id) if customer.owner_id else None
                embedded["owner"] = UserView.model_validate(owner) if owner else None
            views.append(view.model_copy(update=embedded) if embedded else view)
        return views

    async def page(self, page: PageRequest, query: CustomerQuery) -> Page[Customer]:
        sorts = await self._attribute_sorts(page)
        return await self.customers.page(await self._filtered(query), page, sorts)

    async def search(self, raw_filter: Any, page: PageRequest) -> Page[Customer]:
        stmt = self.customers.select()
        if raw_filter is not None:
            stmt = stmt.where(await self.compile_filter(raw_filter, ("body", "filter")))
        return await self.customers.page(stmt, page, await self._attribute_sorts(page))

    async def _attribute_sorts(self, page: PageRequest) -> dict[str, SortKey]:
        if not page.sort.removeprefix("-").startswith("attributes."):
            return {}
        definitions = await self.definitions.for_object(schemas.FieldObject.CUSTOMER)
        return attribute_sorts(page.sort, Customer.attributes, definitions, self._dialect())

    async def compile_filter(self, raw_filter: Any, path: Loc) -> ColumnElement[bool]:
        """The filter DSL over customers, as one SQL condition (segments and workflows too)."""
        return compile_filter(raw_filter, await self.filter_fields(), now=utcnow(), path=path)

    async def filter_fields(self) -> FieldRegistry:
        """What the customer DSL may name in this workspace."""
        definitions = await self.definitions.for_object(schemas.FieldObject.CUSTOMER)
        tier_keys = await self.session.execute(
            select(Tier.key).where(Tier.workspace_id == self.context.workspace_id)
        )
        return customer_fields(
            self._dialect(),
            list(definitions.values()),
            await self._lifecycle_stages(),
            list(tier_keys.scalars()),
        )

    async def _matching(self, fragment: str) -> ColumnElement[bool]:
        """Customers whose text, or whose company's name, contains `fragment`.

        The matching companies are looked up first: written as one OR with a subquery, the
        planner cannot tell how few customers match and walks the whole table instead of the
        trigram index.
        """
        pattern = like_pattern(fragment)
        companies = select(Company.id).where(
            Company.workspace_id == self.context.workspace_id,
            Company.search_text.like(pattern, escape="\\"),
        )
        company_ids = list((await self.session.execute(companies)).scalars())
        by_text = Customer.search_text.like(pattern, escape="\\")
        return or_(by_text, Customer.company_id.in_(company_ids)) if company_ids else by_text

    async def _filtered(self, query: CustomerQuery) -> Select[Customer]:
        stmt = self.customers.select()
        if query.q is not None and (fragment := _query_fragment(query.q)):
            stmt = stmt.where(await self._matching(fragment))
        simple: list[tuple[str, Any]] = [
            ("lifecycle_stage", query.lifecycle_stage),
            ("company_id", query.company_id),
            ("owner_id", query.owner_id),
        ]
        for name, value in simple:
            if value is not None:
                stmt = stmt.where(getattr(Customer, name) == value)
        if query.tag is not None:
            stmt = stmt.where(json_array_holds(Customer.tags, query.tag, self._dialect()))
        if query.email is not None:
            stmt = stmt.where(has_identity(EMAIL, query.email.casefold()))
        if query.external_id is not None:
            source, value = query.external_id
            stmt = stmt.where(has_identity(EXTERNAL, value, source=source))
        if query.created_after is not None:
            stmt = stmt.where(Customer.created_at >= query.created_after)
        if query.created_before is not None:
            stmt = stmt.where(Customer.created_at < query.created_before)
        if query.updated_after is not None:
            stmt = stmt.where(Customer.updated_at >= query.updated_after)
        return stmt

    # Writing

    async def create(self, data: schemas.CustomerCreate) -> Customer:
        lookups = await self._lookups([data])
        customer = self._new_customer()
        self._write(customer, data, lookups, loc=("body",), creating=True)
        return await self._finish([(customer, None)])

    async def update(
        self,
        customer_id: UUID,
        data: schemas.CustomerUpdate,
        *,
        expected_versions: frozenset[int] | None,
    ) -> Customer:
        customer = await self.get(customer_id)
        ensure_version(customer.version, expected_versions)
        lookups = await self._lookups([data])
        before = schemas.Customer.snapshot(customer)
        self._write(customer, data, lookups, loc=("body",), creating=False)
        return await self._finish([(customer, before)])

    async def delete(
        self, customer_id: UUID, *, erase: bool, expected_versions: frozenset[int] | None
    ) -> None:
        customer = await self.get(customer_id)
        ensure_version(customer.version, expected_versions)
        data = schemas.Customer.snapshot(customer)
        if erase:
            inbound = InboundEventRepository(
                self.session, self.context.workspace_id, self._dialect()
            )
            await inbound.forget_customer(customer_id)
        await self._commerce_references(customer_id, None)
        await self.customers.delete(customer)  # interactions go with it
        await self.session.flush()
        if erase:
            merged = await self.customers.merged_into(customer_id)
            await self.customers.scrub_events([customer_id, *merged])
            await self.customers.forget_redirects(customer_id)
            data = {"id": str(customer_id), "erased": True}
        self.events.record(
            "customer.deleted", subject_type="customer", subject_id=customer_id, data=data
        )

    async def batch(self, items: Sequence[Mapping[str, Any]]) -> list[BatchResult]:
        """Creates or updates (matched by external id, then email) each item on its own merits.

        Lookups for the whole batch take a fixed number of queries, whatever its size.
        """
        parsed: list[tuple[int, schemas.CustomerCreate]] = []
        results: dict[int, BatchResult] = {}
        for index, raw in enumerate(items):
            try:
                parsed.append((index, validate_input(schemas.CustomerCreate, raw)))
            except ValidationError as error:
                problem = ValidationFailed.from_errors(error.errors(), ("body", "items", index))
                results[index] = BatchResult(index, BatchStatus.ERROR, error=problem)
        lookups = await self._lookups([item for _, item in parsed])
        known = await self.customers.get_many(set(lookups.holders.values()), lock=True)
        written: dict[UUID, tuple[Customer, dict[str, Any] | None]] = {}
        for index, item in parsed:
            loc: Loc = ("body", "items", index)
            try:
                owners = {
                    lookups.holders[key] for key in _requested_keys(item) if key in lookups.holders
                }
                if len(owners) > 1:
                    raise Conflict(
                        "The item's external ids and emails belong to different customers.",
                        existing_ids=sorted(str(owner) for owner in owners),
                    )
                if owners:
                    customer = known[owners.pop()]
                    _ensure_same_external_ids(customer, item)
                    before = (
                        written[customer.id][1]
                        if customer.id in written
                        else schemas.Customer.snapshot(customer)
                    )
                    self._write(
                        customer, self._as_upsert(customer, item), lookups, loc=loc, creating=False
                    )
                    status = BatchStatus.CREATED if before is None else BatchStatus.UPDATED
                else:
                    customer = self._new_customer()
                    self._write(customer, item, lookups, loc=loc, creating=True)
                    known[customer.id] = customer
                    before, status = None, BatchStatus.CREATED
                written[customer.id] = (customer, before)
                results[index] = BatchResult(index, status, customer_id=customer.id)
            except AppError as error:
                results[index] = BatchResult(index, BatchStatus.ERROR, error=error)
        if written:
            await self._finish(list(written.values()), locked=True)
        return [results[index] for index in range(len(items))]

    async def resolve(self, references: Sequence[Reference]) -> Resolution:
        """The customer each reference names, and the unknown ones to create (once per batch),
        which `create_resolved` writes: the caller may first fill in what it knows of them.

        A source's id wins over an email, which wins over a phone. Lookups take a fixed number
        of queries whatever the number of references.
        """
        unique = {external_key(r.source, r.external_id) for r in references if r.external_id}
        unique |= {email_key(r.email) for r in references if r.email}
        holders = await self.customers.owners_of(unique)
        phones = await self.customers.phone_owners({r.phone for r in references if r.phone})
        created: list[Customer] = []
        resolved: list[UUID] = []
        for reference in references:
            candidates = [
                holders.get(external_key(reference.source, reference.external_id))
                if reference.external_id
                else None,
                holders.get(email_key(reference.email)) if reference.email else None,
                phones.get(reference.phone) if reference.phone else None,
            ]
            match = next((found for found in candidates if found is not None), None)
            if match is None:
                customer = self._customer_for(reference)
                created.append(customer)
                holders.update(dict.fromkeys(unique_keys(identity_keys(customer)), customer.id))
                if reference.phone:
                    phones[reference.phone] = customer.id
                match = customer.id
            resolved.append(match)
        return Resolution(resolved, created)

    async def create_resolved(self, created: Sequence[Customer]) -> None:
        """Writes the customers `resolve` found missing, with their identities and events; a
        concurrent request that took one of their keys first makes this raise `Conflict`."""
        if created:
            await self._finish([(customer, None) for customer in created])

    def _customer_for(self, reference: Reference) -> Customer:
        customer = self._new_customer()
        customer.family_name = reference.family_name
        customer.given_name = reference.given_name
        customer.emails = [reference.email] if reference.email else []
        customer.phones = [reference.phone] if reference.phone else []
        customer.external_ids = (
            {reference.source: reference.external_id} if reference.external_id else {}
        )
        customer.tags, customer.consents, customer.attributes = [], {}, {}
        refresh_derived(customer, explicit_display_name=None)
        return customer

    async def merge(
        self, survivor_id: UUID, other_id: UUID, *, expected_versions: frozenset[int] | None
    ) -> Customer:
        if survivor_id == other_id:
            raise ValidationFailed.at(("body", "other_id"), "A customer cannot merge with itself.")
        survivor = await self.get(survivor_id)
        ensure_version(survivor.version, expected_versions)
        other = await self.customers.get(other_id)
        if other is None:
            raise ValidationFailed.at(("body", "other_id"), f"No customer with id {other_id}.")
        before = schemas.Customer.snapshot(survivor)
        previous_keys = identity_keys(survivor)
        was_derived = survivor.display_name == display_name(survivor)
        survivor.emails = list(dict.fromkeys([*survivor.emails, *other.emails]))
        survivor.phones = list(dict.fromkeys([*survivor.phones, *other.phones]))
        survivor.tags = list(dict.fromkeys([*survivor.tags, *other.tags]))
        survivor.external_ids = {**other.external_ids, **survivor.external_ids}
        survivor.attributes = {**other.attributes, **survivor.attributes}
        survivor.consents = _latest_consents(other.consents, survivor.consents)
        for name in (
            "family_name",
            "given_name",
            "family_name_kana",
            "given_name_kana",
            "address",
            "birthday",
            "company_id",
            "owner_id",
            "lifecycle_stage",
        ):
            if getattr(survivor, name) is None:
                setattr(survivor, name, getattr(other, name))
        refresh_derived(
            survivor, explicit_display_name=None if was_derived else survivor.display_name
        )
        await self._move_references(other_id, survivor_id)
        await self.customers.delete(other)
        await self.session.flush()  # frees the other's identities before the survivor takes them
        await self.customers.add_identities(
            (survivor_id, key) for key in identity_keys(survivor) - previous_keys
        )
        await self.session.refresh(survivor)  # its metrics were worked out in SQL
        after = schemas.Customer.snapshot(survivor)
        self.events.record(
            "customer.merged",
            subject_type="customer",
            subject_id=survivor_id,
            data={**after, "merged_id": str(other_id)},
            changes=changes_between(before, after),
        )
        return survivor

    async def _move_references(self, merged_id: UUID, survivor_id: UUID) -> None:
        """Where everything that points at a merged customer moves to the survivor: redirects,
        interactions, orders, shop events, deals and static segments, then the
        survivor's metrics are worked out again from all its orders."""
        await self.customers.redirect(merged_id, survivor_id)
        await InteractionRepository(self.session, self.context.workspace_id).move_customer(
            merged_id, survivor_id
        )
        await self._commerce_references(merged_id, survivor_id)
        await refresh_metrics(self.session, self.context.workspace_id, [survivor_id])

    async def _commerce_references(self, customer_id: UUID, to_id: UUID | None) -> None:
        """Orders, shop events, deals and static segment memberships follow a merge. On
        deletion orders and deals stay, without a customer (purchase totals remain as anonymous
        figures), the person leaves the deals' contacts and every segment."""
        workspace_id = self.context.workspace_id
        await MemberRepository(self.session, workspace_id, self._dialect()).release_customer(
            customer_id, to_id
        )
        await OrderRepository(self.session, workspace_id).move_customer(customer_id, to_id)
        await DealRepository(self.session, workspace_id).move_customer(customer_id, to_id)
        await InboundEventRepository(self.session, workspace_id, self._dialect()).move_customer(
            customer_id, to_id
        )

    # Looking around

    async def duplicates(self, limit: int) -> list[Duplicate]:
        phones = await self.customers.phone_duplicates(limit)
        names = await self.customers.name_and_birthday_duplicates(limit)
        found = [Duplicate((a, b), "phone", value) for a, b, value in phones]
        found += [Duplicate((a, b), "name_and_birthday", value) for a, b, value in names]
        return found[:limit]

    async def export(self, customer_id: UUID) -> dict[str, Any]:
        """Everything held about the person, as JSON values."""
        customer = await self.get(customer_id)
        merged = await self.customers.merged_into(customer_id)
        identities = await self.customers.identities(customer_id)
        events = await self.customers.events_about([customer_id, *merged])
        return {
            "customer": schemas.Customer.snapshot(customer),
            "merged_customer_ids": [str(merged_id) for merged_id in merged],
            "identities": [
                {"kind": identity.kind, "source": identity.source or None, "value": identity.value}
                for identity in identities
            ],
            "events": [envelope(event) for event in events],
            "exported_at": utcnow().isoformat().replace("+00:00", "Z"),
        }

    # Internals

    def _dialect(self) -> str:
        bind = self.session.bind
        return bind.dialect.name if bind is not None else "sqlite"

    async def _lifecycle_stages(self) -> list[str]:
        workspace = await WorkspaceDirectory(self.session).by_id(self.context.workspace_id)
        return list(workspace.lifecycle_stages) if workspace is not None else []

    def _new_customer(self) -> Customer:
        # Every nullable column set, even to None: customers with the same columns go to the
        # database as one multi-row INSERT instead of one statement per shape.
        return Customer(
            id=uuid7(), workspace_id=self.context.workspace_id, **dict.fromkeys(_NULLABLE_COLUMNS)
        )

    async def _lookups(self, items: Iterable[schemas.CustomerWrite]) -> _Lookups:
        items = list(items)
        keys: set[IdentityKey] = set()
        for item in items:
            keys |= set(_requested_keys(item))
        return _Lookups(
            definitions=await self.definitions.for_object(schemas.FieldObject.CUSTOMER),
            stages=await self._lifecycle_stages(),
            companies=await self.companies.existing_ids(
                {item.company_id for item in items if item.company_id is not None}
            ),
            owners=await self.users.existing_ids(
                {item.owner_id for item in items if item.owner_id is not None}
            ),
            holders=await self.customers.owners_of(keys),
        )

    @staticmethod
    def _as_upsert(customer: Customer, item: schemas.CustomerCreate) -> schemas.CustomerCreate:
        """An upsert adds the emails and phones it brings; the other fields it sends replace."""
        extra: dict[str, Any] = {}
        if item.emails is not None:
            extra["emails"] = list(dict.fromkeys([*customer.emails, *item.emails]))
        if item.phones is not None:
            extra["phones"] = list(dict.fromkeys([*customer.phones, *item.phones]))
        return item.model_copy(update=extra) if extra else item

    def _write(
        self,
        customer: Customer,
        data: schemas.CustomerWrite,
        lookups: _Lookups,
        *,
        loc: Loc,
        creating: bool,
    ) -> None:
        """Applies the fields `data` sets to `customer`, checking every reference and key."""
        old_keys = set() if creating else identity_keys(customer)
        was_derived = creating or customer.display_name == display_name(customer)
        explicit_name = None if was_derived else customer.display_name
        for name in data.model_fields_set:
            value = getattr(data, name)
            if name == "display_name":
                explicit_name = value
            elif name == "address":
                customer.address = value.model_dump(exclude_none=True) if value else None
            elif name == "external_ids":
                merged = {} if creating else dict(customer.external_ids)
                merged.update(value or {})
                customer.external_ids = {k: v for k, v in merged.items() if v is not None}
            elif name == "consents":
                customer.consents = _merge_consents(customer.consents or {}, value or {})
            elif name == "attributes":
                customer.attributes = apply_attributes(
                    {} if creating else customer.attributes,
                    value or {},
                    lookups.definitions,
                    loc=(*loc, "attributes"),
                    creating=creating,
                )
            elif name in ("emails", "phones", "tags"):
                setattr(customer, name, value or [])
            else:
                self._check_reference(name, value, lookups, loc)
                setattr(customer, name, value)
        if creating:
            customer.emails = customer.emails or []
            customer.phones = customer.phones or []
            customer.tags = customer.tags or []
            customer.external_ids = customer.external_ids or {}
            customer.consents = customer.consents or {}
            if "attributes" not in data.model_fields_set:
                customer.attributes = apply_attributes(
                    {}, {}, lookups.definitions, loc=(*loc, "attributes"), creating=True
                )
        refresh_derived(customer, explicit_display_name=explicit_name)
        new_keys = unique_keys(identity_keys(customer))
        for key in sorted(new_keys - old_keys):
            holder = lookups.holders.get(key)
            if holder is not None and holder != customer.id:
                raise Conflict(
                    f"Another customer already has the {key.describe()}.", existing_id=str(holder)
                )
        for key in old_keys - new_keys:
            lookups.holders.pop(key, None)
        lookups.holders.update(dict.fromkeys(new_keys, customer.id))

    @staticmethod
    def _check_reference(name: str, value: Any, lookups: _Lookups, loc: Loc) -> None:
        if value is None:
            return
        if name == "company_id" and value not in lookups.companies:
            raise ValidationFailed.at((*loc, name), f"No company with id {value}.")
        if name == "owner_id" and value not in lookups.owners:
            raise ValidationFailed.at((*loc, name), f"No user with id {value}.")
        if name == "lifecycle_stage" and value not in lookups.stages:
            raise ValidationFailed.at(
                (*loc, name),
                f"Expected one of the workspace's stages: {', '.join(lookups.stages)}.",
            )

    async def _finish(
        self, written: Sequence[tuple[Customer, dict[str, Any] | None]], *, locked: bool = False
    ) -> Customer:
        """Saves the customers, their identity rows and their events; returns the first.

        With `locked` (the caller holds row locks on the existing customers), changed customers
        are written in one statement instead of one versioned UPDATE each.
        """
        changed: list[Customer] = []
        # Snapshots taken while checking for changes, kept for the events (with the new version
        # and time patched in): a snapshot is most of the cost of a customer in a batch.
        afters: dict[UUID, dict[str, Any]] = {}
        diffs: dict[UUID, dict[str, Any]] = {}
        for customer, before in written:
            if before is None:
                self.customers.add(customer)
            elif locked:
                self.session.expunge(customer)  # written below, not by the unit of work
                after = schemas.Customer.snapshot(customer)
                diffs[customer.id] = changes_between(before, after)
                if diffs[customer.id]:
                    customer.version += 1
                    customer.updated_at = utcnow()
                    changed.append(customer)
                    after["version"] = customer.version
                    after["updated_at"] = _json_time(customer.updated_at)
                afters[customer.id] = after
        try:
            await self.session.flush()
            await self.customers.store_many(changed)
            added: list[tuple[UUID, IdentityKey]] = []
            for customer, before in written:
                stored = (
                    keys_of(before["emails"], before["phones"], before["external_ids"])
                    if before is not None
                    else set()
                )
                wanted = identity_keys(customer)
                await self.customers.remove_identities(customer.id, stored - wanted)
                added += [(customer.id, key) for key in wanted - stored]
            await self.customers.add_identities(added)
        except IntegrityError as error:
            # A concurrent request took one of these emails or external ids first.
            raise Conflict(
                "An email or external id was taken by another request; retry."
            ) from error
        pending: list[PendingEvent] = []
        for customer, before in written:
            after = afters.get(customer.id) or schemas.Customer.snapshot(customer)
            if before is None:
                pending.append(PendingEvent("customer.created", "customer", customer.id, after))
            elif diff := (
                diffs[customer.id] if customer.id in diffs else changes_between(before, after)
            ):
                pending.append(
                    PendingEvent("customer.updated", "customer", customer.id, after, diff)
                )
        await self.events.record_many(pending)
        return written[0][0]


def _json_time(moment: datetime) -> Any:
    """A time as snapshots write it."""
    return _TIME.dump_python(moment, mode="json")


def _ensure_same_external_ids(customer: Customer, item: schemas.CustomerWrite) -> None:
    """An upsert may add an external id for a new source, never re-point an existing one."""
    for source, value in (item.external_ids or {}).items():
        held = customer.external_ids.get(source)
        if value is not None and held is not None and held != value:
            raise Conflict(
                f"The matched customer has {source} id {held!r}, not {value!r}.",
                existing_id=str(customer.id),
            )


def _merge_consents(
    current: Mapping[str, Any], changes: Mapping[str, schemas.ConsentInput | None]
) -> dict[str, Any]:
    merged = dict(current)
    for channel, consent in changes.items():
        if consent is None:
            merged.pop(channel, None)
        else:
            merged[channel] = {
                "granted": consent.granted,
                "at": (consent.at or utcnow()).astimezone(UTC).isoformat(),
                "source": consent.source,
            }
    return merged


def _latest_consents(*consent_maps: Mapping[str, Any]) -> dict[str, Any]:
    """Per channel, the consent given or withdrawn most recently."""
    latest: dict[str, Any] = {}
    for consents in consent_maps:
        for channel, consent in consents.items():
            if channel not in latest or consent["at"] >= latest[channel]["at"]:
                latest[channel] = consent
    return latest
