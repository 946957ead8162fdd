"""Every /v1 route, found by walking the app: it needs a key (401), a scope (403, naming it), and
never reaches into another workspace (404 for a foreign id)."""

import base64
import json
import uuid
from typing import Any

import httpx
import orjson
import pytest

from tests.api.route_walk import (
    FACTORIES,
    Endpoint,
    Payload,
    WorkspaceClient,
    api_endpoints,
    minimal_body,
    routing_app,
    scope_not_granting,
)
from tests.conftest import Tenant

PROBLEM_MEDIA_TYPE = "application/problem+json"
ENDPOINTS = api_endpoints(routing_app())


def assert_problem(response: httpx.Response, status: int, context: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with `status`; returns its body."""
    media_type = response.headers.get("content-type", "").split(";", 1)[0].strip()
    assert (response.status_code, media_type) == (status, PROBLEM_MEDIA_TYPE), (
        f"{context}: expected {status} {PROBLEM_MEDIA_TYPE}, got {response.status_code} "
        f"{media_type or '(no content-type)'}: {response.text}"
    )
    body: dict[str, Any] = response.json()
    assert body.get("status") == status, f"{context}: problem body {body}"
    return body


def test_the_walk_finds_the_api() -> None:
    assert ENDPOINTS, "No /v1 route found: the route walk itself is broken."


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda endpoint: endpoint.label)
async def test_route_needs_key_scope_and_own_workspace(
    endpoint: Endpoint, client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    required = endpoint.required_scopes
    assert required, (
        f"{endpoint.label} requires no scope: authorise it with ReadUnit(scope) or "
        "WriteUnit(scope) from app.api.deps."
    )
    mine = WorkspaceClient(client, tenant.headers)
    theirs = WorkspaceClient(client, other_tenant.headers)
    own_url = endpoint.url(await mine.path_values(endpoint.path_parameters))
    foreign_url = endpoint.url(await theirs.path_values(endpoint.path_parameters))

    own_body = await minimal_body(endpoint, mine)

    async def send(url: str, body: Payload, headers: dict[str, str]) -> httpx.Response:
        return await client.request(endpoint.method, url, headers=headers, **body)

    missing = await send(own_url, own_body, {})
    assert_problem(missing, 401, "without Authorization")
    assert "www-authenticate" in missing.headers, "a 401 must say how to authenticate"
    unknown = await send(own_url, own_body, {"Authorization": "Bearer kky_not_a_key"})
    assert_problem(unknown, 401, "with an unknown key")

    lacking = scope_not_granting(required)
    forbidden = await send(own_url, own_body, await tenant.headers_with(lacking))
    problem = assert_problem(forbidden, 403, f"with a key holding only '{lacking}'")
    assert problem.get("required_scope") in {str(scope) for scope in required}, (
        f"the 403 should name the missing scope, one of {sorted(required)}: {problem}"
    )

    if not endpoint.path_parameters:
        return
    # The body too is valid in the owner's workspace, so only the ids can make this a 404.
    foreign_body = await minimal_body(endpoint, theirs)
    cross = await send(foreign_url, foreign_body, tenant.headers)
    assert_problem(cross, 404, "with another workspace's ids")
    owned = await send(foreign_url, foreign_body, other_tenant.headers)
    assert owned.is_success, (
        f"the owner's own call should succeed, or the 404 above proves nothing "
        f"(check the factory and MINIMAL_BODIES): {owned.status_code} {owned.text}"
    )


LIST_ENDPOINTS = [
    endpoint
    for endpoint in ENDPOINTS
    if endpoint.method == "GET" and "limit" in endpoint.query_parameters
]
# Body-taking routes, each with made-up ids in its path: a body is parsed before any lookup.
JSON_BODY_ENDPOINTS = [
    endpoint for endpoint in ENDPOINTS if endpoint.takes_body and not endpoint.takes_form
]
MAX_BODY_BYTES = 5 * 1024 * 1024


def _token(value: object) -> str:
    """A cursor token as the API encodes one (URL-safe base64 of JSON, unpadded)."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _cursor_parameter(endpoint: Endpoint) -> str | None:
    return next((name for name in ("cursor", "after") if name in endpoint.query_parameters), None)


def _assert_refused(response: httpx.Response, context: str) -> None:
    """A 4xx problem; never a server error, never the data."""
    media_type = response.headers.get("content-type", "").split(";", 1)[0].strip()
    refused = 400 <= response.status_code < 500 and media_type == PROBLEM_MEDIA_TYPE
    assert refused, (
        f"{context}: expected a 4xx problem, got {response.status_code} {media_type}: "
        f"{response.text[:300]}"
    )


# Stand-ins for each value of a genuine cursor's key: other types, numbers past any column,
# a time without a zone, nesting.
_FORGED_VALUES: list[object] = [
    2**63,
    -(2**63) - 1,
    10**40,
    1.5,
    True,
    "not-a-key",
    "2026-01-01T00:00:00",
    "00000000-0000-0000-0000-000000000000",
    [],
    {"$gt": ""},
]


def _forgeries(genuine: list[object] | None) -> list[tuple[str, str]]:
    """(label, token): cursors no page handed out, built from a genuine one's shape if any."""
    tokens = [
        ("not base64", "!!!"),
        ("NUL", "%00"),
        ("not JSON", base64.urlsafe_b64encode(b"{'sort'").decode()),
        ("an object", _token({"sort": "created_at"})),
        ("an empty list", _token([])),
        ("another kind", _token(["kind-nobody-uses", "x"])),
        ("a key without values", _token(["created_at"])),
        ("too long", "A" * 2000),
    ]
    tokens += [
        (f"created_at key {index}", _token(["created_at", value, value]))
        for index, value in enumerate(_FORGED_VALUES)
    ]
    if genuine:
        kind, *key = genuine
        tokens.append(("key cut short", _token([kind, *key[:-1]])))
        tokens.append(("key too long", _token([kind, *key, "extra"])))
        for position in range(len(key)):
            for index, value in enumerate(_FORGED_VALUES):
                forged = [*key]
                forged[position] = value
                tokens.append((f"value {position} as forgery {index}", _token([kind, *forged])))
    return tokens


async def _populate(workspace: WorkspaceClient) -> None:
    """Two of everything a factory makes, so that the lists have a second page."""
    for parameter, factory in FACTORIES.items():
        await workspace.id_for(parameter)
        await factory(workspace)
    # Timelines: two entries for the customer and the company whose timelines are walked.
    note = {
        "type": "note",
        "customer_id": await workspace.id_for("customer_id"),
        "company_id": await workspace.id_for("company_id"),
        "body": "walk",
    }
    for _ in range(2):
        await workspace.create("/v1/interactions", {"json": note})


async def test_every_list_bounds_limit_and_refuses_forged_and_foreign_cursors(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine = WorkspaceClient(client, tenant.headers)
    theirs = WorkspaceClient(client, other_tenant.headers)
    await _populate(mine)
    await _populate(theirs)
    failures: list[str] = []

    async def get(url: str, headers: dict[str, str], **query: str) -> httpx.Response:
        return await client.get(url, params=query, headers=headers)

    for endpoint in LIST_ENDPOINTS:
        url = endpoint.url(await mine.path_values(endpoint.path_parameters))
        first = await get(url, tenant.headers, limit="1")
        if first.status_code != 200:
            failures.append(f"{endpoint.label}: limit=1 answered {first.status_code}")
            continue
        for limit in ("0", "-1", "1000000", str(10**30), "ten", "1.5", ""):
            try:
                _assert_refused(await get(url, tenant.headers, limit=limit), f"limit={limit!r}")
            except AssertionError as error:
                failures.append(f"{endpoint.label}: {error}")
        cursor_name = _cursor_parameter(endpoint)
        if cursor_name is None:
            continue
        next_cursor = first.json().get("next_cursor")
        genuine = None
        if next_cursor:
            padded = next_cursor + "=" * (-len(next_cursor) % 4)
            genuine = orjson.loads(base64.urlsafe_b64decode(padded))
        for label, token in _forgeries(genuine):
            response = await get(url, tenant.headers, **{cursor_name: token})
            # A forgery of the right types is a position like any other: a page of our own.
            if response.status_code == 200:
                continue
            try:
                _assert_refused(response, f"{cursor_name} {label} ({token[:60]})")
            except AssertionError as error:
                failures.append(f"{endpoint.label}: {error}")
        if endpoint.path_parameters or not next_cursor:
            continue  # another workspace's path ids are already a 404 (the route walk)
        # Their cursor in our list: refused, or a page holding only our rows.
        own_ids = {
            item.get("id") for item in (await get(url, tenant.headers, limit="200")).json()["data"]
        }
        theirs_first = await get(url, other_tenant.headers, limit="1")
        foreign = theirs_first.json().get("next_cursor")
        if not foreign:
            continue
        crossed = await get(url, tenant.headers, **{cursor_name: foreign})
        if crossed.status_code == 200:
            leaked = {item.get("id") for item in crossed.json()["data"]} - own_ids
            if leaked:
                failures.append(f"{endpoint.label}: a foreign cursor showed {sorted(leaked)}")
        else:
            try:
                _assert_refused(crossed, "a foreign cursor")
            except AssertionError as error:
                failures.append(f"{endpoint.label}: {error}")
    assert not failures, "\n".join(failures)


def _deeply_nested(levels: int, *, in_object: bool) -> bytes:
    if in_object:
        return b'{"a":' * levels + b"1" + b"}" * levels
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize("endpoint", JSON_BODY_ENDPOINTS, ids=lambda endpoint: endpoint.label)
async def test_deeply_nested_and_oversized_bodies_are_refused(
    endpoint: Endpoint, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    url = endpoint.url({name: str(uuid.uuid4()) for name in endpoint.path_parameters})
    headers = {**tenant.headers, "Content-Type": "application/json"}
    for levels in (100, 5_000, 100_000):
        for in_object in (True, False):
            body = _deeply_nested(levels, in_object=in_object)
            response = await client.request(endpoint.method, url, content=body, headers=headers)
            context = f"{levels} levels of {'objects' if in_object else 'arrays'}"
            _assert_refused(response, context)
            assert response.status_code in (400, 404, 422), f"{context}: {response.status_code}"
    oversized = b'{"x": "' + b"x" * MAX_BODY_BYTES + b'"}'
    response = await client.request(endpoint.method, url, content=oversized, headers=headers)
    assert_problem(response, 413, "a body over 5 MiB")


async def test_another_workspaces_ids_in_filters_and_references_reach_nothing(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    """Their ids in our filters match none of their rows; in our references they are refused."""
    theirs = WorkspaceClient(client, other_tenant.headers)
    owner = await theirs.id_for("user_id")
    company = await theirs.id_for("company_id")
    customer = await theirs.create(
        "/v1/customers",
        {"json": {"display_name": "Theirs", "company_id": company, "owner_id": owner}},
    )
    segment = await theirs.create("/v1/segments", {"json": {"name": "theirs", "kind": "static"}})
    added = await client.post(
        f"/v1/segments/{segment}/members",
        json={"customer_ids": [customer]},
        headers=other_tenant.headers,
    )
    assert added.status_code == 200, added.text
    pipeline_id = await theirs.id_for("pipeline_id")
    pipeline = await client.get(f"/v1/pipelines/{pipeline_id}", headers=other_tenant.headers)
    stage = pipeline.json()["stages"][0]["id"]
    deal_body = {
        "name": "Theirs",
        "amount": 1,
        "customer_id": customer,
        "company_id": company,
        "pipeline_id": pipeline_id,
        "stage_id": stage,
    }
    deal = await theirs.create("/v1/deals", {"json": deal_body})
    # The owner sees their rows through the same filters, so an empty answer below means
    # the workspace boundary, not a filter that matches nothing anywhere.
    customer_filters = [
        {"field": "segments", "op": "contains", "value": segment},
        {"field": "segments", "op": "in", "value": [segment]},
        {"field": "company_id", "op": "eq", "value": company},
        {"field": "owner_id", "op": "in", "value": [owner]},
        {"field": "id", "op": "eq", "value": customer},
        {
            "any": [
                {"field": "id", "op": "eq", "value": customer},
                {"not": {"field": "tags", "op": "is_set"}},
            ]
        },
    ]
    deal_filters = [
        {"field": "customer_id", "op": "eq", "value": customer},
        {"field": "company_id", "op": "eq", "value": company},
        {"field": "pipeline_id", "op": "eq", "value": pipeline_id},
        {"field": "stage_id", "op": "eq", "value": stage},
        {"field": "id", "op": "eq", "value": deal},
    ]
    searches = [
        *(("/v1/customers/search", f, customer) for f in customer_filters),
        *(("/v1/deals/search", f, deal) for f in deal_filters),
        ("/v1/companies/search", {"field": "id", "op": "eq", "value": company}, company),
    ]
    for path, filter_, their_id in searches:
        owned = await client.post(path, json={"filter": filter_}, headers=other_tenant.headers)
        assert their_id in {item["id"] for item in owned.json()["data"]}, (path, filter_)
        crossed = await client.post(path, json={"filter": filter_}, headers=tenant.headers)
        assert crossed.status_code == 200, (path, filter_, crossed.text)
        assert crossed.json()["data"] == [], (path, filter_, crossed.text)
        if path == "/v1/customers/search":
            preview = await client.post(
                "/v1/segments/preview", json={"filter": filter_}, headers=tenant.headers
            )
            assert preview.json()["count"] == 0, (filter_, preview.text)

    queries = [
        f"/v1/customers?company_id={company}",
        f"/v1/customers?owner_id={owner}",
        f"/v1/deals?customer_id={customer}",
        f"/v1/deals?pipeline_id={pipeline_id}",
        f"/v1/deals?stage_id={stage}",
        f"/v1/interactions?customer_id={customer}",
        f"/v1/orders?customer_id={customer}",
        f"/v1/audit-log?subject_id={customer}",
        f"/v1/insights/ltv?segment_id={segment}",
        f"/v1/insights/churn-risk?segment_id={segment}",
        f"/v1/insights/products?segment_id={segment}",
    ]
    for query in queries:
        crossed = await client.get(query, headers=tenant.headers)
        if crossed.status_code == 200:
            assert not crossed.json().get("data"), (query, crossed.text)
        else:
            _assert_refused(crossed, query)

    # References in definitions: a workflow may not name their users, segments or filters'
    # ids as ours (the other references are in test_workflows).
    mine = WorkspaceClient(client, tenant.headers)
    references = [
        [{"type": "assign_owner", "round_robin": [owner]}],
        [{"type": "create_task", "title": "Call", "assignee_id": owner}],
    ]
    for actions in references:
        workflow = {
            "name": f"cross-{uuid.uuid4().hex[:8]}",
            "trigger": {"event_type": "customer.created"},
            "actions": actions,
        }
        refused = await client.post("/v1/workflows", json=workflow, headers=tenant.headers)
        assert refused.status_code == 422, (actions, refused.text)
        assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
    # A dynamic segment or a workflow condition over their segment matches none of ours.
    ours = await mine.id_for("customer_id")
    dynamic = await mine.create(
        "/v1/segments",
        {
            "json": {
                "name": f"cross-{uuid.uuid4().hex[:8]}",
                "kind": "dynamic",
                "filter": {"field": "segments", "op": "contains", "value": segment},
            }
        },
    )
    members = await client.get(f"/v1/segments/{dynamic}/customers", headers=tenant.headers)
    assert members.json()["data"] == []
    conditional = await mine.create(
        "/v1/workflows",
        {
            "json": {
                "name": f"cross-{uuid.uuid4().hex[:8]}",
                "trigger": {"event_type": "customer.created"},
                "conditions": {"field": "segments", "op": "contains", "value": segment},
                "actions": [{"type": "add_tag", "tag": "crossed"}],
            }
        },
    )
    dry_run = await client.post(
        f"/v1/workflows/{conditional}/dry-run", json={"subject_id": ours}, headers=tenant.headers
    )
    assert dry_run.status_code == 200, dry_run.text
    assert dry_run.json()["matched"] is False
    # And their customer as a subject is not found.
    foreign_subject = await client.post(
        f"/v1/workflows/{conditional}/dry-run",
        json={"subject_id": customer},
        headers=tenant.headers,
    )
    _assert_refused(foreign_subject, "their customer as a dry-run subject")
