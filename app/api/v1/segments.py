"""Segments: /v1/segments, previews, members and daily sizes."""

from datetime import timedelta
from typing import Annotated
from uuid import UUID

from fastapi import Query, Request, Response, status

from app.api.deps import IfMatchDep, PageDep, ReadUnit, Unit, WriteUnit
from app.api.errors import problem_responses
from app.api.responses import created_at_location, list_response, set_etag
from app.api.v1.routing import resource_router
from app.api.v1.schemas.common import ListResponse
from app.core.clock import utcnow
from app.domain.access.scopes import Scope
from app.domain.customer.schemas import Customer
from app.domain.segment.schemas import (
    MemberChange,
    MemberChangeResult,
    Segment,
    SegmentCreate,
    SegmentPreview,
    SegmentPreviewRequest,
    SegmentSizePoint,
    SegmentUpdate,
)
from app.domain.segment.service import SegmentService

router = resource_router("/segments", "segments")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
    summary="Create a segment",
)
async def create_segment(
    body: SegmentCreate,
    request: Request,
    response: Response,
    unit: Unit = WriteUnit(Scope.SEGMENTS_WRITE),
) -> Segment:
    """A dynamic segment starts `computing`: the worker fills it in the background and every
    customer who enters gets `segment.entered`. A static segment starts empty."""
    segment = await SegmentService(unit.session, unit.context).create(body)
    created_at_location(response, request, segment.id)
    set_etag(response, segment.version)
    return Segment.model_validate(segment)


@router.get("", summary="List segments")
async def list_segments(
    request: Request,
    response: Response,
    page: PageDep,
    unit: Unit = ReadUnit(Scope.SEGMENTS_READ),
) -> ListResponse[Segment]:
    """Sort by `created_at` (default), `updated_at` or `name`, each also descending."""
    segments = await SegmentService(unit.session, unit.context).page(page)
    return list_response(request, response, segments, Segment.model_validate)


@router.post("/preview", summary="Count and sample the customers a filter matches")
async def preview_segment(
    body: SegmentPreviewRequest, unit: Unit = ReadUnit(Scope.SEGMENTS_READ)
) -> SegmentPreview:
    service = SegmentService(unit.session, unit.context)
    count, sample = await service.preview(body.filter, body.sample_size)
    return SegmentPreview(count=count, sample=[Customer.model_validate(c) for c in sample])


@router.get("/{segment_id}", responses=problem_responses(404), summary="Get a segment")
async def get_segment(
    segment_id: UUID, response: Response, unit: Unit = ReadUnit(Scope.SEGMENTS_READ)
) -> Segment:
    segment = await SegmentService(unit.session, unit.context).get(segment_id)
    set_etag(response, segment.version)
    return Segment.model_validate(segment)


@router.patch(
    "/{segment_id}", responses=problem_responses(404, 409, 412), summary="Update a segment"
)
async def update_segment(
    segment_id: UUID,
    body: SegmentUpdate,
    response: Response,
    if_match: IfMatchDep,
    unit: Unit = WriteUnit(Scope.SEGMENTS_WRITE),
) -> Segment:
    """A new filter sets `status` to `computing`; the worker recomputes the members and
    announces only the difference."""
    service = SegmentService(unit.session, unit.context)
    segment = await service.update(segment_id, body, expected_versions=if_match)
    set_etag(response, segment.version)
    return Segment.model_validate(segment)


@router.delete(
    "/{segment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(404, 412),
    summary="Delete a segment",
)
async def delete_segment(
    segment_id: UUID, if_match: IfMatchDep, unit: Unit = WriteUnit(Scope.SEGMENTS_WRITE)
) -> None:
    await SegmentService(unit.session, unit.context).delete(segment_id, expected_versions=if_match)


@router.get(
    "/{segment_id}/customers",
    responses=problem_responses(404),
    summary="List a segment's members",
    response_model_exclude_unset=True,
)
async def list_segment_customers(
    segment_id: UUID,
    request: Request,
    response: Response,
    page: PageDep,
    unit: Unit = ReadUnit(Scope.SEGMENTS_READ),
) -> ListResponse[Customer]:
    members = await SegmentService(unit.session, unit.context).members(segment_id, page)
    return list_response(request, response, members, Customer.model_validate)


@router.post(
    "/{segment_id}/members",
    responses=problem_responses(404, 409),
    summary="Add customers to a static segment",
)
async def add_segment_members(
    segment_id: UUID, body: MemberChange, unit: Unit = WriteUnit(Scope.SEGMENTS_WRITE)
) -> MemberChangeResult:
    """Up to 1,000 customers per call; those already in stay, and only newcomers get
    `segment.entered`. Unknown ids answer 422 and change nothing."""
    service = SegmentService(unit.session, unit.context)
    changed, unchanged = await service.change_members(segment_id, body.customer_ids, adding=True)
    return MemberChangeResult(changed=changed, unchanged=unchanged)


@router.post(
    "/{segment_id}/members/remove",
    responses=problem_responses(404, 409),
    summary="Remove customers from a static segment",
)
async def remove_segment_members(
    segment_id: UUID, body: MemberChange, unit: Unit = WriteUnit(Scope.SEGMENTS_WRITE)
) -> MemberChangeResult:
    service = SegmentService(unit.session, unit.context)
    changed, unchanged = await service.change_members(segment_id, body.customer_ids, adding=False)
    return MemberChangeResult(changed=changed, unchanged=unchanged)


@router.get(
    "/{segment_id}/sizes",
    responses=problem_responses(404),
    summary="A segment's member count per day, for charts",
)
async def segment_sizes(
    segment_id: UUID,
    days: Annotated[int, Query(ge=1, le=730, description="How many days back")] = 90,
    unit: Unit = ReadUnit(Scope.SEGMENTS_READ),
) -> list[SegmentSizePoint]:
    since = (utcnow() - timedelta(days=days)).date()
    sizes = await SegmentService(unit.session, unit.context).sizes(segment_id, since)
    return [SegmentSizePoint(day=day, member_count=count) for day, count in sizes]
