"""Interactions over HTTP: types and their own fields, tasks, search, events and the sweep."""

from datetime import timedelta
from typing import Any

from httpx import AsyncClient

from app.core.clock import utcnow
from app.domain.interaction.service import announce_due_tasks
from tests.api.factories import make_customer, make_interaction, make_user, read_feed
from tests.conftest import Tenant


async def test_every_type_is_logged_with_its_own_fields(
    client: AsyncClient, tenant: Tenant
) -> None:
    customer = await make_customer(client, tenant)
    note = await make_interaction(client, tenant, customer["id"], subject="初回来店")
    assert (note["type"], note["status"], note["customer_id"]) == ("note", None, customer["id"])
    call = await make_interaction(
        client, tenant, customer["id"], type="call", channel="phone", direction="inbound"
    )
    assert call["direction"] == "inbound"
    support = await make_interaction(client, tenant, customer["id"], type="support_request")
    assert (support["status"], support["priority"]) == ("open", "normal")
    survey = await make_interaction(
        client, tenant, customer["id"], type="survey", nps_score=9, answers={"q1": "満足"}
    )
    assert survey["nps_score"] == 9
    for kind in ("email", "meeting", "message", "visit"):
        await make_interaction(client, tenant, customer["id"], type=kind)
    listed = await client.get(
        f"/v1/interactions?customer_id={customer['id']}&limit=200", headers=tenant.headers
    )
    assert len(listed.json()["data"]) == 8


async def test_fields_of_other_types_and_bad_values_are_rejected(
    client: AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    customer = await make_customer(client, tenant)
    foreign = await make_customer(client, other_tenant)
    cases: list[tuple[dict[str, Any], list[Any]]] = [
        ({"type": "note", "nps_score": 5}, ["body", "nps_score"]),
        ({"type": "survey", "nps_score": 11}, ["body", "nps_score"]),
        ({"type": "call", "due_at": "2026-12-01T00:00:00Z"}, ["body", "due_at"]),
        ({"type": "task", "status": "resolved"}, ["body", "status"]),
        ({"type": "support_request", "status": "done"}, ["body", "status"]),
        ({"type": "chat"}, ["body", "type"]),
        ({"type": "note", "customer_id": foreign["id"]}, ["body", "customer_id"]),
        ({"type": "note", "deal_id": foreign["id"]}, ["body", "deal_id"]),
        ({"type": "note", "occurred_at": "2999-01-01T00:00:00Z"}, ["body", "occurred_at"]),
    ]
    for fields, loc in cases:
        body = {"customer_id": customer["id"], **fields}
        response = await client.post("/v1/interactions", json=body, headers=tenant.headers)
        assert response.status_code == 422, (fields, response.text)
        assert response.json()["errors"][0]["loc"] == loc, response.text


async def test_my_overdue_tasks_and_completion(client: AsyncClient, tenant: Tenant) -> None:
    me = await make_user(client, tenant)
    colleague = await make_user(client, tenant)
    customer = await make_customer(client, tenant)
    now = utcnow()

    async def task(subject: str, due: Any, assignee: dict[str, Any]) -> dict[str, Any]:
        return await make_interaction(
            client,
            tenant,
            customer["id"],
            type="task",
            subject=subject,
            due_at=due.isoformat() if due else None,
            assignee_id=assignee["id"],
        )

    late = await task("お礼の電話", now - timedelta(days=1), me)
    await task("見積送付", now + timedelta(days=3), me)
    await task("他の人", now - timedelta(days=2), colleague)
    await task("期限なし", None, me)
    overdue = await client.get(
        f"/v1/interactions?type=task&assignee_id={me['id']}&status=open"
        f"&due_before={now.isoformat().replace('+00:00', 'Z')}&sort=due_at",
        headers=tenant.headers,
    )
    assert [t["subject"] for t in overdue.json()["data"]] == ["お礼の電話"]
    by_due = await client.get(
        f"/v1/interactions?type=task&assignee_id={me['id']}&sort=due_at", headers=tenant.headers
    )
    assert [t["subject"] for t in by_due.json()["data"]] == ["お礼の電話", "見積送付", "期限なし"]

    done = await client.patch(
        f"/v1/interactions/{late['id']}", json={"status": "done"}, headers=tenant.headers
    )
    assert done.status_code == 200
    assert done.json()["completed_at"] is not None
    completed = await read_feed(client, tenant, prefix="task.completed")
    assert [e["data"]["id"] for e in completed] == [late["id"]]


async def test_due_tasks_are_announced_once(client: AsyncClient, tenant: Tenant) -> None:
    customer = await make_customer(client, tenant)
    past = (utcnow() - timedelta(minutes=5)).isoformat()
    task = await make_interaction(client, tenant, customer["id"], type="task", due_at=past)
    for _ in range(2):
        async with tenant.database.writer() as session, session.begin():
            await announce_due_tasks(session)
    announced = await read_feed(client, tenant, prefix="task.due")
    assert [event["data"]["id"] for event in announced] == [task["id"]]


async def test_search_updates_and_deletes_with_events(client: AsyncClient, tenant: Tenant) -> None:
    customer = await make_customer(client, tenant)
    note = await make_interaction(
        client, tenant, customer["id"], subject="配送について", body="ﾊﾟｯｹｰｼﾞが破損"
    )
    await make_interaction(client, tenant, customer["id"], subject="別件")
    found = await client.get("/v1/interactions?q=パッケージ", headers=tenant.headers)
    assert [i["id"] for i in found.json()["data"]] == [note["id"]]
    path = f"/v1/interactions/{note['id']}"
    stale = await client.patch(
        path, json={"subject": "x"}, headers={**tenant.headers, "If-Match": '"5"'}
    )
    assert stale.status_code == 412
    updated = await client.patch(
        path, json={"subject": "配送の件"}, headers={**tenant.headers, "If-Match": '"1"'}
    )
    assert updated.json()["version"] == 2
    assert (await client.delete(path, headers=tenant.headers)).status_code == 204
    assert (await client.get(path, headers=tenant.headers)).status_code == 404
    events = await read_feed(client, tenant, prefix="interaction.", at_least=4)
    assert [e["type"] for e in events] == [
        "interaction.created",
        "interaction.created",
        "interaction.updated",
        "interaction.deleted",
    ]
    assert events[2]["changes"] == {"subject": {"old": "配送について", "new": "配送の件"}}
