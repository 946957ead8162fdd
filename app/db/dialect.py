"""Expressions whose SQL differs between SQLite and PostgreSQL, behind one meaning each."""

from typing import Any

from sqlalchemy import Date, Integer, cast, exists, func, literal, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.elements import ColumnElement

POSTGRESQL = "postgresql"


def json_array_holds(array: Any, value: Any, dialect: str) -> ColumnElement[bool]:
    """True when the JSON array `array` has `value` as an element."""
    if dialect == POSTGRESQL:
        return type_coerce(array, JSONB).contains([value])  # jsonb @>, served by a GIN index
    elements = func.json_each(array).table_valued("value")
    return exists(select(literal(1)).select_from(elements).where(elements.c.value == value))


def json_array_non_empty(array: Any, dialect: str) -> ColumnElement[bool]:
    if dialect == POSTGRESQL:
        return func.coalesce(func.jsonb_array_length(type_coerce(array, JSONB)), 0) > 0
    return func.coalesce(func.json_array_length(array), 0) > 0


def json_without_key(document: Any, key: str, dialect: str) -> ColumnElement[Any]:
    """The JSON object `document` with `key` removed."""
    if dialect == POSTGRESQL:
        return type_coerce(document, JSONB).op("-")(key)
    return func.json_remove(document, f'$."{key}"')


def insert_new(table: Any, dialect: str) -> Any:
    """INSERT that skips rows whose primary key exists (ON CONFLICT DO NOTHING).

    With RETURNING, the statement tells which rows it inserted. On PostgreSQL a row that a
    concurrent transaction is inserting makes it wait for that transaction to finish first.
    """
    if dialect == POSTGRESQL:
        return postgresql_insert(table).on_conflict_do_nothing()
    return sqlite_insert(table).on_conflict_do_nothing()


def month_of(moment: Any, dialect: str) -> ColumnElement[str]:
    """'YYYY-MM' of a date or UTC timestamp column."""
    if dialect == POSTGRESQL:
        return func.to_char(moment, "YYYY-MM")
    return func.strftime("%Y-%m", moment)


def day_of(moment: Any, dialect: str) -> ColumnElement[Any]:
    """The UTC calendar day of a UTC timestamp column, as a date."""
    if dialect == POSTGRESQL:
        return cast(func.timezone("UTC", moment), Date)
    return func.date(moment)


def period_number(moment: Any, dialect: str, months: int = 1) -> ColumnElement[int]:
    """A UTC timestamp's (or a date's) calendar period as a running integer: year × 12 +
    month − 1 for months (`months=1`), divided by 3 for quarters; consecutive periods differ by
    one."""
    if dialect == POSTGRESQL:
        year = cast(func.extract("year", moment), Integer)
        month = cast(func.extract("month", moment), Integer)
    else:
        year = cast(func.strftime("%Y", moment), Integer)
        month = cast(func.strftime("%m", moment), Integer)
    number: ColumnElement[int] = year * (12 // months) + (month - 1) // months
    return number


def days_between(earlier: Any, later: Any, dialect: str) -> ColumnElement[Any]:
    """Days (with fractions) from `earlier` to `later`, both UTC timestamps."""
    days: ColumnElement[Any]
    if dialect == POSTGRESQL:
        days = func.extract("epoch", later - earlier) / 86_400.0
    else:
        days = func.julianday(later) - func.julianday(earlier)
    return days
