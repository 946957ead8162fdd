"""The app's /v1 routes as data, for tests that walk every route: each route's required scopes
and path parameters, a valid minimal body, and factories that create what a path id names.

Routes come from the app itself, so a new route is walked without editing this module; only a
new kind of path parameter (a factory) or a body with required fields (a minimal body) needs an
entry here.
"""

import itertools
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

from app.domain.access.schemas import ApiKeyCreate, UserCreate, UserUpdate, WorkspaceUpdate
from app.domain.access.scopes import Scope, grants
from app.domain.commerce.schemas import EventIn
from app.domain.company.schemas import CompanyCreate, CompanyUpdate
from app.domain.customer.schemas import (
    CustomerCreate,
    CustomerMerge,
    CustomerUpdate,
    FieldDefinitionCreate,
    FieldDefinitionUpdate,
)
from app.domain.interaction.schemas import InteractionCreate, InteractionUpdate
from app.domain.pipeline.schemas import (
    DealCreate,
    DealUpdate,
    PipelineCreate,
    PipelineUpdate,
    StageCreate,
    StageMove,
    StageUpdate,
)
from app.domain.segment.schemas import MemberChange, SegmentCreate, SegmentPreviewRequest
from app.domain.segment.standing_schemas import (
    ScoreThresholds,
    ScoringRuleCreate,
    TierCreate,
    TierUpdate,
)
from app.domain.webhook.schemas import WebhookCreate, WebhookUpdate
from app.domain.workflow.schemas import DryRunRequest, RunRequest, WorkflowCreate, WorkflowUpdate
from app.main import create_app
from tests.conftest import settings_for

API_PREFIX = "/v1"
_PATH_PARAMETER = re.compile(r"{(\w+)(?::\w+)?}")

Json = dict[str, Any]
# Keyword arguments for httpx's request() that carry a body: `json`, or `files` and `data`.
Payload = dict[str, Any]


def path_parameters(path: str) -> tuple[str, ...]:
    """The names of the parameters in a path template, in order."""
    return tuple(match.group(1) for match in _PATH_PARAMETER.finditer(path))


@dataclass(frozen=True)
class Endpoint:
    """One method of one route, as the app routes it."""

    method: str
    path: str
    dependant: Dependant
    takes_body: bool
    takes_form: bool  # multipart (uploads) rather than JSON
    body_model: type[BaseModel] | None

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def path_parameters(self) -> tuple[str, ...]:
        return path_parameters(self.path)

    @property
    def query_parameters(self) -> frozenset[str]:
        """The names of the query parameters it reads, its dependencies' included."""
        return frozenset(_query_parameters(self.dependant))

    @property
    def required_scopes(self) -> frozenset[Scope]:
        """The scopes its dependencies demand (`required_scope` on a dependency callable)."""
        return frozenset(_required_scopes(self.dependant))

    def url(self, values: Mapping[str, str]) -> str:
        return _PATH_PARAMETER.sub(lambda match: values[match.group(1)], self.path)


def _query_parameters(dependant: Dependant) -> set[str]:
    found = {parameter.name for parameter in dependant.query_params}
    for dependency in dependant.dependencies:
        found |= _query_parameters(dependency)
    return found


def _required_scopes(dependant: Dependant) -> set[Scope]:
    found: set[Scope] = set()
    scope = getattr(dependant.call, "required_scope", None)
    if scope is not None:
        found.add(Scope(scope))
    for dependency in dependant.dependencies:
        found |= _required_scopes(dependency)
    return found


def api_endpoints(app: FastAPI) -> list[Endpoint]:
    """Every method of every route under /v1, in path order.

    Since FastAPI 0.137 `app.routes` holds included routers as single lazy nodes, so the routes
    are read through `iter_route_contexts`, which expands them with their prefixes and
    router-level dependencies.
    """
    endpoints: list[Endpoint] = []
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        path = context.path
        if path is None or not (path == API_PREFIX or path.startswith(API_PREFIX + "/")):
            continue
        body_field = context.body_field
        body_model = body_field.field_info.annotation if body_field is not None else None
        if not (isinstance(body_model, type) and issubclass(body_model, BaseModel)):
            body_model = None
        takes_form = body_field is not None and isinstance(body_field.field_info, params.Form)
        endpoints.extend(
            Endpoint(
                method, path, context.dependant, body_field is not None, takes_form, body_model
            )
            for method in sorted(context.methods or ())
        )
    return sorted(endpoints, key=lambda endpoint: (endpoint.path, endpoint.method))


