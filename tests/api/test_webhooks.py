"""Webhooks end to end: a real receiver, signatures checked with the standardwebhooks library."""

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import update
from standardwebhooks.webhooks import Webhook

from app.core.clock import utcnow
from app.db import migrations
from app.domain.webhook.dispatcher import Dispatcher
from app.domain.webhook.entities import WebhookDelivery
from app.main import create_app
from tests.api.factories import make_customer, read_feed
from tests.api.receiver import Receiver, running_receiver
from tests.api.test_conventions import client_for
from tests.conftest import Tenant, free_port, make_tenant, settings_for

FAST = (0, 0.05, 0.05, 0.05)


async def subscribe(client: AsyncClient, tenant: Tenant, url: str, **fields: Any) -> dict[str, Any]:
    body = {"url": url, "event_types": ["customer.*"], **fields}
    response = await client.post("/v1/webhooks", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def drain(dispatcher: Dispatcher, done: Callable[[], bool], seconds: float = 10) -> None:
    """Runs the dispatcher until `done()` or the time is up."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not done() and asyncio.get_running_loop().time() < deadline:
        await dispatcher.run_once()
        await asyncio.sleep(0.02)


@pytest.fixture
async def dispatcher(tenant: Tenant) -> Dispatcher:
    ready = Dispatcher(tenant.database.writer, allow_private=True, schedule=FAST, timeout=2)
    await ready.fan_out()  # starts the shared outbox cursor before the test's events
    return ready


def verified(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    return [
        Webhook(secret).verify(request.body, request.headers)  # type: ignore[no-untyped-call]
        for request in receiver.requests
    ]


async def test_deliveries_are_signed_per_standard_webhooks(
    client: AsyncClient, tenant: Tenant, dispatcher: Dispatcher
) -> None:
    async with running_receiver() as receiver:
        endpoint = await subscribe(client, tenant, receiver.url, headers={"X-Shop": "tokyo"})
        assert endpoint["secret"].startswith("whsec_")
        customer = await make_customer(client, tenant, family_name="配信")
        await drain(dispatcher, lambda: len(receiver.requests) == 1)
    [payload] = verified(receiver, endpoint["secret"])
    assert payload["type"] == "customer.created"
    assert payload["data"]["id"] == customer["id"]
    request = receiver.requests[0]
    assert request.headers["webhook-id"] == payload["id"]
    assert request.headers["x-shop"] == "tokyo"
    assert json.loads(request.body) == payload
    log = await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=tenant.headers)
    [delivery] = log.json()["data"]
    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 1)
    detail = await client.get(
        f"/v1/webhooks/{endpoint['id']}/deliveries/{delivery['id']}", headers=tenant.headers
    )
    attempt = detail.json()["attempts_log"][0]
    assert attempt["status_code"] == 200
    assert "webhook-signature" not in attempt["request_headers"]
    shown = await client.get(f"/v1/webhooks/{endpoint['id']}", headers=tenant.headers)
    assert "secret" not in shown.json()


async def test_failures_are_retried_with_the_same_webhook_id(
    client: AsyncClient, tenant: Tenant, dispatcher: Dispatcher
) -> None:
    async with running_receiver(500, 503) as receiver:
        endpoint = await subscribe(client, tenant, receiver.url)
        await make_customer(client, tenant)
        await drain(dispatcher, lambda: len(receiver.requests) == 3)
    assert len({request.headers["webhook-id"] for request in receiver.requests}) == 1
    assert len(verified(receiver, endpoint["secret"])) == 3
    log = await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=tenant.headers)
    assert log.json()["data"][0]["status"] == "succeeded"
    assert log.json()["data"][0]["attempts"] == 3


async def test_an_endpoint_is_failing_from_its_first_failure_until_a_success(
    client: AsyncClient, tenant: Tenant
) -> None:
    slow = Dispatcher(tenant.database.writer, allow_private=True, schedule=(0, 0.3), timeout=2)
    await slow.fan_out()
    async with running_receiver(503) as receiver:
        endpoint = await subscribe(client, tenant, receiver.url)
        path = f"/v1/webhooks/{endpoint['id']}"
        await make_customer(client, tenant)
        await drain(slow, lambda: len(receiver.requests) == 1)
        failing = (await client.get(path, headers=tenant.headers)).json()
        assert failing["failing_since"] is not None
        assert failing["version"] == endpoint["version"] + 1  # an ETag sees the change
        await drain(slow, lambda: len(receiver.requests) == 2)
    healthy = (await client.get(path, headers=tenant.headers)).json()
    assert healthy["failing_since"] is None
    assert healthy["version"] == endpoint["version"] + 2


async def test_a_4xx_is_final_and_exhaustion_is_announced(
    client: AsyncClient, tenant: Tenant, dispatcher: Dispatcher
) -> None:
    async with running_receiver(400) as rejecting:
        endpoint = await subscribe(client, tenant, rejecting.url)
        await make_customer(client, tenant)
        await drain(dispatcher, lambda: len(rejecting.requests) == 1)
        await drain(dispatcher, lambda: False, seconds=0.3)
    assert len(rejecting.requests) == 1  # not retried
    failed = await read_feed(client, tenant, prefix="webhook.delivery_failed")
    assert failed[0]["data"]["last_status_code"] == 400
    enabled = await client.get(f"/v1/webhooks/{endpoint['id']}", headers=tenant.headers)
    assert enabled.json()["enabled"] is True


async def test_410_disables_the_endpoint(
    client: AsyncClient, tenant: Tenant, dispatcher: Dispatcher
) -> None:
    async with running_receiver(410) as gone:
        endpoint = await subscribe(client, tenant, gone.url)
        await make_customer(client, tenant)
        await drain(dispatcher, lambda: len(gone.requests) == 1)
        await drain(dispatcher, lambda: False, seconds=0.2)
    shown = await client.get(f"/v1/webhooks/{endpoint['id']}", headers=tenant.headers)
    assert shown.json()["enabled"] is False
    assert "410" in shown.json()["disabled_reason"]
    disabled = await read_feed(client, tenant, prefix="webhook.endpoint_disabled")
    assert disabled[0]["data"]["id"] == endpoint["id"]


async def test_an_ordered_endpoint_gets_events_in_order_despite_retries(
    client: AsyncClient, tenant: Tenant, dispatcher: Dispatcher
) -> None:
    async with running_receiver(500, 500) as receiver:
        endpoint = await subscribe(client, tenant, receiver.url)
        for name in ("一", "二", "三"):
            await make_customer(client, tenant, family_name=name)
        await drain(dispatcher, lambda: len(receiver.requests) == 5)
    payloads = verified(receiver, endpoint["secret"])
    names = [payload["data"]["family_name"] for payload in payloads]
    assert names == ["一", "一", "一", "二", "三"]


async def _as_if_retries_were_due(tenant: Tenant) -> None:
    """Time passes: every delivery waiting for its next attempt may go now."""
    async with tenant.database.writer() as session, session.begin():
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.workspace_id == tenant.id, WebhookDelivery.status != "succeeded")
            .values(next_attempt_at=utcnow())
        )


async def test_a_receiver_down_for_an_hour_gets_every_event_afterwards_in_order(
    client: AsyncClient, tenant: Tenant
) -> None:
    # The real retry schedule: within an hour a delivery is tried at 0 s, 5 s, 5 min and 30 min.
    dispatcher = Dispatcher(tenant.database.writer, allow_private=True, timeout=2)
    await dispatcher.fan_out()
    port = free_port()
    endpoint = await subscribe(client, tenant, f"http://127.0.0.1:{port}/hooks")
    names = ["一", "二", "三", "四", "五"]
    for name in names:
        await make_customer(client, tenant, family_name=name)
    for _ in range(4):  # the attempts that fall inside the hour, against a closed port
        await _as_if_retries_were_due(tenant)
        await drain(dispatcher, lambda: False, seconds=0.3)
    log = await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=tenant.headers)
    assert {d["status"] for d in log.json()["data"]} == {"pending"}
    async with running_receiver(port=port) as receiver:
        await _as_if_retries_were_due(tenant)  # the attempt due after the hour
        await drain(dispatcher, lambda: len(receiver.requests) == len(names))
    payloads = verified(receiver, endpoint["secret"])
    assert [payload["data"]["family_name"] for payload in payloads] == names
    log = await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=tenant.headers)
    assert {d["status"] for d in log.json()["data"]} == {"succeeded"}
    first = min(log.json()["data"], key=lambda delivery: delivery["created_at"])
    assert first["attempts"] == 5  # the later events waited behind it, as ordering requires


async def test_endpoints_made_before_any_dispatcher_ran_get_their_events(
    unmigrated_database_url: str,
) -> None:
    """The app served with its dispatcher off, workers started later: nothing is skipped."""
    await asyncio.to_thread(migrations.upgrade, unmigrated_database_url)
    app = create_app(settings_for(unmigrated_database_url))
    async with client_for(app) as http, running_receiver() as receiver:
        tenant = await make_tenant(app.state.database)
        endpoint = await subscribe(http, tenant, receiver.url)
        customer = await make_customer(http, tenant, family_name="先行")
        late = Dispatcher(tenant.database.writer, allow_private=True, schedule=FAST, timeout=2)
        await drain(late, lambda: len(receiver.requests) == 1)
    [payload] = verified(receiver, endpoint["secret"])
    assert payload["data"]["id"] == customer["id"]


async def test_changed_field_filters(
    client: AsyncClient, tenant: Tenant, dispatcher: Dispatcher
) -> None:
    async with running_receiver() as receiver:
        endpoint = await subscribe(
            client,
            tenant,
            receiver.url,
            event_types=["customer.updated"],
            changed_fields=["lifecycle_stage"],
        )
        customer = await make_customer(client, tenant)
        path = f"/v1/customers/{customer['id']}"
        await client.patch(path, json={"tags": ["x"]}, headers=tenant.headers)
        await client.patch(path, json={"lifecycle_stage": "vip"}, headers=tenant.headers)
        await drain(dispatcher, lambda: len(receiver.requests) == 1)
        await drain(dispatcher, lambda: False, seconds=0.2)
    [payload] = verified(receiver, endpoint["secret"])
    assert payload["changes"] == {"lifecycle_stage": {"old": None, "new": "vip"}}


async def test_rotation_signs_with_old_and_new(
    client: AsyncClient, tenant: Tenant, dispatcher: Dispatcher
) -> None:
    async with running_receiver() as receiver:
        endpoint = await subscribe(client, tenant, receiver.url)
        rotated = await client.post(
            f"/v1/webhooks/{endpoint['id']}/rotate-secret", headers=tenant.headers
        )
        new_secret = rotated.json()["secret"]
        assert new_secret != endpoint["secret"]
        await make_customer(client, tenant)
        await drain(dispatcher, lambda: len(receiver.requests) == 1)
    assert len(receiver.requests[0].headers["webhook-signature"].split(" ")) == 2
    assert verified(receiver, endpoint["secret"]) == verified(receiver, new_secret)


async def test_ping_and_redeliver(
    client: AsyncClient, tenant: Tenant, dispatcher: Dispatcher
) -> None:
    async with running_receiver() as receiver:
        endpoint = await subscribe(client, tenant, receiver.url)
        ping = await client.post(f"/v1/webhooks/{endpoint['id']}/test", headers=tenant.headers)
        assert ping.status_code == 202
        await drain(dispatcher, lambda: len(receiver.requests) == 1)
        again = await client.post(
            f"/v1/webhooks/{endpoint['id']}/deliveries/{ping.json()['id']}/redeliver",
            headers=tenant.headers,
        )
        assert again.status_code == 202
        await drain(dispatcher, lambda: len(receiver.requests) == 2)
    payloads = verified(receiver, endpoint["secret"])
    assert [payload["type"] for payload in payloads] == ["webhook.ping", "webhook.ping"]
    assert payloads[0]["id"] == payloads[1]["id"]


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest",
        "https://[::1]/hook",
        "https://2130706433/hook",
        "https://0x7f.1/hook",
        "https://user:pass@example.com/hook",
        "ftp://example.com/hook",
    ],
)
async def test_unsafe_targets_are_refused(database_url: str, tenant: Tenant, url: str) -> None:
    app = create_app(settings_for(database_url, webhook_allow_private=False))
    async with client_for(app) as http:
        response = await http.post(
            "/v1/webhooks", json={"url": url, "event_types": ["*"]}, headers=tenant.headers
        )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_custom_headers_cannot_inject(client: AsyncClient, tenant: Tenant) -> None:
    for headers in ({"X-A": "ok\r\nX-Injected: 1"}, {"Bad Name": "v"}, {"webhook-id": "x"}):
        response = await client.post(
            "/v1/webhooks",
            json={"url": "http://127.0.0.1:9/h", "event_types": ["*"], "headers": headers},
            headers=tenant.headers,
        )
        assert response.status_code == 422, headers


async def test_replay_of_a_time_range(
    client: AsyncClient, tenant: Tenant, dispatcher: Dispatcher
) -> None:
    async with running_receiver() as receiver:
        endpoint = await subscribe(client, tenant, receiver.url)
        await make_customer(client, tenant)
        await make_customer(client, tenant)
        await drain(dispatcher, lambda: len(receiver.requests) == 2)
        replay = await client.post(
            f"/v1/webhooks/{endpoint['id']}/replay",
            params={"from": "2020-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"},
            headers=tenant.headers,
        )
        assert replay.json() == {"queued": 2}
        await drain(dispatcher, lambda: len(receiver.requests) == 4)
    ids = [request.headers["webhook-id"] for request in receiver.requests]
    assert ids[:2] == ids[2:]


async def test_erase_scrubs_webhook_payloads(
    client: AsyncClient, tenant: Tenant, dispatcher: Dispatcher
) -> None:
    async with running_receiver(500) as receiver:
        endpoint = await subscribe(client, tenant, receiver.url)
        customer = await make_customer(client, tenant, emails=["forget-me@example.jp"])
        await drain(dispatcher, lambda: len(receiver.requests) == 1)  # the retry is pending
        erased = await client.delete(
            f"/v1/customers/{customer['id']}?erase=true", headers=tenant.headers
        )
        assert erased.status_code == 204
        log = await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=tenant.headers)
        for delivery in log.json()["data"]:
            detail = await client.get(
                f"/v1/webhooks/{endpoint['id']}/deliveries/{delivery['id']}",
                headers=tenant.headers,
            )
            assert "forget-me" not in detail.text
        await drain(dispatcher, lambda: len(receiver.requests) == 3)
    later = verified(receiver, endpoint["secret"])[1:]
    assert all("forget-me" not in json.dumps(payload) for payload in later)
    assert {payload["type"] for payload in later} == {"customer.created", "customer.deleted"}
