"""Workflows end to end: triggers and conditions, every action kind, durable waits, retries,
the loop guard, dry-runs, schedules and references checked within the workspace."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook

from app.core.clock import utcnow
from app.domain.interaction.service import announce_due_tasks
from app.domain.outbox.entities import DomainEvent
from app.domain.segment.worker import SegmentWorker
from app.domain.webhook.dispatcher import Dispatcher
from app.domain.webhook.entities import DispatcherCursor
from app.domain.workflow.engine import CURSOR as ENGINE_CURSOR
from app.domain.workflow.engine import WorkflowEngine
from app.domain.workflow.entities import Workflow, WorkflowRun
from app.main import create_app
from tests.api.factories import make_customer, make_field, make_user, post_created, read_feed
from tests.api.receiver import running_receiver
from tests.api.test_pipelines import make_deal, make_pipeline, stage_id
from tests.conftest import Tenant, settings_for

FAST = (0.05, 0.05)


@pytest.fixture
async def engine(tenant: Tenant) -> WorkflowEngine:
    ready = WorkflowEngine(tenant.database.writer, retry_schedule=FAST)
    await ready.match_events()  # starts the shared cursor before the test's events
    return ready


async def drain(
    engine: WorkflowEngine, done: Callable[[], Awaitable[bool]], seconds: float = 60
) -> None:
    """Runs the engine until `done()` or the time is up. On PostgreSQL the engine, like every
    outbox reader, waits while an older transaction anywhere on the server is still open."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        await engine.run_once()
        if await done():
            return
        await asyncio.sleep(0.02)


async def settle(engine: WorkflowEngine, seconds: float = 0.3) -> None:
    """Runs the engine a while longer, for what should not happen."""

    async def never() -> bool:
        return False

    await drain(engine, never, seconds)


async def handled(engine: WorkflowEngine, tenant: Tenant) -> None:
    """Runs the engine until it has read the workspace's latest event."""
    async with tenant.database.reader() as session:
        latest = (
            await session.execute(
                select(DomainEvent.transaction_id, DomainEvent.position)
                .where(DomainEvent.workspace_id == tenant.id)
                .order_by(DomainEvent.transaction_id.desc(), DomainEvent.position.desc())
                .limit(1)
            )
        ).one()

    async def read() -> bool:
        async with tenant.database.reader() as session:
            cursor = await session.get(DispatcherCursor, ENGINE_CURSOR)
            assert cursor is not None
            return (cursor.transaction_id, cursor.position) >= tuple(latest)

    await drain(engine, read)
    assert await read()


async def create_workflow(client: AsyncClient, tenant: Tenant, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "テスト")
    return await post_created(client, tenant, "/v1/workflows", body)