@cache
def routing_app() -> FastAPI:
    """An app that is never started (no lifespan, no connection), to read routes and OpenAPI
    from at collection time, before any fixture exists."""
    return create_app(settings_for("sqlite+aiosqlite:///:memory:"))


def scope_not_granting(required: frozenset[Scope]) -> Scope:
    """A scope other than admin that grants none of `required`."""
    for scope in Scope:
        if scope is not Scope.ADMIN and not any(
            grants(frozenset({scope}), needed) for needed in required
        ):
            return scope
    pytest.fail(f"Every non-admin scope grants one of {sorted(required)}; cannot test a 403.")


@dataclass
class WorkspaceClient:
    """A client acting in one workspace with an admin key; creates resources on demand."""

    http: httpx.AsyncClient
    headers: Mapping[str, str]
    _ids: dict[str, str] = field(default_factory=dict)

    async def create(self, path: str, payload: Payload) -> str:
        """POSTs `payload` to the collection at `path` and returns the new resource's id."""
        response = await self.http.post(path, headers=dict(self.headers), **payload)
        assert response.status_code in (201, 202), (
            f"POST {path}: {response.status_code} {response.text}"
        )
        return str(response.json()["id"])

    async def id_for(self, parameter: str) -> str:
        """An id of this workspace for the path parameter `parameter`, created once."""
        if parameter not in self._ids:
            factory = FACTORIES.get(parameter)
            if factory is None:
                pytest.fail(
                    f"No factory for the path parameter '{parameter}': add an async function "
                    f"that creates such a resource over the API to FACTORIES in {__name__}."
                )
            self._ids[parameter] = await factory(self)
        return self._ids[parameter]

    async def path_values(self, names: Iterable[str]) -> dict[str, str]:
        """Ids of this workspace for the path parameters `names`."""
        return {name: await self.id_for(name) for name in names}


Factory = Callable[[WorkspaceClient], Awaitable[str]]
BodyFactory = Callable[[WorkspaceClient], Awaitable[Payload]]


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def _json(make: Callable[[], Json]) -> BodyFactory:
    async def body(_workspace: WorkspaceClient) -> Payload:
        return {"json": make()}

    return body


async def _create(workspace: WorkspaceClient, path: str, model: type[BaseModel]) -> str:
    return await workspace.create(path, await MINIMAL_BODIES[model](workspace))


async def _merge_body(workspace: WorkspaceClient) -> Payload:
    # Another customer than the one in the path, of the same workspace.
    return {"json": {"other_id": await _create(workspace, "/v1/customers", CustomerCreate)}}


async def _interaction_body(workspace: WorkspaceClient) -> Payload:
    customer_id = await _create(workspace, "/v1/customers", CustomerCreate)
    return {"json": {"type": "note", "customer_id": customer_id, "body": "walk"}}


def _order_event() -> dict[str, Any]:
    return {
        "event_id": _unique("walk-event"),
        "type": "order.completed",
        "occurred_at": "2026-01-01T00:00:00Z",
        "customer": {"external_id": _unique("walk-customer")},
        "order": {
            "order_id": _unique("walk-order"),
            "currency": "JPY",
            "lines": [{"sku": "WALK", "quantity": 1, "unit_price": 100}],
        },
    }


async def _subject_body(workspace: WorkspaceClient) -> Payload:
    return {"json": {"subject_id": await workspace.id_for("customer_id")}}


def _workflow() -> dict[str, Any]:
    return {
        "name": _unique("workflow"),
        "trigger": {"event_type": "customer.created"},
        "actions": [{"type": "add_tag", "tag": "walk"}],
    }


async def _stage_move_body(workspace: WorkspaceClient) -> Payload:
    pipeline_id = await workspace.id_for("pipeline_id")
    other = await workspace.create(
        f"/v1/pipelines/{pipeline_id}/stages", {"json": {"name": "Walk", "probability": 5}}
    )
    return {"json": {"before": other}}


async def _members_body(workspace: WorkspaceClient) -> Payload:
    return {"json": {"customer_ids": [await _create(workspace, "/v1/customers", CustomerCreate)]}}


