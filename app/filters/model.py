"""Parsing a filter document into nodes that remember where in the request they came from.

A filter is `{"all": [...]}`, `{"any": [...]}`, `{"not": {...}}` or a condition
`{"field": ..., "op": ..., "value": ...}`; a condition on a behaviour (`orders`, `interactions`,
`events`) may carry its own filter under `where`. Problems are collected with their JSON path, so
the client learns every mistake at once, e.g. `["body", "filter", "all", 1, "op"]`.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 10
MAX_CONDITIONS = 200

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    op: str
    value: Any
    has_value: bool
    path: Path
    where: "Node | None" = None


@dataclass(frozen=True, slots=True)
class AllOf:
    children: tuple["Node", ...]
    path: Path


@dataclass(frozen=True, slots=True)
class AnyOf:
    children: tuple["Node", ...]
    path: Path


@dataclass(frozen=True, slots=True)
class Not:
    child: "Node"
    path: Path


Node = Condition | AllOf | AnyOf | Not


class FilterProblems:
    """Problems found so far, each with its path."""

    def __init__(self) -> None:
        self.items: list[tuple[Path, str]] = []

    def add(self, path: Path, message: str) -> None:
        self.items.append((path, message))

    def __bool__(self) -> bool:
        return bool(self.items)


class _Parser:
    def __init__(self, problems: FilterProblems) -> None:
        self.problems = problems
        self.conditions = 0

    def node(self, raw: Any, path: Path, depth: int) -> Node | None:
        if depth > MAX_DEPTH:
            self.problems.add(path, f"Filters nest at most {MAX_DEPTH} levels deep.")
            return None
        if not isinstance(raw, dict):
            self.problems.add(path, "A filter node must be an object.")
            return None
        groups = [key for key in ("all", "any", "not") if key in raw]
        if groups:
            if len(raw) != 1:
                self.problems.add(path, f"'{groups[0]}' must be the node's only key.")
                return None
            return self._group(groups[0], raw[groups[0]], path, depth)
        return self._condition(raw, path, depth)

    def _group(self, kind: str, raw: Any, path: Path, depth: int) -> Node | None:
        child_path = (*path, kind)
        if kind == "not":
            child = self.node(raw, child_path, depth + 1)
            return Not(child, path) if child is not None else None
        if not isinstance(raw, list) or not raw:
            self.problems.add(child_path, f"'{kind}' takes a non-empty list of filters.")
            return None
        children = [
            self.node(item, (*child_path, index), depth + 1) for index, item in enumerate(raw)
        ]
        if any(child is None for child in children):
            return None
        nodes = tuple(child for child in children if child is not None)
        return AllOf(nodes, path) if kind == "all" else AnyOf(nodes, path)

    def _condition(self, raw: dict[str, Any], path: Path, depth: int) -> Condition | None:
        self.conditions += 1
        if self.conditions == MAX_CONDITIONS + 1:
            self.problems.add(path, f"A filter holds at most {MAX_CONDITIONS} conditions.")
        unknown = sorted(set(raw) - {"field", "op", "value", "where"})
        for key in unknown:
            self.problems.add(
                (*path, key), "Unknown key; a condition has field, op, value and where."
            )
        where = self.node(raw["where"], (*path, "where"), depth + 1) if "where" in raw else None
        field, op = raw.get("field"), raw.get("op")
        if not isinstance(field, str) or not field:
            self.problems.add((*path, "field"), "A condition needs a field name.")
        if not isinstance(op, str) or not op:
            self.problems.add((*path, "op"), "A condition needs an operator.")
        if unknown or not isinstance(field, str) or not isinstance(op, str):
            return None
        if "where" in raw and where is None:
            return None
        return Condition(field, op, raw.get("value"), "value" in raw, path, where)


def parse_filter(raw: Any, path: Sequence[str | int], problems: FilterProblems) -> Node | None:
    """The filter's nodes, or None with `problems` filled in."""
    parser = _Parser(problems)
    node = parser.node(raw, tuple(path), 1)
    return None if problems else node
