"""Payload templates: JSON whose strings name values as `{{customer.email}}`.

Substitution only: a path is looked up in plain data (no expressions, no code, no attribute
access on objects). A string that is exactly one placeholder takes the value with its JSON type;
placeholders inside a longer string are replaced by their text.
"""

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")
ROOTS = ("event", "customer", "deal", "workflow", "run")
_MISSING = object()


class TemplateError(ValueError):
    """A placeholder names a value that is not there."""


def placeholders(
    template: Any, loc: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every placeholder's path in `template`, with where it is."""
    if isinstance(template, str):
        for match in PLACEHOLDER.finditer(template):
            yield loc, match.group(1)
    elif isinstance(template, dict):
        for key, value in template.items():
            yield from placeholders(value, (*loc, key))
    elif isinstance(template, list):
        for index, value in enumerate(template):
            yield from placeholders(value, (*loc, index))


def lookup(values: Mapping[str, Any], path: str) -> Any:
    current: Any = values
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            raise TemplateError(f"The template refers to '{path}', which this run does not have.")
    return current


def render(template: Any, values: Mapping[str, Any]) -> Any:
    """`template` with its placeholders replaced by values; TemplateError when one is missing."""
    if isinstance(template, str):
        whole = PLACEHOLDER.fullmatch(template)
        if whole is not None:
            return lookup(values, whole.group(1))
        return PLACEHOLDER.sub(lambda match: _text(lookup(values, match.group(1))), template)
    if isinstance(template, dict):
        return {key: render(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [render(value, values) for value in template]
    return template


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def check_paths(
    template: Any, known: Callable[[str], str | None], loc: tuple[str | int, ...]
) -> list[tuple[tuple[str | int, ...], str]]:
    """Problems with the template's placeholders: `known(path)` says what is wrong with a path
    (None when it can be resolved)."""
    problems = []
    for where, path in placeholders(template):
        if (problem := known(path)) is not None:
            problems.append(((*loc, *where), problem))
    return problems
