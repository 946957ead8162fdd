"""Pipelines, stages and deals over HTTP: ordering, moves, history, board, forecast, funnel."""

import asyncio
from datetime import date, timedelta
from typing import Any
from uuid import UUID

import pytest
from httpx import AsyncClient
from sqlalchemy import delete, update

from app.core.clock import utcnow
from app.domain.pipeline.entities import Deal, DealStageChange
from tests.api.factories import make_customer, post_created, read_feed
from tests.conftest import Tenant

STAGES = [
    {"name": "リード", "probability": 10},
    {"name": "提案", "probability": 40},
    {"name": "交渉", "probability": 80},
    {"name": "受注", "probability": 100, "kind": "won"},
    {"name": "失注", "probability": 0, "kind": "lost"},
]


async def make_pipeline(client: AsyncClient, tenant: Tenant, name: str = "新規") -> dict[str, Any]:
    return await post_created(client, tenant, "/v1/pipelines", {"name": name, "stages": STAGES})


def stage_id(pipeline: dict[str, Any], name: str) -> str:
    return str(next(stage["id"] for stage in pipeline["stages"] if stage["name"] == name))


async def make_deal(
    client: AsyncClient, tenant: Tenant, pipeline: dict[str, Any], stage: str, **fields: Any
) -> dict[str, Any]:
    body = {
        "name": "A社 導入",
        "pipeline_id": pipeline["id"],
        "stage_id": stage_id(pipeline, stage),
    }
    return await post_created(client, tenant, "/v1/deals", {**body, **fields})


async def move(client: AsyncClient, tenant: Tenant, deal: dict[str, Any], stage: str) -> Any:
    return await client.patch(
        f"/v1/deals/{deal['id']}", json={"stage_id": stage}, headers=tenant.headers
    )


async def test_new_workspaces_start_with_a_pipeline(client: AsyncClient, tenant: Tenant) -> None:
    listed = await client.get("/v1/pipelines", headers=tenant.headers)
    [pipeline] = listed.json()["data"]
    kinds = [stage["kind"] for stage in pipeline["stages"]]
    assert kinds[-2:] == ["won", "lost"]
    assert [stage["position"] for stage in pipeline["stages"]] == list(range(1, len(kinds) + 1))
    deal = await post_created(client, tenant, "/v1/deals", {"name": "既定", "amount": 1000})
    assert deal["pipeline_id"] == pipeline["id"]
    assert deal["stage_id"] == pipeline["stages"][0]["id"]


async def test_stage_rules(client: AsyncClient, tenant: Tenant) -> None:
    pipeline = await make_pipeline(client, tenant)
    base = f"/v1/pipelines/{pipeline['id']}/stages"
    bad = await client.post(base, json={"name": "x", "probability": 101}, headers=tenant.headers)
    assert bad.status_code == 422
    added = await client.post(
        base, json={"name": "検討", "probability": 30}, headers=tenant.headers
    )
    assert added.json()["position"] == 6
    moved = await client.post(
        f"{base}/{added.json()['id']}/move",
        json={"after": stage_id(pipeline, "リード")},
        headers=tenant.headers,
    )
    assert [s["name"] for s in moved.json()] == ["リード", "検討", "提案", "交渉", "受注", "失注"]
    assert [s["position"] for s in moved.json()] == [1, 2, 3, 4, 5, 6]
    other = await make_pipeline(client, tenant, "更新")
    foreign_anchor = await client.post(
        f"{base}/{added.json()['id']}/move",
        json={"before": stage_id(other, "提案")},
        headers=tenant.headers,
    )
    assert foreign_anchor.status_code == 422

    deal = await make_deal(client, tenant, pipeline, "提案")
    blocked = await client.delete(f"{base}/{stage_id(pipeline, '提案')}", headers=tenant.headers)
    assert blocked.status_code == 409
    deleted = await client.delete(
        f"{base}/{stage_id(pipeline, '提案')}?move_deals_to={stage_id(pipeline, '交渉')}",
        headers=tenant.headers,
    )
    assert deleted.status_code == 204
    moved_deal = await client.get(f"/v1/deals/{deal['id']}", headers=tenant.headers)
    assert moved_deal.json()["stage_id"] == stage_id(pipeline, "交渉")
    remaining = await client.get(base, headers=tenant.headers)
    assert [s["position"] for s in remaining.json()] == [1, 2, 3, 4, 5]


