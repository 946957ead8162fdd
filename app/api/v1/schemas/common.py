"""Envelopes shared by every list."""

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

ItemT = TypeVar("ItemT")


class ListResponse(BaseModel, Generic[ItemT]):
    data: list[ItemT]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )
