"""Base classes for the JSON shapes clients send and read."""

from typing import Annotated, Any, ClassVar, TypeVar

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    GetJsonSchemaHandler,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


def _without_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, list | dict):
        # Most containers are plain JSON, and orjson writes every NUL as \u0000: without that
        # sequence there is none, found without walking the container in Python.
        try:
            if b"\\u0000" not in orjson.dumps(value):
                return True
        except TypeError:
            pass  # not plain JSON (models, dates, large numbers, odd keys): walked below
    if isinstance(value, list | tuple):
        return all(_without_nul(item) for item in value)
    if isinstance(value, dict):
        return all(_without_nul(key) and _without_nul(item) for key, item in value.items())
    return True


# Validation context: the whole input was found free of NUL characters before validation.
_CHECKED_FOR_NUL = "checked_for_nul"


class InputModel(BaseModel):
    """What a client writes: unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _no_nul_characters(cls, value: Any, info: ValidationInfo) -> Any:
        # PostgreSQL cannot store U+0000 in text; refuse it everywhere, on both databases alike.
        if info.context is not None and info.context.get(_CHECKED_FOR_NUL):
            return value
        if not _without_nul(value):
            raise ValueError("Text may not contain the NUL character (U+0000).")
        return value


Input = TypeVar("Input", bound=InputModel)


def validate_input(model: type[Input], raw: Any) -> Input:
    """`model.model_validate(raw)`, looking for NUL characters once in the whole of `raw`
    rather than field by field: batches validate thousands of items of dozens of fields."""
    return model.model_validate(raw, context={_CHECKED_FOR_NUL: _without_nul(raw)})


_ABSENT = object()


class ResourceModel(BaseModel):
    """What a client reads, built from entities."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def snapshot(cls, entity: object) -> dict[str, Any]:
        """The entity as the API shows it, as plain JSON values (for event payloads).

        Loaded attributes are taken from the entity's instance dictionary: batches take
        thousands of snapshots, and reading each field through SQLAlchemy's descriptors, as
        `from_attributes` does, costs more than validating it. Other fields are read as
        attributes (properties, attributes not loaded yet), or left to their defaults.
        """
        loaded = getattr(entity, "__dict__", {})
        values = {}
        for name in cls.model_fields:
            if name in loaded:
                values[name] = loaded[name]
            elif (value := getattr(entity, name, _ABSENT)) is not _ABSENT:
                values[name] = value  # read once: a property such as `metrics` builds its value
        return cls.model_validate(values).model_dump(mode="json")


class UpdateModel(InputModel):
    """A PATCH body: omitted fields stay as they are; null clears only the `nullable` fields."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*")
    @classmethod
    def _null_only_where_allowed(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls.nullable:
            raise ValueError("This field cannot be cleared; omit it to keep its value.")
        return value

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """Documents the non-nullable fields without `null`, as the validator enforces."""
        schema = handler(core_schema)
        properties = handler.resolve_ref_schema(schema).get("properties", {})
        for name, prop in properties.items():
            variants = prop.get("anyOf")
            if name in cls.nullable or not variants:
                continue
            non_null = [variant for variant in variants if variant.get("type") != "null"]
            if len(non_null) == 1:
                prop.pop("anyOf")
                prop.pop("default", None)
                prop.update(non_null[0])
        return schema


Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
