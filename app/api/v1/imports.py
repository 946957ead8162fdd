"""Import jobs: /v1/imports (CSV or JSON Lines of customers or companies)."""

from typing import Annotated
from uuid import UUID

import orjson
from fastapi import BackgroundTasks, Depends, File, Form, Request, Response, UploadFile, status

from app.api.deps import (
    PageDep,
    ReadUnit,
    Unit,
    WriteUnit,
    get_database,
    page_params,
)
from app.api.errors import problem_responses
from app.api.responses import created_at_location, list_response
from app.api.v1.routing import resource_router
from app.api.v1.schemas.common import ListResponse
from app.core.errors import ValidationFailed
from app.db.pagination import PageRequest
from app.domain.access.scopes import Scope
from app.domain.imports.rows import Encoding, ImportFormat, ImportObject, chunks, read_rows
from app.domain.imports.schemas import ImportJob, ImportJobDetail, ImportRowProblem
from app.domain.imports.service import ImportRunner, ImportService

router = resource_router("/imports", "imports")


def _format_of(declared: ImportFormat | None, filename: str | None) -> ImportFormat:
    if declared is not None:
        return declared
    name = (filename or "").lower()
    if name.endswith((".jsonl", ".ndjson")):
        return ImportFormat.JSONL
    if name.endswith(".csv"):
        return ImportFormat.CSV
    raise ValidationFailed.at(("body", "format"), "Give the format: csv or jsonl.")


def _mapping_of(raw: str | None) -> dict[str, str] | None:
    if raw is None:
        return None
    try:
        mapping = orjson.loads(raw)
    except orjson.JSONDecodeError:
        mapping = None
    if not isinstance(mapping, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in mapping.items()
    ):
        raise ValidationFailed.at(
            ("body", "mapping"), 'Give a JSON object of column to field, e.g. {"メール": "emails"}.'
        )
    return mapping


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(404),
    summary="Import customers or companies from a file",
)
async def create_import(
    request: Request,
    response: Response,
    background: BackgroundTasks,
    file: Annotated[UploadFile, File(description="CSV (with a header row) or JSON Lines")],
    object: Annotated[ImportObject, Form()],
    format: Annotated[ImportFormat | None, Form()] = None,
    mapping: Annotated[
        str | None,
        Form(
            description='JSON object of column → field, e.g. {"メール": "emails", '
            '"会員ID": "external_ids.shop"}; without it columns are taken by their names'
        ),
    ] = None,
    encoding: Annotated[Encoding, Form(description="utf-8, or shift_jis for Excel")] = (
        Encoding.UTF8
    ),
    unit: Unit = WriteUnit(Scope.CUSTOMERS_WRITE),
) -> ImportJob:
    """The rows are parsed now and applied in the background; poll the job for progress.
    In CSV, lists (emails, phones, tags, multi-choice fields) are separated by `;`."""
    import_format = _format_of(format, file.filename)
    rows = chunks(read_rows(file.file, import_format, encoding))
    job = await ImportService(unit.session, unit.context).create(
        object, import_format, _mapping_of(mapping), file.filename, rows
    )
    runner = ImportRunner(get_database(request).writer)
    background.add_task(runner.run, job.workspace_id, job.id)
    created_at_location(response, request, job.id)
    return ImportJob.model_validate(job)


@router.get("", summary="List import jobs")
async def list_imports(
    request: Request,
    response: Response,
    page: PageDep,
    unit: Unit = ReadUnit(Scope.CUSTOMERS_READ),
) -> ListResponse[ImportJob]:
    jobs = await ImportService(unit.session, unit.context).page(page)
    return list_response(request, response, jobs, ImportJob.model_validate)


@router.get("/{import_id}", responses=problem_responses(404), summary="An import's progress")
async def get_import(
    import_id: UUID, unit: Unit = ReadUnit(Scope.CUSTOMERS_READ)
) -> ImportJobDetail:
    job, failed = await ImportService(unit.session, unit.context).get(import_id)
    return ImportJobDetail.model_validate(
        {
            **ImportJob.snapshot(job),
            "failed_rows": [ImportRowProblem.model_validate(row) for row in failed],
        }
    )


@router.get(
    "/{import_id}/errors", responses=problem_responses(404), summary="Every failed row of an import"
)
async def list_import_errors(
    import_id: UUID,
    request: Request,
    response: Response,
    page: Annotated[PageRequest, Depends(page_params(default_sort="row"))],
    unit: Unit = ReadUnit(Scope.CUSTOMERS_READ),
) -> ListResponse[ImportRowProblem]:
    """Sorted by `row` (the default here; `-row` for the last first)."""
    errors = await ImportService(unit.session, unit.context).errors(import_id, page)
    return list_response(request, response, errors, ImportRowProblem.model_validate)
