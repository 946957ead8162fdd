"""Draws the charts of docs/insights.md from a seeded database and saves each endpoint's answer.

    kokyaku seed --customers 5000 --orders          # a year of a demo shop's history
    python scripts/insights_charts.py --workspace default --out docs/insights

Reads the insights through the real API (in process, with a temporary `insights:read` key that
is revoked afterwards) and needs matplotlib (`pip install -e '.[docs]'`).
"""

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from app.config import get_settings
from app.core.context import Actor, Context
from app.domain.access.schemas import ApiKeyCreate
from app.domain.access.scopes import Scope
from app.domain.access.service import ApiKeyService, WorkspaceService
from app.main import create_app

ENDPOINTS = {
    "summary": "/v1/insights/summary",
    "cohorts": "/v1/insights/cohorts",
    "rfm": "/v1/insights/rfm",
    "nps": "/v1/insights/nps",
    "churn-risk": "/v1/insights/churn-risk?limit=5",
    "ltv": "/v1/insights/ltv?limit=5",
    "products": "/v1/insights/products?limit=5",
}


async def fetch(workspace: str) -> dict[str, Any]:
    app = create_app(get_settings().model_copy(update={"dispatcher": "off"}))
    database = app.state.database
    async with database.writer() as session, session.begin():
        found = await WorkspaceService(session, Actor.cli()).by_name(workspace)
        keys = ApiKeyService(session, Context(found.id, Actor.cli()))
        key, secret = await keys.create(
            ApiKeyCreate(name="insights charts", scopes=[Scope.INSIGHTS_READ])
        )
    answers: dict[str, Any] = {}
    try:
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {secret}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://kokyaku") as client:
            for name, path in ENDPOINTS.items():
                response = await client.get(path, headers=headers)
                response.raise_for_status()
                answers[name] = response.json()
    finally:
        async with database.writer() as session, session.begin():
            await ApiKeyService(session, Context(found.id, Actor.cli())).revoke(key.id)
        await database.dispose()
    return answers


def cohort_chart(cohorts: dict[str, Any], path: Path) -> None:
    rows = cohorts["cohorts"]
    width = max(len(row["periods"]) for row in rows)
    grid = [
        [cell["retention"] if cell["period"] else float("nan") for cell in row["periods"]]
        + [float("nan")] * (width - len(row["periods"]))
        for row in rows
    ]
    figure, axes = plt.subplots(figsize=(9, 5))
    image = axes.imshow(grid, cmap="Blues", vmin=0, aspect="auto")
    axes.set_yticks(range(len(rows)), [f"{r['cohort']} ({r['customers']})" for r in rows])
    axes.set_xticks(range(width))
    axes.set_xlabel("Months since first order")
    axes.set_title("Retention by first-order month (share ordering again)")
    figure.colorbar(image, ax=axes, format=lambda value, _: f"{value:.0%}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def rfm_chart(rfm: dict[str, Any], path: Path) -> None:
    counts = [[0] * 5 for _ in range(5)]
    for cell in rfm["grid"]:
        counts[5 - cell["frequency"]][cell["recency"] - 1] = cell["customers"]
    figure, axes = plt.subplots(figsize=(6.5, 5))
    image = axes.imshow(counts, cmap="Greens")
    axes.set_xticks(range(5), [str(r) for r in range(1, 6)])
    axes.set_yticks(range(5), [str(f) for f in range(5, 0, -1)])
    axes.set_xlabel("Recency score")
    axes.set_ylabel("Frequency score")
    axes.set_title("Customers in the RFM grid")
    for row in range(5):
        for column in range(5):
            axes.text(column, row, counts[row][column], ha="center", va="center", fontsize=9)
    figure.colorbar(image, ax=axes)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def nps_chart(nps: dict[str, Any], path: Path) -> None:
    periods = nps["periods"]
    labels = [p["period"] for p in periods]
    figure, axes = plt.subplots(figsize=(9, 4))
    bottom = [0] * len(periods)
    for name, colour in (
        ("detractors", "#d62728"),
        ("passives", "#bbbbbb"),
        ("promoters", "#2ca02c"),
    ):
        values = [p[name] for p in periods]
        axes.bar(labels, values, bottom=bottom, color=colour, label=name)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    line = axes.twinx()
    line.plot(labels, [p["nps"] for p in periods], color="black", marker="o", label="NPS")
    line.set_ylim(-100, 100)
    line.set_ylabel("NPS")
    axes.set_ylabel("Responses")
    axes.legend(loc="upper left")
    axes.set_title("Survey answers and NPS by month")
    axes.tick_params(axis="x", rotation=45)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def ltv_chart(ltv: dict[str, Any], path: Path) -> None:
    names = ["p25", "p50", "p75", "p90"]
    figure, axes = plt.subplots(figsize=(7, 4))
    for offset, (label, data) in enumerate(
        (
            ("historical", ltv["historical"].get("JPY")),
            ("predicted 12 months", ltv["predicted_12m"].get("JPY")),
        )
    ):
        if data:
            axes.bar(
                [i + offset * 0.4 for i in range(4)],
                [data[n] for n in names],
                width=0.4,
                label=label,
            )
    axes.set_xticks([i + 0.2 for i in range(4)], names)
    axes.set_ylabel("JPY")
    axes.set_title("Customer value: spent so far and predicted for the next 12 months")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def products_chart(products: dict[str, Any], path: Path) -> None:
    top = products["top_products_by_revenue"]
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.barh(
        [p["sku"] for p in reversed(top)], [p["revenue"].get("JPY", 0) for p in reversed(top)]
    )
    axes.set_xlabel("Revenue (JPY)")
    axes.set_title("Top products by revenue")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", default="default")
    parser.add_argument("--out", default="docs/insights", type=Path)
    args = parser.parse_args()
    answers = asyncio.run(fetch(args.workspace))
    args.out.mkdir(parents=True, exist_ok=True)
    for name, answer in answers.items():
        text = json.dumps(answer, ensure_ascii=False, indent=2) + "\n"
        (args.out / f"{name}.json").write_text(text, encoding="utf-8")
    cohort_chart(answers["cohorts"], args.out / "cohorts.png")
    rfm_chart(answers["rfm"], args.out / "rfm.png")
    nps_chart(answers["nps"], args.out / "nps.png")
    ltv_chart(answers["ltv"], args.out / "ltv.png")
    products_chart(answers["products"], args.out / "products.png")
    print(f"Wrote {len(answers)} answers and 5 charts to {args.out}")


if __name__ == "__main__":
    main()