async def runs_of(client: AsyncClient, tenant: Tenant, workflow: dict[str, Any]) -> list[Any]:
    response = await client.get(
        f"/v1/workflows/{workflow['id']}/runs?limit=200", headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    data: list[Any] = response.json()["data"]
    return data


def finished(
    client: AsyncClient, tenant: Tenant, workflow: dict[str, Any], count: int = 1
) -> Callable[[], Awaitable[bool]]:
    """Whether `count` runs of the workflow have ended."""

    async def check() -> bool:
        runs = await runs_of(client, tenant, workflow)
        done = [run for run in runs if run["status"] in ("succeeded", "failed")]
        return len(done) >= count

    return check


async def get_customer(client: AsyncClient, tenant: Tenant, customer_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/customers/{customer_id}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    customer: dict[str, Any] = response.json()
    return customer


def order_event(external_id: str, total: int) -> dict[str, Any]:
    return {
        "event_id": f"ord-{uuid.uuid4().hex[:10]}",
        "type": "order.completed",
        "occurred_at": "2026-11-20T10:00:00+09:00",
        "customer": {"external_id": external_id, "source": "shop"},
        "order": {
            "order_id": uuid.uuid4().hex[:10],
            "currency": "JPY",
            "lines": [{"sku": "TEA-01", "quantity": 1, "unit_price": total}],
            "total": total,
        },
    }


async def test_conditions_decide_and_actions_change_the_customer(
    client: AsyncClient, tenant: Tenant, engine: WorkflowEngine
) -> None:
    workflow = await create_workflow(
        client,
        tenant,
        name="2回目購入でVIP",
        trigger={"event_type": "order.completed"},
        conditions={"field": "metrics.order_count", "op": "gte", "value": 2},
        actions=[
            {"type": "add_tag", "tag": "vip"},
            {"type": "set_lifecycle_stage", "stage": "vip"},
        ],
    )
    assert workflow["enabled"] is True
    assert workflow["trigger"] == {"event_type": "order.completed"}
    first = await client.post("/v1/events", json=order_event("u-1", 1200), headers=tenant.headers)
    assert first.status_code == 201, first.text
    customer_id = first.json()["customer_id"]
    # Conditions hold on the customer as it is when the event is handled.
    await handled(engine, tenant)
    assert await runs_of(client, tenant, workflow) == []
    second = await client.post("/v1/events", json=order_event("u-1", 800), headers=tenant.headers)
    assert second.status_code == 201, second.text
    await drain(engine, finished(client, tenant, workflow))
    await handled(engine, tenant)
    [run] = await runs_of(client, tenant, workflow)  # the first order did not match
    assert run["status"] == "succeeded"
    assert (run["subject_type"], run["subject_id"]) == ("customer", customer_id)
    orders = await read_feed(client, tenant, prefix="order.completed", at_least=2)
    assert run["event_id"] == orders[1]["id"]
    assert [(step["type"], step["status"]) for step in run["steps"]] == [
        ("add_tag", "succeeded"),
        ("set_lifecycle_stage", "succeeded"),
    ]
    customer = await get_customer(client, tenant, customer_id)
    assert "vip" in customer["tags"]
    assert customer["lifecycle_stage"] == "vip"
    # The actions emitted their usual events, marked as the workflow's.
    updates = await read_feed(client, tenant, prefix="customer.updated", at_least=2)
    assert {"tags", "lifecycle_stage"} <= {name for u in updates for name in u["changes"]}
    audit = await client.get(
        f"/v1/audit-log?subject_id={customer_id}&event_type=customer.updated",
        headers=tenant.headers,
    )
    kinds = [entry["actor_kind"] for entry in audit.json()["data"]]
    assert kinds.count("workflow") == 2  # beside the order's own updates of the metrics


async def test_every_customer_action(
    client: AsyncClient, tenant: Tenant, engine: WorkflowEngine
) -> None:
    owner = await make_user(client, tenant)
    assignee = await make_user(client, tenant, name="田中 一郎")
    await make_field(client, tenant, key="source_store", type="enum", options=["ginza", "umeda"])
    await create_workflow(
        client,
        tenant,
        trigger={"event_type": "customer.created"},
        conditions={"field": "tags", "op": "contains", "value": "new"},
        actions=[
            {"type": "add_tag", "tag": "welcomed"},
            {"type": "remove_tag", "tag": "new"},
            {"type": "set_field", "key": "source_store", "value": "ginza"},
            {"type": "set_lifecycle_stage", "stage": "prospect"},
            {"type": "assign_owner", "user_id": owner["id"]},
            {
                "type": "create_task",
                "title": "お礼の電話",
                "assignee_id": assignee["id"],
                "due_in": "2d",
            },
            {"type": "create_interaction", "body": "ワークフローで登録", "subject": "自動"},
        ],
    )
    skipped = await make_customer(client, tenant, tags=["other"])
    customer = await make_customer(client, tenant, tags=["new"])
    before = utcnow()

    async def acted() -> bool:
        return "welcomed" in (await get_customer(client, tenant, customer["id"]))["tags"] and (
            (await get_customer(client, tenant, customer["id"]))["owner_id"] is not None
        )

    workflow = (await client.get("/v1/workflows", headers=tenant.headers)).json()["data"][0]
    await drain(engine, finished(client, tenant, workflow))
    [run] = await runs_of(client, tenant, workflow)
    assert run["status"] == "succeeded", run
    assert await acted()
    changed = await get_customer(client, tenant, customer["id"])
    assert changed["tags"] == ["welcomed"]
    assert changed["attributes"]["source_store"] == "ginza"
    assert changed["lifecycle_stage"] == "prospect"
    assert changed["owner_id"] == owner["id"]
    untouched = await get_customer(client, tenant, skipped["id"])
    assert untouched["tags"] == ["other"]
    assert untouched["owner_id"] is None
    listed = await client.get(
        f"/v1/interactions?customer_id={customer['id']}", headers=tenant.headers
    )
    by_type = {item["type"]: item for item in listed.json()["data"]}
    task, note = by_type["task"], by_type["note"]
    assert (task["subject"], task["assignee_id"], task["status"]) == (
        "お礼の電話",
        assignee["id"],
        "open",
    )
    due = datetime.fromisoformat(task["due_at"])
    assert before + timedelta(days=2) - timedelta(minutes=1) < due
    assert due < utcnow() + timedelta(days=2, minutes=1)
    assert (note["body"], note["subject"]) == ("ワークフローで登録", "自動")
    steps = run["steps"]
    assert [step["index"] for step in steps] == list(range(7))
    assert steps[5]["result"]["interaction_id"] == task["id"]


async def test_round_robin_owner_and_deal_actions(
    client: AsyncClient, tenant: Tenant, engine: WorkflowEngine
) -> None:
    first, second = await make_user(client, tenant), await make_user(client, tenant)
    pipeline = await make_pipeline(client, tenant)
    workflow = await create_workflow(
        client,
        tenant,
        trigger={"event_type": "deal.created"},
        conditions={"field": "amount", "op": "gte", "value": 100000},
        actions=[
            {"type": "assign_owner", "round_robin": [first["id"], second["id"]]},
            {"type": "move_deal_stage", "stage_id": stage_id(pipeline, "提案")},
            {"type": "create_task", "title": "見積もり送付", "due_in": "4h"},
            {"type": "add_tag", "tag": "big-deal"},
        ],
    )
    customer = await make_customer(client, tenant)
    deals = [
        await make_deal(
            client, tenant, pipeline, "リード", amount=amount, customer_id=customer["id"]
        )
        for amount in (500000, 200000, 300000, 1000)
    ]
    await drain(engine, finished(client, tenant, workflow, 3))
    await handled(engine, tenant)
    runs = await runs_of(client, tenant, workflow)
    assert len(runs) == 3
    assert {run["status"] for run in runs} == {"succeeded"}, runs[0]["error"]
    owners = []
    for deal in deals:
        shown = (await client.get(f"/v1/deals/{deal['id']}", headers=tenant.headers)).json()
        owners.append(shown["owner_id"])
        expected = "提案" if deal["amount"] >= 100000 else "リード"
        assert shown["stage_id"] == stage_id(pipeline, expected)
    assert owners == [first["id"], second["id"], first["id"], None]
    history = await client.get(f"/v1/deals/{deals[0]['id']}/history", headers=tenant.headers)
    assert history.json()[-1]["to_stage_id"] == stage_id(pipeline, "提案")
    tasks = await client.get(
        f"/v1/interactions?type=task&customer_id={customer['id']}", headers=tenant.headers
    )
    assert sorted(task["deal_id"] for task in tasks.json()["data"]) == sorted(
        deal["id"] for deal in deals[:3]
    )
    assert "big-deal" in (await get_customer(client, tenant, customer["id"]))["tags"]


async def test_send_webhook_with_the_event_or_a_template(
    client: AsyncClient, tenant: Tenant, engine: WorkflowEngine
) -> None:
    async with running_receiver() as receiver:
        endpoint = await post_created(
            client,
            tenant,
            "/v1/webhooks",
            {"url": receiver.url, "event_types": ["deal.won"]},
        )
        await create_workflow(
            client,
            tenant,
            trigger={"event_type": "customer.created"},
            actions=[
                {"type": "send_webhook", "endpoint_id": endpoint["id"]},
                {
                    "type": "send_webhook",
                    "endpoint_id": endpoint["id"],
                    "template": {
                        "text": "ようこそ {{customer.display_name}} さん",
                        "email": "{{customer.emails.0}}",
                        "spent": "{{customer.metrics.total_spent}}",
                        "kind": "{{event.type}}",
                        "fixed": [1, True, None],
                    },
                },
            ],
        )
        customer = await make_customer(client, tenant, family_name="配信", given_name="花子")
        workflow = (await client.get("/v1/workflows", headers=tenant.headers)).json()["data"][0]
        await drain(engine, finished(client, tenant, workflow))
        dispatcher = Dispatcher(tenant.database.writer, allow_private=True, timeout=2)
        deadline = asyncio.get_running_loop().time() + 10
        while len(receiver.requests) < 2 and asyncio.get_running_loop().time() < deadline:
            await dispatcher.deliver_due()
            await asyncio.sleep(0.02)
    payloads = [
        Webhook(endpoint["secret"]).verify(request.body, request.headers)  # type: ignore[no-untyped-call]
        for request in receiver.requests
    ]
    event, templated = sorted(payloads, key=lambda payload: "type" not in payload)
    assert event["type"] == "customer.created"
    assert event["data"]["id"] == customer["id"]
    assert templated == {
        "text": "ようこそ 配信 花子 さん",
        "email": customer["emails"][0],
        "spent": 0,
        "kind": "customer.created",
        "fixed": [1, True, None],
    }
    ids = {request.headers["webhook-id"] for request in receiver.requests}
    assert len(ids) == 2
    assert event["id"] not in ids
    log = await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=tenant.headers)
    assert {delivery["status"] for delivery in log.json()["data"]} == {"succeeded"}


async def test_a_wait_survives_a_restart(
    client: AsyncClient, tenant: Tenant, engine: WorkflowEngine, database_url: str
) -> None:
    workflow = await create_workflow(
        client,
        tenant,
        trigger={"event_type": "customer.created"},
        actions=[
            {"type": "add_tag", "tag": "before"},
            {"type": "wait", "duration": "1s"},
            {"type": "add_tag", "tag": "after"},
        ],
    )
    customer = await make_customer(client, tenant)

    async def waiting() -> bool:
        runs = await runs_of(client, tenant, workflow)
        return bool(runs) and runs[0]["status"] == "waiting"

    await drain(engine, waiting)
    [run] = await runs_of(client, tenant, workflow)
    assert run["status"] == "waiting"
    assert run["step"] == 2
    resume_at = datetime.fromisoformat(run["steps"][1]["result"]["resume_at"])
    assert datetime.fromisoformat(run["next_attempt_at"]) == resume_at
    assert (await get_customer(client, tenant, customer["id"]))["tags"] == ["before"]

    # The process stops; another one starts on the same database and resumes the run.
    restarted = create_app(settings_for(database_url))
    try:
        resumed: WorkflowEngine = restarted.state.workflows
        await drain(resumed, finished(client, tenant, workflow))
    finally:
        await restarted.state.database.dispose()
    [run] = await runs_of(client, tenant, workflow)
    assert run["status"] == "succeeded"
    assert datetime.fromisoformat(run["finished_at"]) >= resume_at
    assert (await get_customer(client, tenant, customer["id"]))["tags"] == ["before", "after"]


async def test_a_failing_action_is_retried_then_fails_the_run(
    client: AsyncClient, tenant: Tenant, engine: WorkflowEngine
) -> None:
    user = await make_user(client, tenant)
    workflow = await create_workflow(
        client,
        tenant,
        trigger={"event_type": "customer.created"},
        actions=[
            {"type": "add_tag", "tag": "seen"},
            {"type": "assign_owner", "user_id": user["id"]},
            {"type": "add_tag", "tag": "never"},
        ],
    )
    deleted = await client.delete(f"/v1/users/{user['id']}", headers=tenant.headers)
    assert deleted.status_code == 204
    customer = await make_customer(client, tenant)
    await drain(engine, finished(client, tenant, workflow))
    [run] = await runs_of(client, tenant, workflow)
    assert run["status"] == "failed"
    assert run["step"] == 1
    first, failing = run["steps"]
    assert first["status"] == "succeeded"
    assert (failing["type"], failing["status"], failing["attempts"]) == (
        "assign_owner",
        "failed",
        len(FAST) + 1,
    )
    assert f"No user with id {user['id']}" in failing["error"]
    assert run["error"].startswith("Action 1 (assign_owner) failed after 3 attempts")
    assert (await get_customer(client, tenant, customer["id"]))["tags"] == ["seen"]
    [announced] = await read_feed(client, tenant, prefix="workflow.run_failed")
    assert announced["data"]["id"] == run["id"]
    failed = await client.get(
        f"/v1/workflows/{workflow['id']}/runs?status=failed", headers=tenant.headers
    )
    assert [item["id"] for item in failed.json()["data"]] == [run["id"]]
    one = await client.get(
        f"/v1/workflows/{workflow['id']}/runs/{run['id']}", headers=tenant.headers
    )
    assert one.json()["steps"][1]["error"] == failing["error"]


TOGGLE = [{"type": "add_tag", "tag": "ping"}, {"type": "remove_tag", "tag": "ping"}]


async def test_a_workflow_does_not_trigger_itself(
    client: AsyncClient, tenant: Tenant, engine: WorkflowEngine
) -> None:
    # Each run changes the customer twice: without the guard, every change would start it again.
    workflow = await create_workflow(
        client, tenant, trigger={"event_type": "customer.updated"}, actions=TOGGLE
    )
    customer = await make_customer(client, tenant)
    patched = await client.patch(
        f"/v1/customers/{customer['id']}", json={"given_name": "次郎"}, headers=tenant.headers
    )
    assert patched.status_code == 200
    await drain(engine, finished(client, tenant, workflow))
    await handled(engine, tenant)
    [run] = await runs_of(client, tenant, workflow)
    assert run["status"] == "succeeded"
    assert run["depth"] == 1
    updates = await read_feed(client, tenant, prefix="customer.updated", at_least=3)
    assert len(updates) == 3  # the PATCH, then the run's two changes


async def test_chains_of_workflows_stop_at_the_depth_limit(
    client: AsyncClient, tenant: Tenant
) -> None:
    engine = WorkflowEngine(tenant.database.writer, retry_schedule=FAST, max_depth=2)
    await engine.match_events()
    # Two workflows each changing the customer: each one's changes start the other.
    first = await create_workflow(
        client, tenant, name="A", trigger={"event_type": "customer.updated"}, actions=TOGGLE
    )
    second = await create_workflow(
        client, tenant, name="B", trigger={"event_type": "customer.updated"}, actions=TOGGLE
    )
    customer = await make_customer(client, tenant)
    await client.patch(
        f"/v1/customers/{customer['id']}", json={"given_name": "三郎"}, headers=tenant.headers
    )
    await drain(engine, finished(client, tenant, first, 3))
    await drain(engine, finished(client, tenant, second, 3))
    await handled(engine, tenant)
    for workflow in (first, second):
        runs = await runs_of(client, tenant, workflow)
        # Depth 1 from the PATCH; depth 2 from each of the other's two changes; no depth 3.
        assert sorted(run["depth"] for run in runs) == [1, 2, 2]
        assert {run["status"] for run in runs} == {"succeeded"}


async def test_dry_run_shows_the_plan_and_writes_nothing(
    client: AsyncClient, tenant: Tenant, engine: WorkflowEngine
) -> None:
    first, second = await make_user(client, tenant), await make_user(client, tenant)
    async with running_receiver() as receiver:
        endpoint = await post_created(
            client, tenant, "/v1/webhooks", {"url": receiver.url, "event_types": ["deal.won"]}
        )
    workflow = await create_workflow(
        client,
        tenant,
        enabled=False,
        trigger={"event_type": "customer.created"},
        conditions={"field": "tags", "op": "contains", "value": "trial"},
        actions=[
            {"type": "add_tag", "tag": "welcomed"},
            {"type": "assign_owner", "round_robin": [first["id"], second["id"]]},
            {"type": "wait", "duration": "1d"},
            {"type": "create_task", "title": "フォロー", "due_in": "2h"},
            {
                "type": "send_webhook",
                "endpoint_id": endpoint["id"],
                "template": {"who": "{{customer.display_name}}", "why": "{{event.type}}"},
            },
        ],
    )
    customer = await make_customer(client, tenant, tags=["trial"], display_name="試用 太郎")
    other = await make_customer(client, tenant, tags=["paid"])
    [created] = [
        event
        for event in await read_feed(client, tenant, prefix="customer.created", at_least=2)
        if event["data"]["id"] == customer["id"]
    ]
    url = f"/v1/workflows/{workflow['id']}/dry-run"
    for _ in range(2):  # the same plan twice: nothing moved on
        response = await client.post(url, json={"event_id": created["id"]}, headers=tenant.headers)
        assert response.status_code == 200, response.text
        plan = response.json()
        assert (plan["matched"], plan["triggered"]) == (True, True)
        assert plan["subject_id"] == customer["id"]
        steps = {step["type"]: step for step in plan["actions"]}
        assert steps["assign_owner"]["parameters"]["user_id"] == first["id"]
        resume_at = datetime.fromisoformat(steps["wait"]["parameters"]["resume_at"])
        due_at = datetime.fromisoformat(steps["create_task"]["parameters"]["due_at"])
        assert due_at - resume_at == timedelta(hours=2)
        assert steps["send_webhook"]["parameters"]["payload"] == {
            "who": "試用 太郎",
            "why": "customer.created",
        }
        assert all(step["error"] is None for step in plan["actions"])
    by_subject = await client.post(url, json={"subject_id": other["id"]}, headers=tenant.headers)
    assert by_subject.json()["matched"] is False
    assert by_subject.json()["triggered"] is False
    # The event-free plan cannot render `event.type`, and says so.
    planned = {step["type"]: step for step in by_subject.json()["actions"]}
    assert "event.type" in planned["send_webhook"]["error"]
    await settle(engine)
    assert await runs_of(client, tenant, workflow) == []
    assert (await get_customer(client, tenant, customer["id"]))["tags"] == ["trial"]
    tasks = await client.get(
        f"/v1/interactions?customer_id={customer['id']}", headers=tenant.headers
    )
    assert tasks.json()["data"] == []
    log = await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=tenant.headers)
    assert log.json()["data"] == []
    missing = await client.post(url, json={"subject_id": str(uuid.uuid4())}, headers=tenant.headers)
    assert missing.status_code == 404


