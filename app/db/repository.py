"""The base of every repository: queries are scoped to one workspace by construction."""

from collections.abc import Collection, Mapping
from typing import Any, ClassVar, Generic, TypeVar
from uuid import UUID

from sqlalchemy import BindParameter, Select, Uuid, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.core.errors import NotFound
from app.db.base import WorkspaceScoped
from app.db.pagination import Page, PageRequest, SortKey, apply_page, column_key, make_page

EntityT = TypeVar("EntityT", bound=WorkspaceScoped)

# The workspace of statements built once at import and run with new parameters: on hot paths
# building a statement and computing its cache key cost more than running it. Not named after
# the column, a name UPDATE and INSERT keep for their own parameters.
WORKSPACE: BindParameter[UUID] = bindparam("workspace", type_=Uuid)


def many(name: str) -> BindParameter[Any]:
    """A parameter for `column.in_(...)` in a statement built once, bound to a list."""
    return bindparam(name, expanding=True)


class WorkspaceRepository(Generic[EntityT]):
    """Reads and writes one entity type within one workspace.

    Subclasses set `entity` and the columns a list may be sorted by (each NOT NULL, so that
    keyset pagination is exact).
    """

    entity: ClassVar[type[Any]]
    noun: ClassVar[str]  # what a client calls the entity, for "No user with id ..."
    sortable: ClassVar[Mapping[str, InstrumentedAttribute[Any]]] = {}

    def __init__(self, session: AsyncSession, workspace_id: UUID) -> None:
        self.session = session
        self.workspace_id = workspace_id

    def select(self) -> Select[EntityT]:
        return select(self.entity).where(self.entity.workspace_id == self.workspace_id)

    async def get(self, entity_id: UUID) -> EntityT | None:
        # By primary key, which leads with the workspace: scoped, and its statement is cached.
        entity: EntityT | None = await self.session.get(self.entity, (self.workspace_id, entity_id))
        return entity

    async def require(self, entity_id: UUID) -> EntityT:
        """The entity, or 404: ids of other workspaces are simply not found here."""
        entity = await self.get(entity_id)
        if entity is None:
            raise NotFound(self.noun, entity_id)
        return entity

    async def get_many(self, ids: Collection[UUID], *, lock: bool = False) -> dict[UUID, EntityT]:
        """The entities with these ids in this workspace, by id, in one query; with `lock`,
        locked until the transaction ends (in id order, so two lockers never deadlock)."""
        if not ids:
            return {}
        stmt = self.select().where(self.entity.id.in_(ids))
        if lock:
            stmt = stmt.order_by(self.entity.id).with_for_update()
        result = await self.session.execute(stmt)
        return {entity.id: entity for entity in result.scalars()}

    async def existing_ids(self, ids: Collection[UUID]) -> set[UUID]:
        """Which of `ids` exist in this workspace, in one query."""
        if not ids:
            return set()
        stmt = select(self.entity.id).where(
            self.entity.workspace_id == self.workspace_id, self.entity.id.in_(ids)
        )
        return set((await self.session.execute(stmt)).scalars())

    def add(self, entity: EntityT) -> EntityT:
        entity.workspace_id = self.workspace_id
        self.session.add(entity)
        return entity

    async def delete(self, entity: EntityT) -> None:
        await self.session.delete(entity)

    async def page(
        self,
        stmt: Select[EntityT],
        request: PageRequest,
        extra_sorts: Mapping[str, SortKey] | None = None,
    ) -> Page[EntityT]:
        columns = {"created_at": self.entity.created_at, **self.sortable}
        sortable = {name: column_key(column) for name, column in columns.items()}
        sortable.update(extra_sorts or {})
        ordered = apply_page(stmt, request, sortable=sortable, tiebreak=self.entity.id)
        rows = (await self.session.execute(ordered)).scalars().all()
        return make_page(rows, request, sortable=sortable, tiebreak=self.entity.id)