async def test_concurrent_stage_moves_keep_a_consistent_order(
    client: AsyncClient, tenant: Tenant
) -> None:
    pipeline = await make_pipeline(client, tenant)
    base = f"/v1/pipelines/{pipeline['id']}/stages"
    names = ["リード", "提案", "交渉"]
    answers = await asyncio.gather(
        *(
            client.post(
                f"{base}/{stage_id(pipeline, name)}/move",
                json={"before": stage_id(pipeline, "失注")},
                headers=tenant.headers,
            )
            for name in names
        )
    )
    assert all(answer.status_code == 200 for answer in answers)
    stages = (await client.get(base, headers=tenant.headers)).json()
    assert sorted(s["position"] for s in stages) == [1, 2, 3, 4, 5]
    assert stages[-1]["name"] == "失注"


async def test_deal_moves_keep_history_and_win_moves_the_customer_forward(
    client: AsyncClient, tenant: Tenant
) -> None:
    pipeline = await make_pipeline(client, tenant)
    customer = await make_customer(client, tenant, lifecycle_stage="lead")
    deal = await make_deal(
        client, tenant, pipeline, "リード", customer_id=customer["id"], amount=1_200_000
    )
    assert (await move(client, tenant, deal, stage_id(pipeline, "交渉"))).status_code == 200
    same = await move(client, tenant, deal, stage_id(pipeline, "交渉"))
    assert same.json()["version"] == 2  # no move, no new version
    won = await move(client, tenant, deal, stage_id(pipeline, "受注"))
    assert (won.json()["status"], won.json()["closed_at"] is not None) == ("won", True)
    history = await client.get(f"/v1/deals/{deal['id']}/history", headers=tenant.headers)
    moves = [(h["from_stage_id"], h["to_stage_id"]) for h in history.json()]
    assert moves == [
        (None, stage_id(pipeline, "リード")),
        (stage_id(pipeline, "リード"), stage_id(pipeline, "交渉")),
        (stage_id(pipeline, "交渉"), stage_id(pipeline, "受注")),
    ]
    assert all(h["seconds_in_previous_stage"] is not None for h in history.json()[1:])
    events = await read_feed(client, tenant, prefix="deal.", at_least=4)
    assert [e["type"] for e in events] == [
        "deal.created",
        "deal.stage_changed",
        "deal.stage_changed",
        "deal.won",
    ]
    assert events[1]["changes"]["stage_id"] == {
        "old": stage_id(pipeline, "リード"),
        "new": stage_id(pipeline, "交渉"),
    }
    customer_now = await client.get(f"/v1/customers/{customer['id']}", headers=tenant.headers)
    assert customer_now.json()["lifecycle_stage"] == "customer"
    vip = await make_customer(client, tenant, lifecycle_stage="vip")
    second = await make_deal(client, tenant, pipeline, "リード", customer_id=vip["id"])
    await move(client, tenant, second, stage_id(pipeline, "受注"))
    unchanged = await client.get(f"/v1/customers/{vip['id']}", headers=tenant.headers)
    assert unchanged.json()["lifecycle_stage"] == "vip"  # never backward


async def test_deal_validation_and_concurrent_moves(client: AsyncClient, tenant: Tenant) -> None:
    pipeline = await make_pipeline(client, tenant)
    other = await make_pipeline(client, tenant, "別")
    for body, loc in (
        ({"name": "x", "amount": -1}, ["body", "amount"]),
        ({"name": "x", "currency": "YEN"}, ["body", "currency"]),
        (
            {"name": "x", "pipeline_id": pipeline["id"], "stage_id": stage_id(other, "提案")},
            ["body", "stage_id"],
        ),
    ):
        response = await client.post("/v1/deals", json=body, headers=tenant.headers)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["loc"] == loc
    deal = await make_deal(client, tenant, pipeline, "リード")
    path = f"/v1/deals/{deal['id']}"
    answers = await asyncio.gather(
        *(
            client.patch(
                path,
                json={"stage_id": stage_id(pipeline, name)},
                headers={**tenant.headers, "If-Match": '"1"'},
            )
            for name in ("提案", "交渉")
        )
    )
    assert sorted(answer.status_code for answer in answers) in ([200, 412], [200, 409])
    history = await client.get(f"{path}/history", headers=tenant.headers)
    assert len(history.json()) == 2


