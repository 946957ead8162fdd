"""Compiling parsed filters into one SQLAlchemy boolean expression (never string-built SQL).

Every condition is definite: it is true or false, never NULL, so `not` means what it says and
an unset field fails `eq` but passes `ne`.
"""

import operator
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import and_, bindparam, exists, false, func, literal, not_, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from app.core.errors import ValidationFailed
from app.filters.fields import Behaviour, Field, FieldRegistry, Kind
from app.filters.model import AllOf, AnyOf, Condition, FilterProblems, Node, Not, parse_filter

MAX_LIST_VALUES = 1000
# A moment, or a clock read each time the compiled statement runs.
Now = datetime | Callable[[], datetime]
_COMPARISONS = {
    "eq": operator.eq,
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
}
_COUNT_COMPARISONS = {
    "count_gte": operator.ge,
    "count_lte": operator.le,
    "count_eq": operator.eq,
}
_SPENT_COMPARISONS = {"spent_gte": operator.ge, "spent_lte": operator.le}
_WITHOUT_VALUE = frozenset({"is_set", "is_not_set", "has", "has_none"})
_PERIOD = re.compile(r"^([1-9][0-9]{0,4})([hdwmy])$")


class _Invalid(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def relative_start(period: Any, now: datetime) -> datetime:
    """The start of "the last `period`" before `now`: "24h", "30d", "12w", "6m" or "1y"."""
    match = _PERIOD.match(period) if isinstance(period, str) else None
    if match is None:
        raise _Invalid('Give a period such as "24h", "30d", "12w", "6m" or "1y".')
    amount, unit = int(match.group(1)), match.group(2)
    if unit in "hdw":
        hours = {"h": 1, "d": 24, "w": 24 * 7}[unit]
        return now - timedelta(hours=amount * hours)
    months = amount * (12 if unit == "y" else 1)
    year, month = divmod(now.year * 12 + now.month - 1 - months, 12)
    if year < 1:
        raise _Invalid("The period reaches before the year 1.")
    return _clamp_day(now, year, month + 1)


def _clamp_day(moment: datetime, year: int, month: int) -> datetime:
    for day in range(moment.day, 27, -1):
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    return moment.replace(year=year, month=month, day=min(moment.day, 28))


def _scalar(kind: Kind, value: Any, field: Field) -> Any:
    if value is None:
        raise _Invalid("A value is required.")
    if kind in (Kind.TEXT, Kind.ENUM):
        if not isinstance(value, str):
            raise _Invalid("Expected a string.")
        if field.options is not None and value not in field.options:
            if not field.options:
                raise _Invalid("No values are defined for this field yet.")
            raise _Invalid(f"Expected one of: {', '.join(sorted(field.options))}.")
        return value
    if kind is Kind.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Invalid("Expected a number.")
        return value
    if kind is Kind.BOOLEAN:
        if not isinstance(value, bool):
            raise _Invalid("Expected true or false.")
        return value
    if kind is Kind.UUID:
        return _parsed(UUID, value, "Expected an id.")
    if kind is Kind.DATE:
        return _parsed(date.fromisoformat, value, "Expected a date as YYYY-MM-DD.")
    if kind is Kind.DATETIME:
        return _moment(value)
    raise _Invalid("This field takes no single value.")


def _moment(value: Any) -> datetime:
    if not isinstance(value, str):
        raise _Invalid("Expected an RFC 3339 time.")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise _Invalid("Expected an RFC 3339 time, e.g. 2026-11-20T10:00:00+09:00.") from error
    if moment.tzinfo is None:
        if len(value) == 10:  # a plain date means its midnight in UTC
            return moment.replace(tzinfo=UTC)
        raise _Invalid("Give the time with its offset, e.g. +09:00 or Z.")
    return moment.astimezone(UTC)


def _parsed(parse: Any, value: Any, message: str) -> Any:
    if not isinstance(value, str):
        raise _Invalid(message)
    try:
        return parse(value)
    except ValueError as error:
        raise _Invalid(message) from error


def _values(kind: Kind, value: Any, field: Field) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise _Invalid("Expected a non-empty list.")
    if len(value) > MAX_LIST_VALUES:
        raise _Invalid(f"At most {MAX_LIST_VALUES} values.")
    return [field.to_sql(_scalar(kind, item, field)) for item in value]


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Invalid("Expected a count: a whole number, 0 or more.")
    return value


def _amount(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid("Expected an amount: a whole number in the currency's minor unit.")
    return value


def _definite(
    expression: ColumnElement[Any], condition: ColumnElement[bool]
) -> ColumnElement[bool]:
    return and_(expression.is_not(None), condition)


def _compile_list(field: Field, op: str, value: Any) -> ColumnElement[bool]:
    assert field.has is not None
    assert field.non_empty is not None
    if op == "is_set":
        return field.non_empty()
    if op == "is_not_set":
        return not_(field.non_empty())
    if op == "contains":
        return field.has(field.to_sql(_scalar(field.element_kind, value, field)))
    members = [field.has(item) for item in _values(field.element_kind, value, field)]
    return or_(*members) if op == "in" else and_(*members)


def _relative_bound(field: Field, period: Any, now: Now) -> Any:
    """The start of the last `period`, for comparing with the field; with a clock for `now`,
    a parameter the clock sets each time the statement runs."""

    def start_before(moment: datetime) -> Any:
        start = relative_start(period, moment)
        return field.to_sql(start.date() if field.kind is Kind.DATE else start)

    if isinstance(now, datetime):
        return start_before(now)
    start_before(now())  # a bad period is refused now, not when the statement runs
    assert field.expression is not None
    return bindparam(
        None, callable_=lambda: start_before(now()), type_=field.expression.type, unique=True
    )


def _compile_scalar(field: Field, op: str, value: Any, now: Now) -> ColumnElement[bool]:
    expression = field.expression
    assert expression is not None
    kind = field.kind
    if op == "is_set":
        present = expression.is_not(None)
        return and_(present, expression != "") if kind is Kind.TEXT else present
    if op == "is_not_set":
        absent = expression.is_(None)
        return or_(absent, expression == "") if kind is Kind.TEXT else absent
    if op == "ne":
        return or_(expression.is_(None), expression != field.to_sql(_scalar(kind, value, field)))
    if op == "not_in":
        return or_(expression.is_(None), expression.not_in(_values(kind, value, field)))
    if op == "in":
        return _definite(expression, expression.in_(_values(kind, value, field)))
    if op in ("within_last", "not_within_last"):
        bound = _relative_bound(field, value, now)
        if op == "within_last":
            return _definite(expression, expression >= bound)
        return or_(expression.is_(None), expression < bound)
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise _Invalid("Expected [low, high].")
        low, high = (field.to_sql(_scalar(kind, item, field)) for item in value)
        return _definite(expression, expression.between(low, high))
    operand = field.to_sql(_scalar(kind, value, field))
    if op == "contains":
        return _definite(expression, expression.icontains(operand, autoescape=True))
    if op == "starts_with":
        return _definite(expression, expression.istartswith(operand, autoescape=True))
    return _definite(expression, _COMPARISONS[op](expression, operand))


class _Compiler:
    def __init__(
        self,
        registry: FieldRegistry,
        now: Now,
        problems: FilterProblems,
        whole_workspace: UUID | None = None,
    ) -> None:
        self.registry = registry
        self.now = now
        self.problems = problems
        self.whole_workspace = whole_workspace

    def node(self, node: Node) -> ColumnElement[bool]:
        if isinstance(node, AllOf):
            return and_(true(), *(self.node(child) for child in node.children))
        if isinstance(node, AnyOf):
            return or_(false(), *(self.node(child) for child in node.children))
        if isinstance(node, Not):
            return not_(self.node(node.child))
        return self.condition(node)

    def condition(self, condition: Condition) -> ColumnElement[bool]:
        field = self.registry.resolve(condition.field)
        if field is None:
            self.problems.add((*condition.path, "field"), f"Unknown field '{condition.field}'.")
            return false()
        if condition.op not in field.operators:
            allowed = ", ".join(sorted(field.operators))
            self.problems.add(
                (*condition.path, "op"),
                f"'{condition.op}' does not apply to {condition.field}; use one of: {allowed}.",
            )
            return false()
        if condition.op in _WITHOUT_VALUE and condition.value is not None:
            self.problems.add((*condition.path, "value"), f"'{condition.op}' takes no value.")
            return false()
        if condition.where is not None and field.kind is not Kind.BEHAVIOUR:
            self.problems.add(
                (*condition.path, "where"),
                "Only behaviours (orders, interactions, events) take a 'where' filter.",
            )
            return false()
        try:
            if field.kind is Kind.BEHAVIOUR:
                return self.behaviour(field, condition)
            if field.kind is Kind.LIST:
                return _compile_list(field, condition.op, condition.value)
            compiled = _compile_scalar(field, condition.op, condition.value, self.now)
            return field.within(compiled) if field.within is not None else compiled
        except _Invalid as invalid:
            self.problems.add((*condition.path, "value"), invalid.message)
        except ValueError as error:  # a field's own conversion refused the value
            self.problems.add((*condition.path, "value"), str(error))
        return false()

    def behaviour(self, field: Field, condition: Condition) -> ColumnElement[bool]:
        """How many of the row's related rows (its orders, ...) meet `where`, compared."""
        behaviour = field.behaviour
        assert behaviour is not None
        where: ColumnElement[bool] = true()
        if condition.where is not None:
            where = _Compiler(behaviour.fields, self.now, self.problems).node(condition.where)
        if behaviour.summary is not None and not self.problems:
            summarised = self.summarised(behaviour, condition)
            if summarised is not None:
                return summarised
        matching = (behaviour.belongs(), where)
        op = condition.op
        if op in _SPENT_COMPARISONS:
            amount = _amount(condition.value)
            if self.whole_workspace is not None:
                total = func.sum(behaviour.amount)
                return self.grouped(behaviour, where, _SPENT_COMPARISONS[op], total, amount)
            spent = (
                select(func.coalesce(func.sum(behaviour.amount), 0))
                .select_from(behaviour.rows)
                .where(*matching)
                .scalar_subquery()
            )
            compared_spent: ColumnElement[bool] = _SPENT_COMPARISONS[op](spent, amount)
            return compared_spent
        if op.startswith("count_"):
            count = _count(condition.value)
            # Counts that only ask whether a row exists compile to EXISTS, which planners
            # turn into a semi-join instead of counting per row.
            if op == "count_gte" and count == 0:
                return true()
            if op == "count_gte" and count == 1:
                op = "has"
            elif op in ("count_lte", "count_eq") and count == 0:
                op = "has_none"
            elif self.whole_workspace is not None:
                return self.grouped(behaviour, where, _COUNT_COMPARISONS[op], func.count(), count)
            else:
                counted = (
                    select(func.count())
                    .select_from(behaviour.rows)
                    .where(*matching)
                    .scalar_subquery()
                )
                compared: ColumnElement[bool] = _COUNT_COMPARISONS[op](counted, count)
                return compared
        found = exists(select(literal(1)).select_from(behaviour.rows).where(*matching))
        return found if op == "has" else not_(found)

    def summarised(self, behaviour: Behaviour, condition: Condition) -> ColumnElement[bool] | None:
        """The condition from the filtered row's own summary columns, when they answer it:
        a count of all related rows, or whether one happened within a period."""
        summary = behaviour.summary
        assert summary is not None
        op, where = condition.op, condition.where
        if where is None and (op in ("has", "has_none") or op in _COUNT_COMPARISONS):
            count: ColumnElement[Any] = func.coalesce(summary.count, 0)
            if op == "has":
                return count >= 1
            if op == "has_none":
                return count == 0
            compared: ColumnElement[bool] = _COUNT_COMPARISONS[op](count, _count(condition.value))
            return compared
        occurred_at = behaviour.fields.resolve("occurred_at")
        if (
            op in ("has", "has_none")
            and isinstance(where, Condition)
            and where.field == "occurred_at"
            and where.op == "within_last"
            and occurred_at is not None
        ):
            newest: ColumnElement[Any] = summary.newest
            bound = _relative_bound(occurred_at, where.value, self.now)
            if op == "has":
                return _definite(newest, newest >= bound)
            return or_(newest.is_(None), newest < bound)
        return None

    def grouped(
        self,
        behaviour: Behaviour,
        where: ColumnElement[bool],
        compare: Callable[[Any, Any], ColumnElement[bool]],
        measure: ColumnElement[Any],
        value: int,
    ) -> ColumnElement[bool]:
        """`compare(measure, value)` over each row's related rows meeting `where`, as one
        grouping of the workspace's rows: the rows with none (a count or sum of 0) are in the
        answer exactly when 0 compares true, so they are found by what they are not."""
        assert self.whole_workspace is not None
        owners = (
            select(behaviour.owner)
            .select_from(behaviour.rows)
            .where(behaviour.of_workspace(self.whole_workspace), where)
            .group_by(behaviour.owner)
        )
        key: ColumnElement[Any] = behaviour.key
        if compare(0, value):
            return key.not_in(owners.having(not_(compare(measure, value))))
        return key.in_(owners.having(compare(measure, value)))


def newest_behaviour(
    raw: Any, registry: FieldRegistry, *, now: datetime, path: Sequence[str | int]
) -> ColumnElement[Any] | None:
    """For a filter that is one behaviour condition, when the newest of the rows meeting its
    `where` happened (NULL when none does); None for any other filter."""
    problems = FilterProblems()
    node = parse_filter(raw, path, problems)
    if not isinstance(node, Condition):
        return None
    field = registry.resolve(node.field)
    if field is None or field.behaviour is None:
        return None
    behaviour = field.behaviour
    where: ColumnElement[bool] = true()
    if node.where is not None:
        where = _Compiler(behaviour.fields, now, problems).node(node.where)
    if problems:
        return None
    return (
        select(func.max(behaviour.occurred_at))
        .select_from(behaviour.rows)
        .where(behaviour.belongs(), where)
        .scalar_subquery()
    )


def compile_filter(
    raw: Any,
    registry: FieldRegistry,
    *,
    now: Now,
    path: Sequence[str | int],
    whole_workspace: UUID | None = None,
) -> ColumnElement[bool]:
    """`raw` as one boolean SQL expression; 422 naming every problem's JSON path.

    Relative times ("within the last 30 days") count back from `now`; given a clock instead
    of a moment, from the clock's time whenever the statement runs, so the expression can be
    kept and run again later.

    With `whole_workspace` (its id), for filtering every row of that workspace at once (a
    segment's recomputation), behaviour counts and sums are compiled as one grouping of the
    workspace's related rows instead of one correlated count per filtered row; for a few rows
    (a change, a page) the correlated form is the cheap one.
    """
    problems = FilterProblems()
    node = parse_filter(raw, path, problems)
    compiler = _Compiler(registry, now, problems, whole_workspace)
    expression = compiler.node(node) if node is not None else false()
    if problems:
        first_path, first_message = problems.items[0]
        where = ".".join(str(part) for part in first_path)
        raise ValidationFailed(f"{where}: {first_message}", problems.items)
    return expression
