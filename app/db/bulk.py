"""Writing many rows of one table in one statement: batch endpoints write thousands at a time.

On PostgreSQL the rows travel as one array per column and are unpacked by `unnest`, so the
server plans and runs one statement instead of one per row (an executemany pays planning,
index and round-trip work per row, several times what the rows themselves cost). SQLite runs
an executemany in its C loop, which is already fast, so it keeps the plain statements.
"""

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import JSON, Column, Table, Text, bindparam, cast, func, insert, select, update
from sqlalchemy import column as sql_column
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import TableValuedAlias

from app.db.dialect import POSTGRESQL


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT of `rows`, which all name the same columns; Python-side column defaults fill the
    columns they leave out, as for an ordinary INSERT, and server defaults the rest."""
    if not rows:
        return
    dialect = _dialect(session)
    if dialect is None or dialect.name != POSTGRESQL:
        await session.execute(insert(table), list(rows))
        return
    names = list(rows[0])
    defaulted = [
        column
        for column in table.columns
        if column.key not in rows[0]
        and column.default is not None
        and (column.default.is_scalar or column.default.is_callable)
    ]
    columns = [table.c[name] for name in names] + defaulted
    values = [[row[name] for row in rows] for name in names]
    for column in defaulted:
        default: Any = column.default
        values.append(
            [default.arg if default.is_scalar else default.arg(None) for _ in range(len(rows))]
        )
    given = _unnested(columns, values, dialect)
    await session.execute(
        insert(table).from_select(
            [column.key for column in columns], select(*(given.c[c.key] for c in columns))
        )
    )


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
    names = [name for name in rows[0] if name not in keys]
    dialect = _dialect(session)
    distinct = len({tuple(row[key] for key in keys) for row in rows}) == len(rows)
    if dialect is None or dialect.name != POSTGRESQL or not distinct:
        stmt = (
            update(table)
            .where(*(table.c[key] == bindparam(f"k_{key}") for key in keys))
            .values({name: bindparam(f"v_{name}") for name in names})
        )
        await session.execute(
            stmt,
            [
                {f"k_{key}": row[key] for key in keys} | {f"v_{name}": row[name] for name in names}
                for row in rows
            ],
        )
        return
    ordered = [*keys, *names]
    columns = [table.c[name] for name in ordered]
    values = [[row[name] for row in rows] for name in ordered]
    given = _unnested(columns, values, dialect)
    await session.execute(
        update(table)
        .where(*(table.c[key] == given.c[key] for key in keys))
        .values({name: given.c[name] for name in names})
    )


def _dialect(session: AsyncSession) -> Dialect | None:
    return session.bind.dialect if session.bind is not None else None


def _unnested(
    columns: Sequence[Column[Any]], values: Sequence[list[Any]], dialect: Dialect
) -> TableValuedAlias:
    """The rows as `unnest(array, array, ...) AS given(column, column, ...)`: one array
    parameter per column, of the column's type, so that each value is bound as the column
    binds it (timestamps checked, JSON serialised) and the statement is the same whatever the
    number of rows. JSON documents go as text, cast by the server: an array parameter would
    take a document that is a list for a dimension of the array."""
    arrays = []
    for index, (column, column_values) in enumerate(zip(columns, values, strict=True)):
        bound: Any = column.type
        if isinstance(column.type.dialect_impl(dialect), JSON):
            serialise = column.type.dialect_impl(dialect).bind_processor(dialect)
            column_values = [serialise(value) if serialise else value for value in column_values]
            bound = Text()
        parameter = bindparam(f"p{index}", column_values, type_=ARRAY(bound))
        arrays.append(cast(parameter, ARRAY(column.type)))
    return (
        func.unnest(*arrays)
        .table_valued(*(sql_column(c.key, c.type) for c in columns), name="given")
        .render_derived(with_types=False)
    )
