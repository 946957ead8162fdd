"""Writing many rows of one table in one statement: batch endpoints write thousands at a time.

On PostgreSQL the rows travel as one array per column and are unpacked by `unnest`, so the
server plans and runs one statement instead of one per row (an executemany pays planning,
index and round-trip work per row, several times what the rows themselves cost). SQLite runs
an executemany in its C loop, which is already fast, so it keeps the plain statements.

Each statement is built once per table, columns and dialect and then reused with new
parameters: building one and computing its cache key costs more than a small write itself.
"""

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, Column, Table, Text, bindparam, cast, func, insert, select, update
from sqlalchemy import column as sql_column
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable
from sqlalchemy.sql.selectable import TableValuedAlias

from app.db.dialect import POSTGRESQL

Serialiser = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Unnest:
    """A statement over `unnest` of one array parameter per column (p0, p1, ...), and how each
    column's values are bound."""

    statement: Executable
    columns: tuple[Column[Any], ...]
    serialisers: tuple[Serialiser, ...]

    def parameters(self, values: Sequence[list[Any]]) -> dict[str, list[Any]]:
        return {
            f"p{index}": [serialise(value) for value in column_values]
            if serialise
            else column_values
            for index, (serialise, column_values) in enumerate(
                zip(self.serialisers, values, strict=True)
            )
        }


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT of `rows`, which all name the same columns; Python-side column defaults fill the
    columns they leave out, as for an ordinary INSERT, and server defaults the rest."""
    if not rows:
        return
    dialect = _dialect(session)
    if dialect is None or dialect.name != POSTGRESQL:
        await session.execute(_plain_insert(table), list(rows))
        return
    names = tuple(rows[0])
    plan = _unnest_insert(table, names, dialect)
    values = [[row[name] for row in rows] for name in names]
    for column in plan.columns[len(names) :]:
        default: Any = column.default
        values.append(
            [default.arg if default.is_scalar else default.arg(None) for _ in range(len(rows))]
        )
    await session.execute(plan.statement, plan.parameters(values))


async def update_rows(
    session: AsyncSession,
    table: Table,
    keys: Collection[str],
    rows: Sequence[dict[str, Any]],
) -> None:
    """UPDATE of the row each of `rows` names by its `keys` columns, setting its other columns
    (all rows name the same columns, and no two the same key)."""
    if not rows:
        return
    key_names = tuple(keys)
    names = tuple(name for name in rows[0] if name not in keys)
    dialect = _dialect(session)
    distinct = len({tuple(row[key] for key in key_names) for row in rows}) == len(rows)
    if dialect is None or dialect.name != POSTGRESQL or not distinct:
        await session.execute(
            _plain_update(table, key_names, names),
            [
                {f"k_{key}": row[key] for key in key_names}
                | {f"v_{name}": row[name] for name in names}
                for row in rows
            ],
        )
        return
    plan = _unnest_update(table, key_names, names, dialect)
    ordered = (*key_names, *names)
    await session.execute(
        plan.statement, plan.parameters([[row[name] for row in rows] for name in ordered])
    )


def _dialect(session: AsyncSession) -> Dialect | None:
    return session.bind.dialect if session.bind is not None else None


@lru_cache(maxsize=64)
def _plain_insert(table: Table) -> Executable:
    return insert(table)


@lru_cache(maxsize=128)
def _plain_update(table: Table, keys: tuple[str, ...], names: tuple[str, ...]) -> Executable:
    return (
        update(table)
        .where(*(table.c[key] == bindparam(f"k_{key}") for key in keys))
        .values({name: bindparam(f"v_{name}") for name in names})
    )


@lru_cache(maxsize=128)
def _unnest_insert(table: Table, names: tuple[str, ...], dialect: Dialect) -> _Unnest:
    """INSERT ... SELECT from the unnested arrays of `names`, then of the columns with a
    Python-side default that `names` leave out."""
    defaulted = [
        column
        for column in table.columns
        if column.key not in names
        and column.default is not None
        and (column.default.is_scalar or column.default.is_callable)
    ]
    columns = (*(table.c[name] for name in names), *defaulted)
    given, serialisers = _unnested(columns, dialect)
    statement = insert(table).from_select(
        [column.key for column in columns], select(*(given.c[c.key] for c in columns))
    )
    return _Unnest(statement, columns, serialisers)


@lru_cache(maxsize=128)
def _unnest_update(
    table: Table, keys: tuple[str, ...], names: tuple[str, ...], dialect: Dialect
) -> _Unnest:
    columns = tuple(table.c[name] for name in (*keys, *names))
    given, serialisers = _unnested(columns, dialect)
    statement = (
        update(table)
        .where(*(table.c[key] == given.c[key] for key in keys))
        .values({name: given.c[name] for name in names})
    )
    return _Unnest(statement, columns, serialisers)


def _unnested(
    columns: Sequence[Column[Any]], dialect: Dialect
) -> tuple[TableValuedAlias, tuple[Serialiser, ...]]:
    """The rows as `unnest(array, array, ...) AS given(column, column, ...)`: one array
    parameter per column, of the column's type, so that each value is bound as the column
    binds it (timestamps checked) and the statement is the same whatever the number of rows.
    JSON documents go as text, serialised here and cast by the server: an array parameter
    would take a document that is a list for a dimension of the array."""
    arrays = []
    serialisers: list[Serialiser] = []
    for index, column in enumerate(columns):
        bound: Any = column.type
        serialise: Serialiser = None
        if isinstance(column.type.dialect_impl(dialect), JSON):
            serialise = column.type.dialect_impl(dialect).bind_processor(dialect)
            bound = Text()
        serialisers.append(serialise)
        parameter = bindparam(f"p{index}", type_=ARRAY(bound))
        arrays.append(cast(parameter, ARRAY(column.type)))
    given = (
        func.unnest(*arrays)
        .table_valued(*(sql_column(c.key, c.type) for c in columns), name="given")
        .render_derived(with_types=False)
    )
    return given, tuple(serialisers)