async def test_board_counts_and_amounts(client: AsyncClient, tenant: Tenant) -> None:
    pipeline = await make_pipeline(client, tenant)
    await make_deal(client, tenant, pipeline, "提案", amount=100_000)
    await make_deal(client, tenant, pipeline, "提案", amount=50_001)
    await make_deal(client, tenant, pipeline, "提案", amount=1_000, currency="USD")
    await make_deal(client, tenant, pipeline, "交渉", amount=300_000)
    board = await client.get(
        f"/v1/pipelines/{pipeline['id']}/board?limit=2", headers=tenant.headers
    )
    columns = {column["stage"]["name"]: column for column in board.json()["stages"]}
    proposal = columns["提案"]
    assert proposal["count"] == 3
    assert proposal["total_amount"] == {"JPY": 150_001, "USD": 1_000}
    assert proposal["weighted_amount"] == {"JPY": 60_000, "USD": 400}  # 150,001 × 40% rounded down
    assert len(proposal["deals"]) == 2
    assert proposal["next_cursor"] is not None
    rest = await client.get(
        f"/v1/deals?stage_id={proposal['stage']['id']}&limit=2&cursor={proposal['next_cursor']}",
        headers=tenant.headers,
    )
    assert len(rest.json()["data"]) == 1
    assert columns["交渉"]["weighted_amount"] == {"JPY": 240_000}
    assert columns["リード"]["count"] == 0


async def test_forecast_matches_a_hand_calculation(client: AsyncClient, tenant: Tenant) -> None:
    pipeline = await make_pipeline(client, tenant)
    owner = await post_created(
        client, tenant, "/v1/users", {"name": "営業", "email": "sales@example.jp", "role": "sales"}
    )
    next_month = (date.today().replace(day=1) + timedelta(days=40)).replace(day=15)
    await make_deal(
        client,
        tenant,
        pipeline,
        "提案",
        amount=1_000_000,
        expected_close_date=next_month.isoformat(),
        owner_id=owner["id"],
    )
    await make_deal(
        client, tenant, pipeline, "交渉", amount=500_000, expected_close_date=next_month.isoformat()
    )
    won = await make_deal(client, tenant, pipeline, "交渉", amount=200_000)
    await move(client, tenant, won, stage_id(pipeline, "受注"))
    base = f"/v1/pipelines/{pipeline['id']}/forecast"
    by_month = (await client.get(base, headers=tenant.headers)).json()
    assert by_month["currency"] == "JPY"
    groups = {group["key"]: group for group in by_month["groups"]}
    month = next_month.strftime("%Y-%m")
    assert groups[month] == {
        "key": month,
        "open_amount": 1_500_000,
        "weighted_amount": 400_000 + 400_000,  # 1,000,000 × 40% + 500,000 × 80%
        "won_amount": 0,
    }
    assert groups[utcnow().strftime("%Y-%m")]["won_amount"] == 200_000
    assert by_month["total"] == {
        "open_amount": 1_500_000,
        "weighted_amount": 800_000,
        "won_amount": 200_000,
    }
    by_owner = (await client.get(f"{base}?group_by=owner", headers=tenant.headers)).json()
    owners = {group["key"]: group["weighted_amount"] for group in by_owner["groups"]}
    assert owners == {owner["id"]: 400_000, "unassigned": 400_000}
    before = await client.get(f"{base}?to={next_month.replace(day=1)}", headers=tenant.headers)
    assert before.json()["total"]["open_amount"] == 0


