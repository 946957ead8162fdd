"""Version 1 of the HTTP contract: one router module per resource."""

from fastapi import APIRouter, Depends

from app.api.deps import require_json
from app.api.errors import problem_responses
from app.api.v1 import api_keys, audit_log, events, users, workspace

router = APIRouter(
    prefix="/v1",
    dependencies=[Depends(require_json)],
    responses=problem_responses(401, 403, 413, 415, 422, 429, 500, 503),
)
for module in (workspace, api_keys, users, audit_log, events):
    router.include_router(module.router)
