"""Rules for custom field definitions."""

from typing import Any
from uuid import UUID

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.context import Context
from app.core.errors import Conflict, ValidationFailed
from app.core.etags import ensure_version
from app.db.dialect import json_without_key
from app.db.pagination import Page, PageRequest
from app.domain.company.entities import Company
from app.domain.customer import schemas
from app.domain.customer.entities import Customer, FieldDefinition
from app.domain.customer.repository import FieldDefinitionRepository
from app.domain.outbox.service import EventRecorder, changes_between
from app.domain.pipeline.entities import Deal

_CHOICE_TYPES = frozenset({schemas.FieldType.ENUM, schemas.FieldType.MULTI_ENUM})
_HOLDERS: dict[str, Any] = {
    schemas.FieldObject.CUSTOMER: Customer,
    schemas.FieldObject.COMPANY: Company,
    schemas.FieldObject.DEAL: Deal,
}


class FieldDefinitionService:
    def __init__(self, session: AsyncSession, context: Context) -> None:
        self.session = session
        self.context = context
        self.definitions = FieldDefinitionRepository(session, context.workspace_id)
        self.events = EventRecorder(session, context)

    async def create(self, data: schemas.FieldDefinitionCreate) -> FieldDefinition:
        _check_options(data.type, data.options)
        if await self.definitions.by_key(data.object, data.key) is not None:
            raise Conflict(f"The {data.object} field '{data.key}' exists already.")
        definition = self.definitions.add(FieldDefinition(**data.model_dump()))
        await self.session.flush()
        self._record("field.created", definition)
        return definition

    async def get(self, definition_id: UUID) -> FieldDefinition:
        return await self.definitions.require(definition_id)

    async def page(self, page: PageRequest, *, object_name: str | None) -> Page[FieldDefinition]:
        stmt = self.definitions.select()
        if object_name is not None:
            stmt = stmt.where(FieldDefinition.object == object_name)
        return await self.definitions.page(stmt, page)

    async def update(
        self,
        definition_id: UUID,
        data: schemas.FieldDefinitionUpdate,
        *,
        expected_versions: frozenset[int] | None,
    ) -> FieldDefinition:
        definition = await self.get(definition_id)
        ensure_version(definition.version, expected_versions)
        changes = data.model_dump(exclude_unset=True)
        if "options" in changes:
            _check_options(schemas.FieldType(definition.type), changes["options"])
        before = schemas.FieldDefinition.snapshot(definition)
        for name, value in changes.items():
            setattr(definition, name, value)
        await self.session.flush()
        after = schemas.FieldDefinition.snapshot(definition)
        if diff := changes_between(before, after):
            self._record("field.updated", definition, changes=diff)
        return definition

    async def delete(
        self, definition_id: UUID, *, expected_versions: frozenset[int] | None
    ) -> None:
        """Removes the definition and, in one statement, every value stored under it."""
        definition = await self.get(definition_id)
        ensure_version(definition.version, expected_versions)
        holder = _HOLDERS.get(definition.object)
        if holder is not None:
            dialect = self.session.bind.dialect.name if self.session.bind else "sqlite"
            await self.session.execute(
                update(holder)
                .where(holder.workspace_id == self.context.workspace_id)
                .values(attributes=json_without_key(holder.attributes, definition.key, dialect))
                .execution_options(synchronize_session=False)
            )
        self._record("field.deleted", definition)
        await self.definitions.delete(definition)
        await self.session.flush()

    def _record(
        self, event_type: str, definition: FieldDefinition, changes: dict[str, Any] | None = None
    ) -> None:
        self.events.record(
            event_type,
            subject_type="field",
            subject_id=definition.id,
            data=schemas.FieldDefinition.snapshot(definition),
            changes=changes,
        )


def _check_options(field_type: schemas.FieldType, options: list[str] | None) -> None:
    if field_type in _CHOICE_TYPES and not options:
        raise ValidationFailed.at(("body", "options"), f"A {field_type} field needs options.")
    if field_type not in _CHOICE_TYPES and options is not None:
        raise ValidationFailed.at(("body", "options"), f"A {field_type} field takes no options.")
