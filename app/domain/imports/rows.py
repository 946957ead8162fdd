"""Reading CSV or JSON Lines a row at a time, and turning rows into API-shaped items."""

import codecs
import csv
from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum
from typing import IO, Any

import orjson

from app.core.errors import ValidationFailed
from app.domain.company.schemas import CompanyCreate
from app.domain.customer.entities import FieldDefinition
from app.domain.customer.schemas import CustomerCreate, FieldType

CHUNK_ROWS = 500
LIST_SEPARATOR = ";"
_NESTED = frozenset({"external_ids", "address", "attributes", "consents"})
_LIST_FIELDS = frozenset({"emails", "phones", "tags"})
_INTEGER_FIELDS = frozenset({"employee_count"})
_TRUE = frozenset({"true", "1", "yes", "y", "はい", "○"})
_FALSE = frozenset({"false", "0", "no", "n", "いいえ", "×"})


class ImportObject(StrEnum):
    CUSTOMERS = "customers"
    COMPANIES = "companies"


class ImportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


class Encoding(StrEnum):
    UTF8 = "utf-8"
    SHIFT_JIS = "shift_jis"  # what Excel writes for Japanese CSV files; read as cp932


Row = tuple[int, dict[str, Any]]


def _fields_of(import_object: ImportObject) -> frozenset[str]:
    model = CustomerCreate if import_object is ImportObject.CUSTOMERS else CompanyCreate
    return frozenset(model.model_fields)


def check_mapping(mapping: Mapping[str, str], import_object: ImportObject) -> None:
    """422 for a target that is not a field of the object (a typo would fail every row)."""
    fields = _fields_of(import_object)
    problems: list[tuple[list[str | int], str]] = []
    for column, target in mapping.items():
        head, dot, rest = target.partition(".")
        known = head in fields and (not dot or (head in _NESTED and bool(rest)))
        if not known:
            problems.append(
                (["body", "mapping", column], f"'{target}' is not a field of {import_object}.")
            )
    if problems:
        raise ValidationFailed(problems[0][1], problems)


def read_rows(stream: IO[bytes], import_format: ImportFormat, encoding: Encoding) -> Iterator[Row]:
    """(line number, row) for every row, reading the stream incrementally."""
    codec = "cp932" if encoding is Encoding.SHIFT_JIS else "utf-8-sig"
    text = codecs.getreader(codec)(stream)
    try:
        if import_format is ImportFormat.CSV:
            yield from _csv_rows(text)
        else:
            yield from _jsonl_rows(text)
    except UnicodeDecodeError as error:
        raise ValidationFailed.at(
            ("body", "file"), f"The file is not valid {encoding}; set `encoding`."
        ) from error


def _csv_rows(text: Iterable[str]) -> Iterator[Row]:
    reader = csv.reader(text)
    header = next(reader, None)
    if not header or not any(name.strip() for name in header):
        raise ValidationFailed.at(("body", "file"), "The CSV file needs a header row.")
    names = [name.strip() for name in header]
    for values in reader:
        if any(value.strip() for value in values):
            yield reader.line_num, dict(zip(names, values, strict=False))


def _jsonl_rows(text: Iterable[str]) -> Iterator[Row]:
    for number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            raise ValidationFailed.at(("body", "file"), f"Line {number} is not a JSON object.")
        yield number, value


def chunks(rows: Iterable[Row], size: int = CHUNK_ROWS) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class RowMapper:
    """Turns a row into the item the API would take: renamed, nested, and typed if textual."""

    def __init__(
        self,
        mapping: Mapping[str, str] | None,
        definitions: Mapping[str, FieldDefinition],
        *,
        textual: bool,
    ) -> None:
        self.mapping = mapping
        self.definitions = definitions
        self.textual = textual

    def item(self, row: Mapping[str, Any]) -> dict[str, Any]:
        item: dict[str, Any] = {}
        for column, value in row.items():
            target = self.mapping.get(column) if self.mapping else column
            if target is None or value is None or (isinstance(value, str) and not value.strip()):
                continue
            converted = self._convert(target, value.strip()) if self.textual else value
            head, dot, rest = target.partition(".")
            if dot:
                item.setdefault(head, {})[rest] = converted
            else:
                item[target] = converted
        return item

    def _convert(self, target: str, value: str) -> Any:
        head, _, rest = target.partition(".")
        if head in _LIST_FIELDS:
            return [part.strip() for part in value.split(LIST_SEPARATOR) if part.strip()]
        if head in _INTEGER_FIELDS:
            return _number(value)
        if head == "consents":
            return {"granted": _boolean(value), "source": "import"}
        if head == "attributes" and (definition := self.definitions.get(rest)) is not None:
            return _typed(FieldType(definition.type), value)
        return value


def _number(value: str) -> Any:
    cleaned = value.replace(",", "")
    for parse in (int, float):
        try:
            return parse(cleaned)
        except ValueError:
            continue
    return value  # left as text, so validation names the row and field


def _boolean(value: str) -> Any:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return value


def _typed(kind: FieldType, value: str) -> Any:
    if kind is FieldType.NUMBER:
        return _number(value)
    if kind is FieldType.BOOLEAN:
        return _boolean(value)
    if kind is FieldType.MULTI_ENUM:
        return [part.strip() for part in value.split(LIST_SEPARATOR) if part.strip()]
    if kind is FieldType.MONEY:
        amount, _, currency = value.partition(" ")
        return {"amount": _number(amount), "currency": currency.strip().upper()}
    return value