async def test_funnel_counts_skips_and_backward_moves(client: AsyncClient, tenant: Tenant) -> None:
    pipeline = await make_pipeline(client, tenant)
    lead, proposal, talks, won, lost = (
        stage_id(pipeline, name) for name in ("リード", "提案", "交渉", "受注", "失注")
    )
    a = await make_deal(client, tenant, pipeline, "リード")
    await move(client, tenant, a, talks)  # skips 提案
    await move(client, tenant, a, won)
    b = await make_deal(client, tenant, pipeline, "リード")
    await move(client, tenant, b, proposal)
    await move(client, tenant, b, lead)  # backward: still reached 提案
    c = await make_deal(client, tenant, pipeline, "リード")
    await move(client, tenant, c, lost)
    funnel = (
        await client.get(f"/v1/pipelines/{pipeline['id']}/funnel", headers=tenant.headers)
    ).json()
    reached = {row["stage"]["name"]: row["reached"] for row in funnel["stages"]}
    assert reached == {"リード": 3, "提案": 2, "交渉": 1, "受注": 1}
    first = funnel["stages"][0]
    assert first["conversion_to_next"] == pytest.approx(2 / 3)
    assert (funnel["deals"], funnel["won"], funnel["lost"], funnel["win_rate"]) == (3, 1, 1, 0.5)
    assert first["median_seconds_in_stage"] is not None


async def _spent(tenant: Tenant, deal: dict[str, Any], stage: str, seconds: int) -> None:
    """Time passes: the deal's moves out of `stage` came `seconds` after it entered."""
    async with tenant.database.writer() as session, session.begin():
        await session.execute(
            update(DealStageChange)
            .where(
                DealStageChange.workspace_id == tenant.id,
                DealStageChange.deal_id == UUID(deal["id"]),
                DealStageChange.from_stage_id == UUID(stage),
            )
            .values(seconds_in_previous_stage=seconds)
        )


async def _funnel(
    client: AsyncClient, tenant: Tenant, pipeline: dict[str, Any], query: str = ""
) -> dict[str, Any]:
    answer = await client.get(
        f"/v1/pipelines/{pipeline['id']}/funnel{query}", headers=tenant.headers
    )
    assert answer.status_code == 200, answer.text
    funnel: dict[str, Any] = answer.json()
    return funnel


def _by_stage(funnel: dict[str, Any], *fields: str) -> dict[str, tuple[Any, ...]]:
    return {row["stage"]["name"]: tuple(row[field] for field in fields) for row in funnel["stages"]}


async def test_funnel_time_in_stage_is_the_nearest_rank_median_and_p90(
    client: AsyncClient, tenant: Tenant
) -> None:
    pipeline = await make_pipeline(client, tenant)
    lead, proposal, talks = (stage_id(pipeline, name) for name in ("リード", "提案", "交渉"))
    deals = []
    for seconds in (500, 100, 400, 200, 300):
        deal = await make_deal(client, tenant, pipeline, "リード")
        await move(client, tenant, deal, proposal)
        await _spent(tenant, deal, lead, seconds)
        deals.append(deal)
    for deal, target, seconds in (
        (deals[0], talks, 60),
        (deals[1], talks, 10),
        (deals[2], lead, 30),
    ):
        await move(client, tenant, deal, target)  # the third moves back: its time counts too
        await _spent(tenant, deal, proposal, seconds)
    funnel = await _funnel(client, tenant, pipeline)
    # リード: 100 200 300 400 500 -> ranks ⌈2.5⌉ = 3 and ⌈4.5⌉ = 5; 提案: 10 30 60 -> ⌈1.5⌉ = 2
    # and ⌈2.7⌉ = 3; nobody has left 交渉 yet.
    assert _by_stage(funnel, "median_seconds_in_stage", "p90_seconds_in_stage") == {
        "リード": (300, 500),
        "提案": (30, 60),
        "交渉": (None, None),
        "受注": (None, None),
    }
    assert _by_stage(funnel, "reached", "conversion_to_next") == {
        "リード": (5, 1.0),
        "提案": (5, 0.4),
        "交渉": (2, 0.0),
        "受注": (0, None),
    }
    assert (funnel["deals"], funnel["won"], funnel["lost"], funnel["win_rate"]) == (5, 0, 0, None)


