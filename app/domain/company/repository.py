"""Queries for companies."""

from collections.abc import Mapping
from typing import Any, ClassVar

from sqlalchemy.orm import InstrumentedAttribute

from app.db.repository import WorkspaceRepository
from app.domain.company.entities import Company


class CompanyRepository(WorkspaceRepository[Company]):
    entity = Company
    noun = "company"
    sortable: ClassVar[Mapping[str, InstrumentedAttribute[Any]]] = {
        "updated_at": Company.updated_at,
        "name": Company.name,
    }