async def _import_upload(_workspace: WorkspaceClient) -> Payload:
    csv = b"display_name\nImport Walk\n"
    return {"files": {"file": ("customers.csv", csv, "text/csv")}, "data": {"object": "customers"}}


# Bodies that succeed in the given workspace, by request model, or by route ("POST /v1/x") for
# uploads and for models that do not say what their items are. A JSON model without required
# fields needs no entry: `{}` is sent.
_tier_ranks = itertools.count()


def _tier_body() -> Json:
    # Ranks are unique per workspace: each body takes the next one.
    return {
        "key": _unique("t"),
        "name": "Walk tier",
        "rank": next(_tier_ranks) % 1001,
        "filter": {"field": "tags", "op": "is_set"},
    }


MINIMAL_BODIES: dict[type[BaseModel] | str, BodyFactory] = {
    WorkspaceUpdate: _json(lambda: {"name": _unique("workspace")}),
    ApiKeyCreate: _json(lambda: {"name": "route walk", "scopes": [str(Scope.USERS_READ)]}),
    UserCreate: _json(
        lambda: {"name": "Route Walk", "email": f"{_unique('walk')}@example.com", "role": "sales"}
    ),
    UserUpdate: _json(lambda: {"name": "x"}),
    CustomerCreate: _json(lambda: {"display_name": "Route Walk"}),
    CustomerUpdate: _json(lambda: {"display_name": "x"}),
    CustomerMerge: _merge_body,
    "POST /v1/customers/batch": _json(lambda: {"items": [{"display_name": "Batch Walk"}]}),
    "POST /v1/imports": _import_upload,
    CompanyCreate: _json(lambda: {"name": "Route Walk KK"}),
    CompanyUpdate: _json(lambda: {"name": "x"}),
    FieldDefinitionCreate: _json(
        lambda: {"object": "customer", "key": _unique("walk"), "label": "Walk", "type": "text"}
    ),
    FieldDefinitionUpdate: _json(lambda: {"label": "x"}),
    InteractionCreate: _interaction_body,
    EventIn: _json(_order_event),
    PipelineCreate: _json(
        lambda: {"name": _unique("pipeline"), "stages": [{"name": "A", "probability": 10}]}
    ),
    PipelineUpdate: _json(lambda: {"name": _unique("pipeline")}),
    StageCreate: _json(lambda: {"name": "Walk stage", "probability": 30}),
    StageUpdate: _json(lambda: {"probability": 35}),
    StageMove: _stage_move_body,
    DealCreate: _json(lambda: {"name": "Walk deal", "amount": 1000}),
    WebhookCreate: _json(lambda: {"url": "http://127.0.0.1:9/walk", "event_types": ["customer.*"]}),
    WebhookUpdate: _json(lambda: {"description": "walk"}),
    DealUpdate: _json(lambda: {"amount": 2000}),
    "POST /v1/events/batch": _json(lambda: {"items": [_order_event()]}),
    InteractionUpdate: _json(lambda: {"subject": "x"}),
    WorkflowCreate: _json(_workflow),
    WorkflowUpdate: _json(lambda: {"name": _unique("workflow")}),
    DryRunRequest: _subject_body,
    RunRequest: _subject_body,
    SegmentCreate: _json(lambda: {"name": _unique("segment"), "kind": "static"}),
    SegmentPreviewRequest: _json(lambda: {"filter": {"field": "tags", "op": "is_set"}}),
    MemberChange: _members_body,
    TierCreate: _json(_tier_body),
    TierUpdate: _json(lambda: {"name": "Walk tier"}),
    ScoringRuleCreate: _json(
        lambda: {"name": _unique("rule"), "points": 5, "filter": {"field": "tags", "op": "is_set"}}
    ),
    ScoreThresholds: _json(lambda: {"thresholds": [50, 80]}),
}


def minimal_body_for(endpoint: Endpoint) -> BodyFactory | None:
    """How to make a valid body for `endpoint`; None when it takes none."""
    if not endpoint.takes_body:
        return None
    model = endpoint.body_model
    make = MINIMAL_BODIES.get(endpoint.label)
    if make is None and model is not None:
        make = MINIMAL_BODIES.get(model)
    if make is not None:
        return make
    if model is not None and not any(info.is_required() for info in model.model_fields.values()):
        return _json(dict)
    what = f"a {model.__name__} with required fields" if model else "a body"
    pytest.fail(
        f"{endpoint.label} takes {what}: add a valid minimal body for it (by model, or by route "
        f"when the model is shared or not a model) to MINIMAL_BODIES in {__name__}."
    )