async def test_funnel_takes_the_deals_created_in_the_period_only(
    client: AsyncClient, tenant: Tenant
) -> None:
    pipeline = await make_pipeline(client, tenant)
    lead, talks, won = (stage_id(pipeline, name) for name in ("リード", "交渉", "受注"))
    old = await make_deal(client, tenant, pipeline, "リード")
    await move(client, tenant, old, talks)
    await move(client, tenant, old, won)
    await _spent(tenant, old, lead, 1_000)
    new = await make_deal(client, tenant, pipeline, "リード")
    await move(client, tenant, new, talks)
    await _spent(tenant, new, lead, 7)
    async with tenant.database.writer() as session, session.begin():
        await session.execute(
            update(Deal)
            .where(Deal.workspace_id == tenant.id, Deal.id == UUID(old["id"]))
            .values(created_at=utcnow() - timedelta(days=400))
        )
    today = utcnow().date()
    recent = await _funnel(client, tenant, pipeline, f"?from={today - timedelta(days=30)}")
    assert _by_stage(recent, "reached", "median_seconds_in_stage")["リード"] == (1, 7)
    assert _by_stage(recent, "reached")["受注"] == (0,)
    assert (recent["deals"], recent["won"], recent["win_rate"]) == (1, 0, None)
    earlier = await _funnel(client, tenant, pipeline, f"?to={today - timedelta(days=30)}")
    assert _by_stage(earlier, "reached", "median_seconds_in_stage")["リード"] == (1, 1_000)
    assert (earlier["deals"], earlier["won"], earlier["win_rate"]) == (1, 1, 1.0)
    everything = await _funnel(client, tenant, pipeline)
    assert _by_stage(everything, "reached") == {
        "リード": (2,),
        "提案": (2,),  # skipped, so passed
        "交渉": (2,),
        "受注": (1,),
    }
    assert _by_stage(everything, "median_seconds_in_stage")["リード"] == (7,)
    nobody = await _funnel(client, tenant, pipeline, f"?from={today + timedelta(days=1)}")
    assert [row["reached"] for row in nobody["stages"]] == [0, 0, 0, 0]
    assert (nobody["deals"], nobody["win_rate"]) == (0, None)


async def test_funnel_after_a_stage_is_deleted_and_for_deals_without_history(
    client: AsyncClient, tenant: Tenant
) -> None:
    pipeline = await make_pipeline(client, tenant)
    lead, proposal, talks = (stage_id(pipeline, name) for name in ("リード", "提案", "交渉"))
    stays = await make_deal(client, tenant, pipeline, "リード")
    await move(client, tenant, stays, proposal)
    went_back = await make_deal(client, tenant, pipeline, "リード")
    await move(client, tenant, went_back, proposal)
    await move(client, tenant, went_back, lead)
    deleted = await client.delete(
        f"/v1/pipelines/{pipeline['id']}/stages/{proposal}?move_deals_to={talks}",
        headers=tenant.headers,
    )
    assert deleted.status_code == 204
    # A deal whose history was never kept (data from before it was) counts in the total only.
    untracked = await make_deal(client, tenant, pipeline, "リード")
    async with tenant.database.writer() as session, session.begin():
        await session.execute(
            delete(DealStageChange).where(
                DealStageChange.workspace_id == tenant.id,
                DealStageChange.deal_id == UUID(untracked["id"]),
            )
        )
    funnel = await _funnel(client, tenant, pipeline)
    # Moves into the deleted stage count for no remaining stage: the deal that went back
    # reached リード only; the one moved out of 提案 by the deletion reached 交渉.
    assert _by_stage(funnel, "reached") == {"リード": (2,), "交渉": (1,), "受注": (0,)}
    assert [row["stage"]["position"] for row in funnel["stages"]] == [1, 2, 3]
    assert funnel["deals"] == 3


async def test_deal_moves_appear_in_the_customer_timeline(
    client: AsyncClient, tenant: Tenant
) -> None:
    pipeline = await make_pipeline(client, tenant)
    customer = await make_customer(client, tenant)
    deal = await make_deal(client, tenant, pipeline, "リード", customer_id=customer["id"])
    await move(client, tenant, deal, stage_id(pipeline, "提案"))
    timeline = await client.get(
        f"/v1/customers/{customer['id']}/timeline?kind=deal", headers=tenant.headers
    )
    entries = timeline.json()["data"]
    assert [entry["data"]["to_stage_id"] for entry in entries] == [
        stage_id(pipeline, "提案"),
        stage_id(pipeline, "リード"),
    ]