async def test_disabled_workflows_do_not_run_and_definitions_are_versioned(
    client: AsyncClient, tenant: Tenant, engine: WorkflowEngine
) -> None:
    workflow = await create_workflow(
        client,
        tenant,
        trigger={"event_type": "customer.created"},
        actions=[{"type": "add_tag", "tag": "v1"}],
    )
    disabled = await client.patch(
        f"/v1/workflows/{workflow['id']}",
        json={"enabled": False},
        headers={**tenant.headers, "If-Match": '"1"'},
    )
    assert disabled.status_code == 200
    assert disabled.json()["version"] == 2
    quiet = await make_customer(client, tenant)
    await handled(engine, tenant)  # its event, while the workflow is disabled
    changed = await client.patch(
        f"/v1/workflows/{workflow['id']}",
        json={"enabled": True, "actions": [{"type": "add_tag", "tag": "v3"}]},
        headers=tenant.headers,
    )
    assert changed.json()["version"] == 3
    stale = await client.patch(
        f"/v1/workflows/{workflow['id']}",
        json={"name": "x"},
        headers={**tenant.headers, "If-Match": '"1"'},
    )
    assert stale.status_code == 412
    loud = await make_customer(client, tenant)
    await drain(engine, finished(client, tenant, workflow))
    await handled(engine, tenant)
    runs = await runs_of(client, tenant, workflow)
    assert len(runs) == 1, (runs, quiet["id"], loud["id"])
    [run] = runs
    assert (run["subject_id"], run["workflow_version"]) == (loud["id"], 3)
    assert (await get_customer(client, tenant, loud["id"]))["tags"] == ["v3"]
    assert (await get_customer(client, tenant, quiet["id"]))["tags"] == []
    versions = await client.get(f"/v1/workflows/{workflow['id']}/versions", headers=tenant.headers)
    assert [v["version"] for v in versions.json()] == [3, 2, 1]
    assert versions.json()[2]["actions"] == [{"type": "add_tag", "tag": "v1"}]
    # A manual run of a chosen customer, then deletion takes the runs with it.
    started = await client.post(
        f"/v1/workflows/{workflow['id']}/runs",
        json={"subject_id": quiet["id"]},
        headers=tenant.headers,
    )
    assert started.status_code == 202
    assert started.json()["status"] == "pending"
    await drain(engine, finished(client, tenant, workflow, 2))
    assert (await get_customer(client, tenant, quiet["id"]))["tags"] == ["v3"]
    gone = await client.delete(f"/v1/workflows/{workflow['id']}", headers=tenant.headers)
    assert gone.status_code == 204
    missing = await client.get(f"/v1/workflows/{workflow['id']}/runs", headers=tenant.headers)
    assert missing.status_code == 404


