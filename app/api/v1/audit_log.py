"""Who changed what, when, from which request: /v1/audit-log (admin scope)."""

from typing import Annotated
from uuid import UUID

from fastapi import Depends, Query, Request, Response

from app.api.deps import ReadUnit, Unit, page_params
from app.api.responses import list_response
from app.api.v1.routing import resource_router
from app.api.v1.schemas.common import ListResponse
from app.api.v1.schemas.events import AuditEntry
from app.db.pagination import PageRequest
from app.domain.access.scopes import Scope
from app.domain.outbox.service import EventFeedService

router = resource_router("/audit-log", "audit log")


@router.get(
    "",
    summary="List audit entries",
    description="Newest first by default (`sort=-created_at`); `sort=created_at` for oldest first.",
)
async def list_audit_entries(
    request: Request,
    response: Response,
    page: Annotated[PageRequest, Depends(page_params(default_sort="-created_at"))],
    subject_type: Annotated[str | None, Query(max_length=50)] = None,
    subject_id: UUID | None = None,
    type: Annotated[str | None, Query(max_length=100)] = None,
    api_key_id: UUID | None = None,
    unit: Unit = ReadUnit(Scope.ADMIN),
) -> ListResponse[AuditEntry]:
    entries = await EventFeedService(unit.session, unit.context).audit_log(
        page,
        subject_type=subject_type,
        subject_id=subject_id,
        event_type=type,
        api_key_id=api_key_id,
    )
    return list_response(request, response, entries, AuditEntry.model_validate)