async def minimal_body(endpoint: Endpoint, workspace: WorkspaceClient) -> Payload:
    """A body that succeeds for `endpoint` in `workspace` (nothing when it takes none)."""
    make = minimal_body_for(endpoint)
    return {} if make is None else await make(workspace)


async def _create_user(workspace: WorkspaceClient) -> str:
    return await _create(workspace, "/v1/users", UserCreate)


async def _create_api_key(workspace: WorkspaceClient) -> str:
    return await _create(workspace, "/v1/api-keys", ApiKeyCreate)


async def _create_customer(workspace: WorkspaceClient) -> str:
    return await _create(workspace, "/v1/customers", CustomerCreate)


async def _create_company(workspace: WorkspaceClient) -> str:
    return await _create(workspace, "/v1/companies", CompanyCreate)


async def _create_field(workspace: WorkspaceClient) -> str:
    return await _create(workspace, "/v1/fields", FieldDefinitionCreate)


async def _create_interaction(workspace: WorkspaceClient) -> str:
    return await _create(workspace, "/v1/interactions", InteractionCreate)


async def _create_order(workspace: WorkspaceClient) -> str:
    response = await workspace.http.post(
        "/v1/events", json=_order_event(), headers=dict(workspace.headers)
    )
    assert response.status_code == 201, response.text
    return str(response.json()["order_id"])


async def _create_pipeline(workspace: WorkspaceClient) -> str:
    return await _create(workspace, "/v1/pipelines", PipelineCreate)


async def _create_stage(workspace: WorkspaceClient) -> str:
    pipeline_id = await workspace.id_for("pipeline_id")
    return await _create(workspace, f"/v1/pipelines/{pipeline_id}/stages", StageCreate)


async def _create_deal(workspace: WorkspaceClient) -> str:
    return await _create(workspace, "/v1/deals", DealCreate)


async def _create_webhook(workspace: WorkspaceClient) -> str:
    return await _create(workspace, "/v1/webhooks", WebhookCreate)


async def _create_delivery(workspace: WorkspaceClient) -> str:
    webhook_id = await workspace.id_for("webhook_id")
    return await workspace.create(f"/v1/webhooks/{webhook_id}/test", {})


async def _create_segment(workspace: WorkspaceClient) -> str:
    return await _create(workspace, "/v1/segments", SegmentCreate)


async def _create_tier(workspace: WorkspaceClient) -> str:
    return await _create(workspace, "/v1/tiers", TierCreate)


async def _create_scoring_rule(workspace: WorkspaceClient) -> str:
    return await _create(workspace, "/v1/scoring-rules", ScoringRuleCreate)


async def _create_import(workspace: WorkspaceClient) -> str:
    return await workspace.create("/v1/imports", await _import_upload(workspace))


async def _create_workflow(workspace: WorkspaceClient) -> str:
    return await _create(workspace, "/v1/workflows", WorkflowCreate)


async def _create_run(workspace: WorkspaceClient) -> str:
    workflow_id = await workspace.id_for("workflow_id")
    return await workspace.create(
        f"/v1/workflows/{workflow_id}/runs", await _subject_body(workspace)
    )


# One factory per path parameter name; a factory may call `workspace.id_for` for a parent id.
FACTORIES: dict[str, Factory] = {
    "user_id": _create_user,
    "api_key_id": _create_api_key,
    "customer_id": _create_customer,
    "company_id": _create_company,
    "field_id": _create_field,
    "import_id": _create_import,
    "interaction_id": _create_interaction,
    "order_id": _create_order,
    "segment_id": _create_segment,
    "tier_id": _create_tier,
    "rule_id": _create_scoring_rule,
    "pipeline_id": _create_pipeline,
    "stage_id": _create_stage,
    "deal_id": _create_deal,
    "webhook_id": _create_webhook,
    "delivery_id": _create_delivery,
    "workflow_id": _create_workflow,
    "run_id": _create_run,
}
