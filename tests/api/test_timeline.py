"""The customer timeline, and how merge and erase treat interactions, orders and shop events."""

from typing import Any

from httpx import AsyncClient

from tests.api.factories import make_company, make_customer, make_interaction
from tests.api.test_events_ingest import order_event, post
from tests.api.test_pipelines import make_deal, make_pipeline, move, stage_id
from tests.conftest import Tenant


async def _timeline(client: AsyncClient, tenant: Tenant, customer_id: str, query: str = "") -> Any:
    response = await client.get(
        f"/v1/customers/{customer_id}/timeline{query}", headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_timeline_shows_every_kind_newest_first_with_one_cursor(
    client: AsyncClient, tenant: Tenant
) -> None:
    customer = await make_customer(client, tenant, external_ids={"shop": "t-1"})
    who = {"external_id": "t-1"}
    await post(
        client, tenant, order_event("tl-1", "T1", customer=who, occurred_at="2026-11-01T10:00:00Z")
    )
    await make_interaction(
        client,
        tenant,
        customer["id"],
        type="call",
        subject="お礼",
        occurred_at="2026-11-02T10:00:00Z",
    )
    await post(
        client,
        tenant,
        {
            "event_id": "tl-2",
            "type": "page.viewed",
            "occurred_at": "2026-11-03T10:00:00Z",
            "customer": who,
            "properties": {"path": "/sale"},
        },
    )
    await post(
        client,
        tenant,
        {
            "event_id": "tl-3",
            "type": "order.refunded",
            "occurred_at": "2026-11-04T10:00:00Z",
            "customer": who,
            "order": {"order_id": "T1", "amount": 100},
        },
    )
    await client.patch(
        f"/v1/customers/{customer['id']}", json={"tags": ["vip"]}, headers=tenant.headers
    )
    everything = await _timeline(client, tenant, customer["id"])
    types = [entry["type"] for entry in everything["data"]]
    assert types == [  # the record was made today; the shop's history is from early November
        "customer.updated",
        "customer.created",
        "order.refunded",
        "page.viewed",
        "call",
        "order.completed",
    ]
    assert everything["data"][3]["data"]["properties"] == {"path": "/sale"}
    assert everything["data"][5]["data"]["refunded_total"] == 100

    walked: list[str] = []
    query = "?limit=2"
    for _ in range(5):
        page = await _timeline(client, tenant, customer["id"], query)
        walked += [entry["type"] for entry in page["data"]]
        if page["next_cursor"] is None:
            break
        query = f"?limit=2&cursor={page['next_cursor']}"
    assert walked == types
    only = await _timeline(client, tenant, customer["id"], "?kind=order,interaction")
    assert [entry["kind"] for entry in only["data"]] == ["interaction", "order"]
    bad = await client.get(
        f"/v1/customers/{customer['id']}/timeline?kind=gossip", headers=tenant.headers
    )
    assert bad.status_code == 422


async def test_merge_moves_interactions_orders_and_metrics(
    client: AsyncClient, tenant: Tenant
) -> None:
    survivor = await make_customer(client, tenant, external_ids={"shop": "s-1"})
    other = await make_customer(client, tenant, external_ids={"pos": "p-1"})
    await post(client, tenant, order_event("m-1", "M1", customer={"external_id": "s-1"}))
    await post(
        client, tenant, order_event("m-2", "M2", customer={"external_id": "p-1", "source": "pos"})
    )
    await make_interaction(client, tenant, other["id"], subject="旧アカウントのメモ")
    merged = await client.post(
        f"/v1/customers/{survivor['id']}/merge",
        json={"other_id": other["id"]},
        headers=tenant.headers,
    )
    assert merged.status_code == 200, merged.text
    assert merged.json()["metrics"]["order_count"] == 2
    orders = await client.get(f"/v1/customers/{survivor['id']}/orders", headers=tenant.headers)
    assert len(orders.json()["data"]) == 2
    timeline = await _timeline(client, tenant, survivor["id"], "?kind=interaction")
    assert [entry["data"]["subject"] for entry in timeline["data"]] == ["旧アカウントのメモ"]
    later = await post(
        client, tenant, order_event("m-3", "M3", customer={"external_id": "p-1", "source": "pos"})
    )
    assert later.json()["customer_id"] == survivor["id"]


async def test_erase_keeps_anonymous_order_totals_only(client: AsyncClient, tenant: Tenant) -> None:
    customer = await make_customer(client, tenant, emails=["gone@example.jp"])
    placed = await post(
        client, tenant, order_event("er-1", "E1", customer={"email": "gone@example.jp"})
    )
    await make_interaction(client, tenant, customer["id"], body="個人的な内容")
    erased = await client.delete(
        f"/v1/customers/{customer['id']}?erase=true", headers=tenant.headers
    )
    assert erased.status_code == 204
    order = await client.get(f"/v1/orders/{placed.json()['order_id']}", headers=tenant.headers)
    assert order.json()["customer_id"] is None
    assert order.json()["total"] == 2400
    interactions = await client.get("/v1/interactions", headers=tenant.headers)
    assert interactions.json()["data"] == []
    for path in ("/v1/events/feed?limit=200", "/v1/audit-log?limit=200"):
        text = (await client.get(path, headers=tenant.headers)).text
        assert "gone@example.jp" not in text
    async with tenant.database.reader() as session:
        from sqlalchemy import select

        from app.domain.commerce.entities import InboundEvent

        payloads = (
            await session.execute(
                select(InboundEvent.payload).where(InboundEvent.workspace_id == tenant.id)
            )
        ).scalars()
        assert all("customer" not in payload for payload in payloads)


async def test_a_company_timeline_shows_its_interactions_deal_moves_and_changes(
    client: AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    company = await make_company(client, tenant, name="山田商事")
    contact = await make_customer(client, tenant, company_id=company["id"])
    other = await make_customer(client, tenant)
    await make_interaction(client, tenant, contact["id"], company_id=company["id"], body="訪問")
    await make_interaction(client, tenant, other["id"], body="別件")
    pipeline = await make_pipeline(client, tenant)
    deal = await make_deal(client, tenant, pipeline, "リード", company_id=company["id"])
    moved = await move(client, tenant, deal, stage_id(pipeline, "提案"))
    assert moved.status_code == 200, moved.text
    renamed = await client.patch(
        f"/v1/companies/{company['id']}", json={"name": "山田商事株式会社"}, headers=tenant.headers
    )
    assert renamed.status_code == 200, renamed.text

    response = await client.get(f"/v1/companies/{company['id']}/timeline", headers=tenant.headers)
    assert response.status_code == 200, response.text
    kinds = [(entry["kind"], entry["type"]) for entry in response.json()["data"]]
    assert ("change", "company.updated") in kinds
    assert ("deal", "deal.stage_changed") in kinds
    assert ("interaction", "note") in kinds
    assert kinds[0] == ("change", "company.updated")  # newest first
    assert len([k for k in kinds if k[0] == "interaction"]) == 1  # not the other customer's

    only_deals = await client.get(
        f"/v1/companies/{company['id']}/timeline?kind=deal", headers=tenant.headers
    )
    assert {entry["kind"] for entry in only_deals.json()["data"]} == {"deal"}
    hidden = await client.get(
        f"/v1/companies/{company['id']}/timeline", headers=other_tenant.headers
    )
    assert hidden.status_code == 404
