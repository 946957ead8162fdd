"""Every /v1 route, found by walking the app: it needs a key (401), a scope (403, naming it), and
never reaches into another workspace (404 for a foreign id)."""

from typing import Any

import httpx
import pytest

from tests.api.route_walk import (
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