async def test_a_schedule_runs_over_the_matching_customers(
    client: AsyncClient, tenant: Tenant, engine: WorkflowEngine
) -> None:
    workflow = await create_workflow(
        client,
        tenant,
        trigger={"schedule": {"every": "day", "at": "09:00", "timezone": "Asia/Tokyo"}},
        conditions={"field": "tags", "op": "contains", "value": "newsletter"},
        actions=[{"type": "add_tag", "tag": "greeted"}],
    )
    next_run = datetime.fromisoformat(workflow["next_run_at"])
    assert (next_run.astimezone(UTC).hour, next_run.minute) == (0, 0)  # 09:00 in Tokyo
    assert utcnow() < next_run <= utcnow() + timedelta(days=1)
    readers = [await make_customer(client, tenant, tags=["newsletter"]) for _ in range(3)]
    other = await make_customer(client, tenant)
    # The clock reaches 09:00 in Tokyo.
    async with tenant.database.writer() as session, session.begin():
        await session.execute(
            update(Workflow)
            .where(Workflow.workspace_id == tenant.id, Workflow.id == uuid.UUID(workflow["id"]))
            .values(next_run_at=utcnow() - timedelta(seconds=1), updated_at=Workflow.updated_at)
        )
    await drain(engine, finished(client, tenant, workflow, 3))
    await settle(engine)
    runs = await runs_of(client, tenant, workflow)
    assert sorted(run["subject_id"] for run in runs) == sorted(c["id"] for c in readers)
    assert all(run["event_id"] is None for run in runs)
    for reader in readers:
        assert "greeted" in (await get_customer(client, tenant, reader["id"]))["tags"]
    assert (await get_customer(client, tenant, other["id"]))["tags"] == []
    shown = await client.get(f"/v1/workflows/{workflow['id']}", headers=tenant.headers)
    assert datetime.fromisoformat(shown.json()["next_run_at"]) == next_run
    assert shown.json()["version"] == 1  # running is not a new definition
    assert shown.json()["updated_at"] == workflow["updated_at"]


