"""The shapes of import jobs."""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field

from app.core.schemas import ResourceModel


class ImportRowProblem(ResourceModel):
    row: int = Field(description="Line in the file (the CSV header is line 1)")
    message: str
    errors: list[dict[str, Any]]


class ImportJob(ResourceModel):
    id: UUID
    object: str
    format: str
    filename: str | None
    mapping: dict[str, str] | None
    status: str = Field(description="pending, running, completed or failed")
    total_rows: int
    processed_rows: int
    created_count: int
    updated_count: int
    failed_count: int
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ImportJobDetail(ImportJob):
    failed_rows: list[ImportRowProblem] = Field(
        description="The first failed rows; page through all of them at /errors"
    )
