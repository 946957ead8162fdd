"""What a filter may name: each field's kind, its SQL expression, and the operators it takes."""

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.elements import ColumnElement

Expression = ColumnElement[Any] | QueryableAttribute[Any]


class Kind(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    ENUM = "enum"
    UUID = "uuid"
    LIST = "list"
    BEHAVIOUR = "behaviour"


_COMMON = frozenset({"is_set", "is_not_set"})
_EQUALITY = frozenset({"eq", "ne", "in", "not_in"}) | _COMMON
_ORDERED = _EQUALITY | frozenset({"lt", "lte", "gt", "gte", "between"})
_TIMED = _ORDERED | frozenset({"within_last", "not_within_last"})

OPERATORS: Mapping[Kind, frozenset[str]] = {
    Kind.TEXT: _EQUALITY | frozenset({"contains", "starts_with"}),
    Kind.NUMBER: _ORDERED,
    Kind.BOOLEAN: frozenset({"eq", "ne"}) | _COMMON,
    Kind.DATE: _TIMED,
    Kind.DATETIME: _TIMED,
    Kind.ENUM: _EQUALITY,
    Kind.UUID: _EQUALITY,
    Kind.LIST: frozenset({"contains", "in", "all_of"}) | _COMMON,
    Kind.BEHAVIOUR: frozenset({"has", "has_none", "count_gte", "count_lte", "count_eq"}),
}
# Behaviours with an amount (orders) also compare the sum of it over the rows meeting `where`.
AMOUNT_OPERATORS = frozenset({"spent_gte", "spent_lte"})


@dataclass(frozen=True, slots=True)
class Summary:
    """Columns of the filtered row kept from all of its related rows in the transaction that
    changes them (a customer's order count and last order): a condition they answer needs no
    subquery."""

    count: Any
    newest: Any


@dataclass(frozen=True, slots=True)
class Behaviour:
    """Rows that belong to the filtered row, such as a customer's orders.

    Conditions on them (`where`) are checked against `fields`; `rows` is the table, and
    `belongs` the condition tying a row to the filtered row, so the subquery correlates.
    `amount`, when set, is what `spent_gte` / `spent_lte` add up over the rows (an order's
    net total); `occurred_at` is when a row happened (for the newest matching row).

    For filtering a whole workspace at once, `owner` is the rows' column naming the filtered
    row, `key` the filtered row's own id, and `of_workspace(id)` the rows that count, of one
    workspace, without correlating: counts and sums then group the rows once instead of
    counting them again for every filtered row. `summary`, when set, answers the conditions
    it can: how many rows (no `where`), and whether one happened within a period.
    """

    fields: "FieldRegistry"
    rows: Any
    belongs: Callable[[], ColumnElement[bool]]
    occurred_at: Any
    owner: Any
    key: Any
    of_workspace: Callable[[UUID], ColumnElement[bool]]
    amount: Any = None
    summary: Summary | None = None


@dataclass(frozen=True, slots=True)
class Field:
    """A filterable field.

    Scalar kinds compare `expression`. A LIST field instead gives `has(value)`, true when the
    list holds `value`, and `non_empty`, true when it holds anything. A BEHAVIOUR field counts
    rows of its `behaviour`. `within`, when set, wraps the compiled condition: a field of an
    order's lines is true when some line meets it.
    """

    kind: Kind
    expression: Expression | None = None
    options: frozenset[str] | None = None
    element_kind: Kind = Kind.TEXT
    has: Callable[[Any], ColumnElement[bool]] | None = None
    non_empty: Callable[[], ColumnElement[bool]] | None = None
    to_sql: Callable[[Any], Any] = field(default=lambda value: value)
    behaviour: Behaviour | None = None
    within: Callable[[ColumnElement[bool]], ColumnElement[bool]] | None = None

    @property
    def operators(self) -> frozenset[str]:
        if self.behaviour is not None and self.behaviour.amount is not None:
            return OPERATORS[self.kind] | AMOUNT_OPERATORS
        return OPERATORS[self.kind]


class FieldRegistry:
    """Fields by name; names under a prefix such as `attributes.` may be resolved on demand.

    `fingerprint` stands for what a registry built from stored definitions was built from:
    two registries with the same fingerprint compile a filter alike.
    """

    def __init__(
        self,
        fields: Mapping[str, Field],
        prefixed: Mapping[str, Callable[[str], Field | None]] | None = None,
        fingerprint: Hashable = None,
    ) -> None:
        self.fields = fields
        self.prefixed = prefixed or {}
        self.fingerprint = fingerprint

    def resolve(self, name: str) -> Field | None:
        known = self.fields.get(name)
        if known is not None:
            return known
        prefix, dot, rest = name.partition(".")
        resolver = self.prefixed.get(prefix)
        return resolver(rest) if dot and rest and resolver is not None else None

    def names(self) -> list[str]:
        return sorted([*self.fields, *(f"{prefix}.*" for prefix in self.prefixed)])
