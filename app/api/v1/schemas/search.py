"""Request and answer shapes shared by every resource's search and batch endpoints."""

from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field

from app.api.errors import Problem
from app.core.schemas import InputModel
from app.db.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageRequest

MAX_BATCH_ITEMS = 1000


class SearchRequest(InputModel):
    filter: dict[str, Any] | None = Field(
        default=None,
        description="The filter DSL: all / any / not of {field, op, value} conditions",
        examples=[
            {
                "all": [
                    {"field": "lifecycle_stage", "op": "eq", "value": "customer"},
                    {"field": "tags", "op": "contains", "value": "vip"},
                ]
            }
        ],
    )
    sort: Annotated[str, Field(max_length=100, pattern=r"^-?[a-z_]+(\.[a-z0-9_]+)?$")] = (
        "created_at"
    )
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    cursor: Annotated[str, Field(max_length=1000)] | None = None

    def page(self) -> PageRequest:
        return PageRequest(limit=self.limit, cursor=self.cursor, sort=self.sort, origin="body")


class BatchRequest(InputModel):
    items: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_BATCH_ITEMS,
        description="Each item is validated on its own; a bad item fails alone",
    )


class BatchItemResult(BaseModel):
    index: int
    status: str = Field(description="created, updated or error")
    id: UUID | None
    error: Problem | None


class BatchResponse(BaseModel):
    results: list[BatchItemResult]
