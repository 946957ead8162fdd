"""Custom field values: validated against their definitions on every write."""

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from app.core.errors import ValidationFailed
from app.core.money import is_currency
from app.domain.customer.entities import FieldDefinition
from app.domain.customer.schemas import FieldType

MAX_TEXT = 2000
Loc = tuple[str | int, ...]


def _check(definition: FieldDefinition, value: Any) -> Any:
    """The value to store, or ValueError with the reason."""
    kind = FieldType(definition.type)
    if kind is FieldType.TEXT:
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise ValueError(f"Expected text of at most {MAX_TEXT} characters.")
        return value
    if kind is FieldType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("Expected a number.")
        return value
    if kind is FieldType.BOOLEAN:
        if not isinstance(value, bool):
            raise ValueError("Expected true or false.")
        return value
    if kind is FieldType.DATE:
        if not isinstance(value, str):
            raise ValueError("Expected a date as YYYY-MM-DD.")
        return date.fromisoformat(value).isoformat()
    options = definition.options or []
    if kind is FieldType.ENUM:
        if value not in options:
            raise ValueError(f"Expected one of: {', '.join(options)}.")
        return value
    if kind is FieldType.MULTI_ENUM:
        if not isinstance(value, list) or any(item not in options for item in value):
            raise ValueError(f"Expected a list of: {', '.join(options)}.")
        return list(dict.fromkeys(value))
    amount = value.get("amount") if isinstance(value, dict) else None
    currency = value.get("currency") if isinstance(value, dict) else None
    if (
        not isinstance(value, dict)
        or set(value) != {"amount", "currency"}
        or isinstance(amount, bool)
        or not isinstance(amount, int)
        or not isinstance(currency, str)
        or not is_currency(currency)
    ):
        raise ValueError(
            'Expected {"amount": <integer in minor units>, "currency": "<ISO 4217 code>"}.'
        )
    return {"amount": amount, "currency": currency}


def apply_attributes(
    current: Mapping[str, Any],
    changes: Mapping[str, Any],
    definitions: Mapping[str, FieldDefinition],
    *,
    loc: Loc,
    creating: bool,
) -> dict[str, Any]:
    """`current` merged with `changes` (null removes a value), or 422 naming each bad key."""
    problems: list[tuple[Sequence[str | int], str]] = []
    merged = dict(current)
    for key, value in changes.items():
        definition = definitions.get(key)
        if definition is None:
            problems.append(((*loc, key), "No such custom field; define it under /v1/fields."))
        elif value is None:
            merged.pop(key, None)
        else:
            try:
                merged[key] = _check(definition, value)
            except ValueError as error:
                problems.append(((*loc, key), str(error)))
    for key, definition in definitions.items():
        if definition.required and merged.get(key) is None and (creating or key in changes):
            problems.append(((*loc, key), f"'{definition.label}' is required."))
    if problems:
        raise ValidationFailed(str(problems[0][1]), problems)
    return merged