async def test_bad_definitions_are_refused_with_their_place(
    client: AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    foreign_user = await make_user(client, other_tenant)
    foreign_pipeline = await make_pipeline(client, other_tenant)
    async with running_receiver() as receiver:
        foreign_endpoint = await post_created(
            client, other_tenant, "/v1/webhooks", {"url": receiver.url, "event_types": ["x.y"]}
        )
    foreign_segment = await post_created(
        client, other_tenant, "/v1/segments", {"name": "theirs", "kind": "static"}
    )
    dynamic_segment = await post_created(
        client,
        tenant,
        "/v1/segments",
        {"name": "dynamic", "kind": "dynamic", "filter": {"field": "tags", "op": "is_set"}},
    )
    customer_trigger = {"event_type": "customer.created"}
    cases: list[tuple[dict[str, Any], list[str | int], str]] = [
        (
            {
                "trigger": {"event_type": "customer.exploded"},
                "actions": [{"type": "wait", "duration": "1m"}],
            },
            ["body", "trigger", "event_type"],
            "Unknown trigger event type",
        ),
        (
            {
                "trigger": customer_trigger,
                "actions": [{"type": "add_to_segment", "segment_id": foreign_segment["id"]}],
            },
            ["body", "actions", 0, "segment_id"],
            "No segment with id",
        ),
        (
            {
                "trigger": customer_trigger,
                "actions": [{"type": "remove_from_segment", "segment_id": dynamic_segment["id"]}],
            },
            ["body", "actions", 0, "segment_id"],
            "Only static segments",
        ),
        (
            {
                "trigger": {
                    "schedule": {"every": "day", "at": "09:00", "segment_id": foreign_segment["id"]}
                },
                "actions": [{"type": "add_tag", "tag": "x"}],
            },
            ["body", "trigger", "schedule", "segment_id"],
            "No segment with id",
        ),
        (
            {
                "trigger": customer_trigger,
                "actions": [{"type": "assign_owner", "user_id": foreign_user["id"]}],
            },
            ["body", "actions", 0, "user_id"],
            "No user with id",
        ),
        (
            {
                "trigger": customer_trigger,
                "actions": [{"type": "send_webhook", "endpoint_id": foreign_endpoint["id"]}],
            },
            ["body", "actions", 0, "endpoint_id"],
            "No webhook with id",
        ),
        (
            {
                "trigger": {"event_type": "deal.created"},
                "actions": [
                    {"type": "move_deal_stage", "stage_id": stage_id(foreign_pipeline, "提案")}
                ],
            },
            ["body", "actions", 0, "stage_id"],
            "No stage with id",
        ),
        (
            {
                "trigger": customer_trigger,
                "actions": [{"type": "move_deal_stage", "stage_id": str(uuid.uuid4())}],
            },
            ["body", "actions", 0, "type"],
            "deal trigger",
        ),
        (
            {
                "trigger": customer_trigger,
                "actions": [{"type": "set_field", "key": "nope", "value": 1}],
            },
            ["body", "actions", 0, "key"],
            "No custom field",
        ),
        (
            {
                "trigger": customer_trigger,
                "actions": [{"type": "set_lifecycle_stage", "stage": "royalty"}],
            },
            ["body", "actions", 0, "stage"],
            "Expected one of",
        ),
        (
            {
                "trigger": customer_trigger,
                "conditions": {"field": "metrics.nothing", "op": "eq", "value": 1},
                "actions": [{"type": "add_tag", "tag": "x"}],
            },
            ["body", "conditions", "field"],
            "",
        ),
        (
            {
                "trigger": {"schedule": {"every": "day", "at": "25:00", "timezone": "Asia/Tokyo"}},
                "actions": [{"type": "add_tag", "tag": "x"}],
            },
            ["body", "trigger", "schedule", "at"],
            "",
        ),
        (
            {
                "trigger": {
                    "schedule": {"every": "day", "at": "09:00", "timezone": "Mars/Olympus"}
                },
                "actions": [{"type": "add_tag", "tag": "x"}],
            },
            ["body", "trigger", "schedule", "timezone"],
            "Unknown IANA time zone",
        ),
        (
            {"trigger": customer_trigger, "actions": [{"type": "wait", "duration": "soon"}]},
            ["body", "actions", 0, "wait", "duration"],
            "duration",
        ),
    ]
    endpoint = await post_created(
        client, tenant, "/v1/webhooks", {"url": "http://127.0.0.1:9/x", "event_types": ["x.y"]}
    )
    cases += [
        (
            {
                "trigger": customer_trigger,
                "actions": [
                    {
                        "type": "send_webhook",
                        "endpoint_id": endpoint["id"],
                        "template": {"a": {"b": ["{{customer.emial}}"]}},
                    }
                ],
            },
            ["body", "actions", 0, "template", "a", "b", 0],
            "the customer has no field 'emial'",
        ),
        (
            {
                "trigger": {"schedule": {"every": "week", "weekday": "monday", "at": "09:00"}},
                "actions": [
                    {
                        "type": "send_webhook",
                        "endpoint_id": endpoint["id"],
                        "template": {"total": "{{event.data.total}}"},
                    }
                ],
            },
            ["body", "actions", 0, "template", "total"],
            "a scheduled workflow has no event",
        ),
    ]
    for body, loc, message in cases:
        response = await client.post(
            "/v1/workflows", json={"name": "bad", **body}, headers=tenant.headers
        )
        assert response.status_code == 422, (body, response.text)
        problem = response.json()
        assert problem["errors"][0]["loc"][: len(loc)] == loc, (body, problem)
        assert message in problem["errors"][0]["message"], (body, problem)
    listed = await client.get("/v1/workflows", headers=tenant.headers)
    assert listed.json()["data"] == []
    await make_field(client, tenant, key="coupon")
    clearing = await create_workflow(
        client,
        tenant,
        trigger=customer_trigger,
        actions=[{"type": "set_field", "key": "coupon", "value": None}],
    )
    assert clearing["actions"] == [{"type": "set_field", "key": "coupon", "value": None}]


async def test_workflows_of_another_workspace_are_not_found(
    client: AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    workflow = await create_workflow(
        client,
        other_tenant,
        trigger={"event_type": "customer.created"},
        actions=[{"type": "add_tag", "tag": "x"}],
    )
    customer = await make_customer(client, tenant)
    for method, path, body in [
        ("GET", "", None),
        ("PATCH", "", {"name": "mine"}),
        ("DELETE", "", None),
        ("GET", "/runs", None),
        ("GET", "/versions", None),
        ("POST", "/dry-run", {"subject_id": customer["id"]}),
        ("POST", "/runs", {"subject_id": customer["id"]}),
    ]:
        response = await client.request(
            method, f"/v1/workflows/{workflow['id']}{path}", json=body, headers=tenant.headers
        )
        assert response.status_code == 404, (method, path, response.text)
    # Nor can a run be started for another workspace's customer.
    theirs = await client.post(
        f"/v1/workflows/{workflow['id']}/runs",
        json={"subject_id": customer["id"]},
        headers=other_tenant.headers,
    )
    assert theirs.status_code == 404
    scoped = await client.get("/v1/workflows", headers=await tenant.headers_with("customers:write"))
    assert scoped.status_code == 403


async def test_due_tasks_and_stage_changes_start_workflows(
    client: AsyncClient, tenant: Tenant, engine: WorkflowEngine
) -> None:
    reminder = await create_workflow(
        client,
        tenant,
        trigger={"event_type": "task.due"},
        actions=[{"type": "create_interaction", "body": "期限切れのタスクがあります"}],
    )
    pipeline = await make_pipeline(client, tenant)
    negotiating = await create_workflow(
        client,
        tenant,
        trigger={"event_type": "deal.stage_changed"},
        conditions={"field": "stage_id", "op": "eq", "value": stage_id(pipeline, "交渉")},
        actions=[{"type": "add_tag", "tag": "negotiating"}],
    )
    customer = await make_customer(client, tenant)
    past = (utcnow() - timedelta(minutes=5)).isoformat()
    await post_created(
        client,
        tenant,
        "/v1/interactions",
        {"type": "task", "customer_id": customer["id"], "subject": "電話", "due_at": past},
    )
    async with tenant.database.writer() as session, session.begin():
        await announce_due_tasks(session)
    deal = await make_deal(client, tenant, pipeline, "リード", customer_id=customer["id"])
    for stage in ("提案", "交渉"):
        moved = await client.patch(
            f"/v1/deals/{deal['id']}",
            json={"stage_id": stage_id(pipeline, stage)},
            headers=tenant.headers,
        )
        assert moved.status_code == 200
        # Conditions see the deal as it is when the engine handles the move.
        await handled(engine, tenant)
    await drain(engine, finished(client, tenant, reminder))
    await drain(engine, finished(client, tenant, negotiating))
    await handled(engine, tenant)
    [run] = await runs_of(client, tenant, reminder)
    assert (run["subject_type"], run["subject_id"]) == ("customer", customer["id"])
    notes = await client.get(
        f"/v1/interactions?type=note&customer_id={customer['id']}", headers=tenant.headers
    )
    assert [note["body"] for note in notes.json()["data"]] == ["期限切れのタスクがあります"]
    [moved_run] = await runs_of(client, tenant, negotiating)  # not for the move to 提案
    assert (moved_run["subject_type"], moved_run["subject_id"]) == ("deal", deal["id"])
    assert (await get_customer(client, tenant, customer["id"]))["tags"] == ["negotiating"]


async def test_erasing_a_customer_scrubs_their_runs(
    client: AsyncClient, tenant: Tenant, engine: WorkflowEngine
) -> None:
    async with running_receiver() as receiver:
        endpoint = await post_created(
            client, tenant, "/v1/webhooks", {"url": receiver.url, "event_types": ["deal.won"]}
        )
    sent = await create_workflow(
        client,
        tenant,
        trigger={"event_type": "customer.created"},
        actions=[
            {
                "type": "send_webhook",
                "endpoint_id": endpoint["id"],
                "template": {"email": "{{customer.emails.0}}"},
            }
        ],
    )
    waiting = await create_workflow(
        client,
        tenant,
        trigger={"event_type": "customer.created"},
        actions=[{"type": "wait", "duration": "1d"}, {"type": "add_tag", "tag": "later"}],
    )
    customer = await make_customer(client, tenant, emails=["erase-me@example.jp"])
    await drain(engine, finished(client, tenant, sent))
    await handled(engine, tenant)
    erased = await client.delete(
        f"/v1/customers/{customer['id']}?erase=true", headers=tenant.headers
    )
    assert erased.status_code == 204
    [done] = await runs_of(client, tenant, sent)
    assert done["status"] == "succeeded"
    [stopped] = await runs_of(client, tenant, waiting)
    assert (stopped["status"], stopped["error"]) == ("failed", "The customer was erased.")
    delivery_id = done["steps"][0]["result"]["delivery_id"]
    detail = await client.get(
        f"/v1/webhooks/{endpoint['id']}/deliveries/{delivery_id}", headers=tenant.headers
    )
    assert "erase-me" not in detail.text
    async with tenant.database.reader() as session:
        runs = (
            await session.execute(select(WorkflowRun).where(WorkflowRun.workspace_id == tenant.id))
        ).scalars()
        assert all("erase-me" not in str(run.event) for run in runs)


async def test_entering_a_segment_starts_a_workflow(
    client: AsyncClient, tenant: Tenant, engine: WorkflowEngine, app: FastAPI
) -> None:
    segment = await post_created(
        client,
        tenant,
        "/v1/segments",
        {
            "name": "VIP",
            "kind": "dynamic",
            "filter": {"field": "tags", "op": "contains", "value": "vip"},
        },
    )
    segments: SegmentWorker = app.state.segment_worker
    while await segments.run_once():
        pass
    workflow = await create_workflow(
        client,
        tenant,
        trigger={"event_type": "segment.entered"},
        actions=[
            {"type": "create_task", "title": "VIPになったお客様にお礼"},
        ],
    )
    customer = await make_customer(client, tenant, tags=["vip"])
    await drain(engine, finished(client, tenant, workflow))
    [run] = await runs_of(client, tenant, workflow)
    assert (run["status"], run["subject_id"]) == ("succeeded", customer["id"])
    tasks = await client.get(
        f"/v1/interactions?type=task&customer_id={customer['id']}", headers=tenant.headers
    )
    assert [task["subject"] for task in tasks.json()["data"]] == ["VIPになったお客様にお礼"]
    [entered] = await read_feed(client, tenant, prefix="segment.entered")
    assert entered["data"]["segment"]["id"] == segment["id"]
    assert run["event_id"] == entered["id"]


async def test_segment_actions_and_a_schedule_over_a_segment(
    client: AsyncClient, tenant: Tenant, engine: WorkflowEngine
) -> None:
    invited = await post_created(client, tenant, "/v1/segments", {"name": "招待", "kind": "static"})
    waiting = await post_created(
        client, tenant, "/v1/segments", {"name": "順番待ち", "kind": "static"}
    )
    moved = await create_workflow(
        client,
        tenant,
        trigger={"event_type": "customer.created"},
        conditions={"field": "tags", "op": "contains", "value": "vip"},
        actions=[
            {"type": "remove_from_segment", "segment_id": waiting["id"]},
            {"type": "add_to_segment", "segment_id": invited["id"]},
        ],
    )
    vip = await make_customer(client, tenant, tags=["vip"])
    regular = await make_customer(client, tenant)
    added = await client.post(
        f"/v1/segments/{waiting['id']}/members",
        json={"customer_ids": [regular["id"]]},
        headers=tenant.headers,
    )
    assert added.status_code == 200, added.text
    await drain(engine, finished(client, tenant, moved))
    [run] = await runs_of(client, tenant, moved)
    assert run["status"] == "succeeded", run
    assert [step["result"]["changed"] for step in run["steps"]] == [False, True]
    members = await client.get(f"/v1/segments/{invited['id']}/customers", headers=tenant.headers)
    assert [c["id"] for c in members.json()["data"]] == [vip["id"]]

    # Daily over the invited segment only: the regular customer is not greeted.
    greeting = await create_workflow(
        client,
        tenant,
        trigger={"schedule": {"every": "day", "at": "09:00", "segment_id": invited["id"]}},
        actions=[{"type": "add_tag", "tag": "greeted"}],
    )
    async with tenant.database.writer() as session, session.begin():
        await session.execute(
            update(Workflow)
            .where(Workflow.workspace_id == tenant.id, Workflow.id == uuid.UUID(greeting["id"]))
            .values(next_run_at=utcnow() - timedelta(seconds=1), updated_at=Workflow.updated_at)
        )
    await drain(engine, finished(client, tenant, greeting))
    await settle(engine)
    runs = await runs_of(client, tenant, greeting)
    assert [r["subject_id"] for r in runs] == [vip["id"]]
    assert "greeted" in (await get_customer(client, tenant, vip["id"]))["tags"]
    assert "greeted" not in (await get_customer(client, tenant, regular["id"]))["tags"]
