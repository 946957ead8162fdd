"""Property-based checks of the whole API against its own OpenAPI document, with Schemathesis.

Cases (valid and invalid) are generated from the schema and sent in-process through the test
client, on the test event loop, where the app's pooled connections live; Schemathesis judges each
response: no server error; status code, content type, headers and body as documented; invalid
input rejected. Every request carries an admin key of a workspace of the test's own.
"""

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode, Response
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.db.session import Database
from tests.api.route_walk import FACTORIES, WorkspaceClient, path_parameters, routing_app
from tests.conftest import Tenant, make_tenant

T = TypeVar("T")

HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
# Some 20-45 s per database for the API so far; raise it for a deeper run (say, nightly).
EXAMPLES_PER_OPERATION = int(os.environ.get("KOKYAKU_TEST_EXAMPLES", "30"))
STATEFUL_SCENARIOS = EXAMPLES_PER_OPERATION

CONFIG = schemathesis.Config.from_dict(
    {
        # The key is ours to send; generated Authorization headers would only earn 401s.
        "generation": {"with-security-parameters": False},
    }
)
OPENAPI = routing_app().openapi()
SCHEMA = schemathesis.openapi.from_dict(OPENAPI, config=CONFIG)
OPERATIONS = [
    SCHEMA[path][method.upper()]
    for path, item in OPENAPI["paths"].items()
    for method in item
    if method in HTTP_METHODS
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
HYPOTHESIS_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        # One workspace per operation, shared by its examples, is intended.
        HealthCheck.function_scoped_fixture,
    ],
)


async def send(
    client: httpx.AsyncClient, case: Case[Any], headers: dict[str, str]
) -> httpx.Response:
    """Sends `case` through `client` exactly as Schemathesis would put it on the wire."""
    kwargs: dict[str, Any] = case.as_transport_kwargs(
        base_url=str(client.base_url), headers=headers
    )
    wire = requests.Request(
        method=kwargs["method"],
        url=kwargs["url"],
        headers=kwargs["headers"],
        params=kwargs.get("params"),
        cookies=kwargs.get("cookies"),
        json=kwargs.get("json"),
        data=kwargs.get("data"),
        files=kwargs.get("files"),
    ).prepare()
    assert wire.method is not None
    assert wire.url is not None
    assert wire.body is None or isinstance(wire.body, bytes | str)
    # Header values may be Latin-1, which `requests` sends as is and httpx only takes as bytes.
    raw_headers = [
        (name.encode("latin-1"), value.encode("latin-1") if isinstance(value, str) else value)
        for name, value in wire.headers.items()
    ]
    return await client.request(wire.method, wire.url, headers=raw_headers, content=wire.body)


def test_schema_lists_operations() -> None:
    assert OPERATIONS, "The OpenAPI document lists no operation."


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
@HYPOTHESIS_SETTINGS
@given(data=st.data())
async def test_operation_conforms_to_schema(
    operation: APIOperation[Any, Any, Any, Any],
    data: st.DataObject,
    client: httpx.AsyncClient,
    tenant: Tenant,
) -> None:
    names = path_parameters(operation.path)
    # A missing factory fails test_route_security; here it only leaves the ids random.
    can_create = all(name in FACTORIES for name in names)
    if names and can_create and data.draw(st.booleans(), label="with ids of existing resources"):
        # Random ids only ever meet 404; half the cases act on resources that exist.
        ids = await WorkspaceClient(client, tenant.headers).path_values(names)
        strategy = operation.as_strategy(GenerationMode.POSITIVE, path_parameters=ids)
    else:
        strategy = st.one_of([operation.as_strategy(mode) for mode in GenerationMode])
    case = data.draw(strategy, label="case")
    response = await send(client, case, tenant.headers)
    case.validate_response(response, checks=CHECKS)


async def test_linked_operations_conform_to_schema(
    client: httpx.AsyncClient, database: Database
) -> None:
    """Sequences along the links Schemathesis infers (create a user, then read, update or delete
    it), judged by the same checks; each scenario starts in a new workspace, since a scenario may
    revoke the very key it uses.

    Hypothesis drives the state machine synchronously, so it runs in a worker thread and hands
    each request back to this event loop, where the app's connections live.
    """
    loop = asyncio.get_running_loop()

    def on_loop(work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, loop).result()

    class Workflow(SCHEMA.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            self.headers = on_loop(make_tenant(database)).headers

        def call(self, case: Case[Any], **kwargs: Any) -> Response:
            return Response.from_any(on_loop(send(client, case, self.headers)))

        def validate_response(
            self, response: Response, case: Case[Any], additional_checks: Any = None, **kwargs: Any
        ) -> None:
            case.validate_response(response, checks=CHECKS, recorder=self.recorder)

    stateful_settings = settings(
        HYPOTHESIS_SETTINGS, max_examples=STATEFUL_SCENARIOS, stateful_step_count=10
    )
    await asyncio.to_thread(Workflow.run, settings=stateful_settings)
