"""Queries for customers, their identities, redirects and custom field definitions."""

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, ClassVar, cast
from uuid import UUID

from sqlalchemy import (
    Table,
    bindparam,
    delete,
    literal_column,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute

from app.core.clock import utcnow
from app.db.bulk import insert_rows, update_rows
from app.db.repository import WORKSPACE, WorkspaceRepository, many
from app.domain.customer.entities import (
    Customer,
    CustomerIdentity,
    CustomerRedirect,
    FieldDefinition,
)
from app.domain.customer.identity import PHONE, IdentityKey
from app.domain.outbox.entities import DomainEvent
from app.domain.webhook.entities import WebhookDelivery
from app.domain.workflow.entities import WorkflowRun

_NOT_RECORD = frozenset(
    {
        "workspace_id",
        "id",
        "created_at",
        "order_count",
        "total_spent",
        "spent_currency",
        "first_order_at",
        "last_order_at",
        "average_order_value",
        "average_days_between_orders",
        "favourite_category",
        "favourite_channel",
    }
)
# The conditions of the partial indexes on customer_identity, written as literals so that the
# planners can tell that a query's rows are all in the index.
_NOT_PHONE = CustomerIdentity.kind != literal_column(f"'{PHONE}'")
_IS_PHONE = CustomerIdentity.kind == literal_column(f"'{PHONE}'")
_RECORD_COLUMNS = tuple(
    column.key for column in Customer.__table__.columns if column.key not in _NOT_RECORD
)


@lru_cache(maxsize=16)
def _owners_of_groups(count: int) -> Any:
    """The owners of identities in `count` groups of one kind and source each (parameters
    kind_N, source_N and values_N): built once per count, as events name few kinds."""
    selects = [
        select(
            CustomerIdentity.kind,
            CustomerIdentity.source,
            CustomerIdentity.value,
            CustomerIdentity.customer_id,
        ).where(
            CustomerIdentity.workspace_id == WORKSPACE,
            _NOT_PHONE,
            CustomerIdentity.kind == bindparam(f"kind_{number}"),
            CustomerIdentity.source == bindparam(f"source_{number}"),
            CustomerIdentity.value.in_(many(f"values_{number}")),
        )
        for number in range(count)
    ]
    return selects[0] if count == 1 else union_all(*selects)


class CustomerRepository(WorkspaceRepository[Customer]):
    entity = Customer
    noun = "customer"
    sortable: ClassVar[Mapping[str, InstrumentedAttribute[Any]]] = {
        "updated_at": Customer.updated_at,
        "display_name": Customer.display_name,
    }

    async def store_many(self, customers: Sequence[Customer]) -> None:
        """Writes the record columns of already locked customers in one statement (their
        metrics belong to the commerce domain and are left as they are)."""
        await update_rows(
            self.session,
            cast(Table, Customer.__table__),
            ("workspace_id", "id"),
            [
                {"workspace_id": self.workspace_id, "id": customer.id}
                | {name: getattr(customer, name) for name in _RECORD_COLUMNS}
                for customer in customers
            ],
        )

    async def owners_of(self, keys: Collection[IdentityKey]) -> dict[IdentityKey, UUID]:
        """Which customer holds each of the (unique) identity keys, in one query."""
        groups: dict[tuple[str, str], list[str]] = defaultdict(list)
        for key in keys:
            if key.kind != PHONE:
                groups[(key.kind, key.source)].append(key.value)
        if not groups:
            return {}
        # One SELECT per kind and source, each with `value IN (...)`: a row-value IN over
        # thousands of keys makes PostgreSQL's planner slow down quadratically, and SQLite
        # matches an OR of them only by workspace. The literal `kind <> 'phone'` lets the
        # planners use the partial unique index (a bound parameter proves nothing about the
        # index's condition); SQLite, without statistics, still prefers a walk of the
        # workspace's identities for a long IN list, but looks up a few keys (one event) in
        # the index.
        parameters: dict[str, Any] = {"workspace": self.workspace_id}
        for number, ((kind, source), values) in enumerate(groups.items()):
            parameters |= {f"kind_{number}": kind, f"source_{number}": source}
            parameters[f"values_{number}"] = values
        rows = (await self.session.execute(_owners_of_groups(len(groups)), parameters)).all()
        return {IdentityKey(kind, source, value): owner for kind, source, value, owner in rows}

    async def phone_owners(self, phones: Collection[str]) -> dict[str, UUID]:
        """For each phone, the customer who has had it longest (phones may be shared)."""
        if not phones:
            return {}
        stmt = (
            select(CustomerIdentity.value, CustomerIdentity.customer_id)
            .where(
                CustomerIdentity.workspace_id == self.workspace_id,
                _IS_PHONE,
                CustomerIdentity.value.in_(phones),
            )
            .order_by(CustomerIdentity.value, CustomerIdentity.customer_id)
        )
        owners: dict[str, UUID] = {}
        for phone, customer_id in (await self.session.execute(stmt)).all():
            owners.setdefault(phone, customer_id)
        return owners

    async def add_identities(self, owned: Iterable[tuple[UUID, IdentityKey]]) -> None:
        """Inserts (customer id, key) pairs in one statement."""
        rows = [
            {
                "workspace_id": self.workspace_id,
                "customer_id": customer_id,
                "kind": key.kind,
                "source": key.source,
                "value": key.value,
            }
            for customer_id, key in owned
        ]
        await insert_rows(self.session, cast(Table, CustomerIdentity.__table__), rows)

    async def remove_identities(self, customer_id: UUID, keys: Collection[IdentityKey]) -> None:
        if not keys:
            return
        await self.session.execute(
            delete(CustomerIdentity).where(
                CustomerIdentity.workspace_id == self.workspace_id,
                CustomerIdentity.customer_id == customer_id,
                tuple_(CustomerIdentity.kind, CustomerIdentity.source, CustomerIdentity.value).in_(
                    [(key.kind, key.source, key.value) for key in keys]
                ),
            )
        )

    async def survivor_of(self, merged_id: UUID) -> UUID | None:
        stmt = select(CustomerRedirect.survivor_id).where(
            CustomerRedirect.workspace_id == self.workspace_id,
            CustomerRedirect.merged_id == merged_id,
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def merged_into(self, survivor_id: UUID) -> list[UUID]:
        stmt = select(CustomerRedirect.merged_id).where(
            CustomerRedirect.workspace_id == self.workspace_id,
            CustomerRedirect.survivor_id == survivor_id,
        )
        return list((await self.session.execute(stmt)).scalars())

    async def redirect(self, merged_id: UUID, survivor_id: UUID) -> None:
        """Points `merged_id`, and every id already merged into it, at `survivor_id`."""
        await self.session.execute(
            update(CustomerRedirect)
            .where(
                CustomerRedirect.workspace_id == self.workspace_id,
                CustomerRedirect.survivor_id == merged_id,
            )
            .values(survivor_id=survivor_id)
        )
        self.session.add(
            CustomerRedirect(
                workspace_id=self.workspace_id, merged_id=merged_id, survivor_id=survivor_id
            )
        )

    async def forget_redirects(self, survivor_id: UUID) -> None:
        await self.session.execute(
            delete(CustomerRedirect).where(
                CustomerRedirect.workspace_id == self.workspace_id,
                CustomerRedirect.survivor_id == survivor_id,
            )
        )

    async def identities(self, customer_id: UUID) -> list[CustomerIdentity]:
        stmt = select(CustomerIdentity).where(
            CustomerIdentity.workspace_id == self.workspace_id,
            CustomerIdentity.customer_id == customer_id,
        )
        return list((await self.session.execute(stmt)).scalars())

    async def events_about(self, subject_ids: Collection[UUID]) -> list[DomainEvent]:
        stmt = (
            select(DomainEvent)
            .where(
                DomainEvent.workspace_id == self.workspace_id,
                DomainEvent.subject_type == "customer",
                DomainEvent.subject_id.in_(subject_ids),
            )
            .order_by(DomainEvent.position)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def scrub_events(self, subject_ids: Collection[UUID]) -> None:
        """Replaces what events, audit entries and webhook deliveries (sent or not) hold about
        these customers by their id alone."""
        for subject_id in subject_ids:
            about = select(DomainEvent.id).where(
                DomainEvent.workspace_id == self.workspace_id,
                DomainEvent.subject_type == "customer",
                DomainEvent.subject_id == subject_id,
            )
            deliveries = await self.session.execute(
                select(WebhookDelivery).where(
                    WebhookDelivery.workspace_id == self.workspace_id,
                    WebhookDelivery.event_id.in_(about),
                )
            )
            erased = {"id": str(subject_id), "erased": True}
            for delivery in deliveries.scalars():
                delivery.payload = {**delivery.payload, "data": erased, "changes": None}
            await self._scrub_workflow_runs(subject_id, erased)
            await self.session.execute(
                update(DomainEvent)
                .where(
                    DomainEvent.workspace_id == self.workspace_id,
                    DomainEvent.subject_type == "customer",
                    DomainEvent.subject_id == subject_id,
                )
                .values(data={"id": str(subject_id), "erased": True}, changes=None)
            )

    async def _scrub_workflow_runs(self, subject_id: UUID, erased: dict[str, Any]) -> None:
        """Runs about the person keep no copy of them: the triggering event is scrubbed, what
        their webhooks sent too, and runs not yet finished end."""
        runs = await self.session.execute(
            select(WorkflowRun).where(
                WorkflowRun.workspace_id == self.workspace_id,
                WorkflowRun.subject_type == "customer",
                WorkflowRun.subject_id == subject_id,
            )
        )
        sent: set[UUID] = set()
        for run in runs.scalars():
            if run.event is not None:
                run.event = {**run.event, "data": erased, "changes": None}
            sent |= {
                UUID(step["result"]["delivery_id"])
                for step in run.steps
                if (step.get("result") or {}).get("delivery_id")
            }
            if run.status in ("pending", "running", "waiting"):
                run.status = "failed"
                run.error = "The customer was erased."
                run.next_attempt_at = None
                run.finished_at = utcnow()
        if sent:
            deliveries = await self.session.execute(
                select(WebhookDelivery).where(
                    WebhookDelivery.workspace_id == self.workspace_id,
                    WebhookDelivery.id.in_(sent),
                )
            )
            for delivery in deliveries.scalars():
                delivery.payload = {"erased": True}

    async def phone_duplicates(self, limit: int) -> list[tuple[UUID, UUID, str]]:
        first, second = CustomerIdentity.__table__.alias(), CustomerIdentity.__table__.alias()
        stmt = (
            select(first.c.customer_id, second.c.customer_id, first.c.value)
            .join(
                second,
                (second.c.workspace_id == first.c.workspace_id)
                & (second.c.kind == first.c.kind)
                & (second.c.value == first.c.value)
                & (second.c.customer_id > first.c.customer_id),
            )
            .where(first.c.workspace_id == self.workspace_id, first.c.kind == PHONE)
            .order_by(first.c.value, first.c.customer_id, second.c.customer_id)
            .limit(limit)
        )
        return [(a, b, value) for a, b, value in (await self.session.execute(stmt)).all()]

    async def name_and_birthday_duplicates(self, limit: int) -> list[tuple[UUID, UUID, str]]:
        first, second = Customer.__table__.alias(), Customer.__table__.alias()
        stmt = (
            select(first.c.id, second.c.id, first.c.name_key, first.c.birthday)
            .join(
                second,
                (second.c.workspace_id == first.c.workspace_id)
                & (second.c.name_key == first.c.name_key)
                & (second.c.birthday == first.c.birthday)
                & (second.c.id > first.c.id),
            )
            .where(first.c.workspace_id == self.workspace_id, first.c.name_key.is_not(None))
            .order_by(first.c.name_key, first.c.id, second.c.id)
            .limit(limit)
        )
        rows = (await self.session.execute(stmt)).all()
        return [(a, b, f"{name} {birthday}") for a, b, name, birthday in rows]


class FieldDefinitionRepository(WorkspaceRepository[FieldDefinition]):
    entity = FieldDefinition
    noun = "field"
    sortable: ClassVar[Mapping[str, InstrumentedAttribute[Any]]] = {"key": FieldDefinition.key}

    async def for_object(self, object_name: str) -> dict[str, FieldDefinition]:
        stmt = self.select().where(FieldDefinition.object == object_name)
        return {d.key: d for d in (await self.session.execute(stmt)).scalars()}

    async def by_key(self, object_name: str, key: str) -> FieldDefinition | None:
        stmt = self.select().where(
            FieldDefinition.object == object_name, FieldDefinition.key == key
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()
