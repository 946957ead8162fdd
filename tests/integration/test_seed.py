"""Seeding a workspace: the demo data goes in through the services and reads back over the API."""

import unicodedata
from typing import Any

import pytest
from httpx import AsyncClient

from app.core.clock import utcnow
from app.core.context import Actor, Context
from app.core.errors import ValidationFailed
from app.seed import SeedSummary, half_width, seed_customers, seed_workspace
from tests.conftest import Tenant


async def _all(client: AsyncClient, tenant: Tenant, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, params=params, headers=tenant.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def test_seeded_workspace_reads_back_over_the_api(
    client: AsyncClient, tenant: Tenant
) -> None:
    seen: list[int] = []
    async with tenant.database.writer() as session, session.begin():
        summary = await seed_workspace(
            session,
            Context(tenant.id, Actor.cli()),
            customers=300,
            companies=20,
            seed=7,
            batch_size=128,
            progress=seen.append,
        )
    assert summary == SeedSummary(companies=20, customers_created=300)
    assert seen == [128, 128, 44]

    companies = await _all(client, tenant, "/v1/companies")
    assert len(companies) == 20
    customers = await _all(client, tenant, "/v1/customers")
    assert len(customers) == 300
    assert {c["external_ids"]["shop"] for c in customers} == {f"u-{n}" for n in range(1, 301)}
    contacts = [customer for customer in customers if customer["company_id"] is not None]
    assert contacts
    assert {contact["company_id"] for contact in contacts} <= {c["id"] for c in companies}
    assert all(phone.startswith("+81") for c in customers for phone in c["phones"])

    # Kana search finds people whichever way the reading is typed.
    person = next(c for c in customers if c["family_name_kana"])
    reading = unicodedata.normalize("NFKC", person["family_name_kana"])
    found: list[set[str]] = []
    for spelling in (reading, half_width(reading), _hiragana(reading)):
        response = await client.get(
            "/v1/customers", params={"q": spelling, "limit": 200}, headers=tenant.headers
        )
        assert response.status_code == 200, response.text
        found.append({customer["id"] for customer in response.json()["data"]})
    assert person["id"] in found[0]
    assert found[0] == found[1] == found[2]


async def test_slices_extend_the_workspace_and_reseeding_a_slice_updates_it(
    tenant: Tenant,
) -> None:
    context = Context(tenant.id, Actor.cli())
    for start in (0, 60):
        async with tenant.database.writer() as session, session.begin():
            summary = await seed_customers(session, context, count=60, start=start)
        assert summary == SeedSummary(customers_created=60)
    async with tenant.database.writer() as session, session.begin():
        again = await seed_customers(session, context, count=60, start=60)
    assert again == SeedSummary(customers_updated=60)


async def test_a_workspace_that_rejects_the_data_fails_the_seed(
    client: AsyncClient, tenant: Tenant
) -> None:
    response = await client.patch(
        "/v1/workspace", json={"lifecycle_stages": ["new", "active"]}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    with pytest.raises(ValidationFailed, match="lifecycle_stage"):
        async with tenant.database.writer() as session, session.begin():
            await seed_customers(session, Context(tenant.id, Actor.cli()), count=10)
    assert await _all(client, tenant, "/v1/customers") == []


def _hiragana(katakana: str) -> str:
    return "".join(chr(ord(char) - 0x60) if "ァ" <= char <= "ヶ" else char for char in katakana)


async def test_seeded_history_gives_insights_worth_showing(
    client: AsyncClient, tenant: Tenant
) -> None:
    from app.domain.insight.scoring import recompute
    from app.seed_history import seed_orders

    context = Context(tenant.id, Actor.cli())
    async with tenant.database.writer() as session, session.begin():
        await seed_customers(session, context, count=300, seed=3)
        history = await seed_orders(session, context, customers=300, seed=3)
        await recompute(session, tenant.id, utcnow())
    assert history.orders > 300
    assert history.refunds > 0
    assert history.cancellations > 0
    assert history.surveys > 0
    summary = (await client.get("/v1/insights/summary", headers=tenant.headers)).json()
    # Cancelled orders never count; a refund of a one-unit order's only line empties it.
    kept = history.orders - history.cancellations
    assert kept - history.refunds <= summary["orders"] <= kept
    assert 0 < summary["repeat_rate"] < 1
    assert summary["nps_responses"] == history.surveys
    assert summary["average_predicted_ltv"]["JPY"] > 0
    products = (await client.get("/v1/insights/products", headers=tenant.headers)).json()
    assert products["bought_together"][0]["lift"] > 1  # baskets follow affinities
    rfm = (await client.get("/v1/insights/rfm", headers=tenant.headers)).json()
    assert sum(1 for group in rfm["groups"] if group["customers"]) >= 5
