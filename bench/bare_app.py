"""The baseline every ratio is taken against: bare FastAPI running the query, nothing else.

Same driver and the same SQLAlchemy async engine settings as the app (`create_database`), but no
authentication, middleware, ORM entities or response models: Core statements on the app's tables,
rows returned as JSON. There are no API keys, so customer paths carry the workspace
(`/w/{workspace_id}/customers...`). Started by the runner with
`uvicorn bench.bare_app:create_bare_app --factory`, configured by `KOKYAKU_DATABASE_URL`.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any
from uuid import UUID

import orjson
from fastapi import FastAPI, HTTPException, Request
from sqlalchemy import (
    Boolean,
    DateTime,
    Select,
    Table,
    Uuid,
    bindparam,
    case,
    func,
    insert,
    literal,
    select,
    text,
    tuple_,
)

from app.config import Settings
from app.core.clock import utcnow
from app.core.cursors import decode_cursor, encode_cursor
from app.core.ids import uuid7
from app.core.text import like_pattern, search_form
from app.db.session import create_database
from app.domain.commerce.entities import Order, OrderLine
from app.domain.customer.entities import Customer
from app.domain.interaction.entities import Interaction
from app.domain.pipeline.entities import Deal, DealStageChange, Stage
from bench.data import LIST_SORT

CUSTOMER: Table = Customer.__table__  # type: ignore[assignment]
ORDER: Table = Order.__table__  # type: ignore[assignment]
ORDER_LINE: Table = OrderLine.__table__  # type: ignore[assignment]
INTERACTION: Table = Interaction.__table__  # type: ignore[assignment]
DEAL: Table = Deal.__table__  # type: ignore[assignment]
STAGE: Table = Stage.__table__  # type: ignore[assignment]
CHANGE: Table = DealStageChange.__table__  # type: ignore[assignment]
BOARD_DEALS = 20
# The segment preview scenario's filter (lapsed big spenders), as SQL written by hand.
_LAPSED_BIG_SPENDERS = """
FROM customer c
WHERE c.workspace_id = :w AND c.total_spent > 50000
  AND (SELECT count(*) FROM "order" o
       WHERE o.workspace_id = c.workspace_id AND o.customer_id = c.id
         AND o.status IN ('completed', 'partially_refunded')) >= 2
  AND NOT EXISTS (SELECT 1 FROM "order" o
       WHERE o.workspace_id = c.workspace_id AND o.customer_id = c.id
         AND o.status IN ('completed', 'partially_refunded')
         AND o.occurred_at >= now() - interval '90 days')
"""
PREVIEW_COUNT_SQL = text("SELECT count(*) " + _LAPSED_BIG_SPENDERS)
PREVIEW_SAMPLE_SQL = text(
    "SELECT c.* " + _LAPSED_BIG_SPENDERS + " ORDER BY c.created_at DESC, c.id DESC LIMIT 10"
)
# The pipeline reports as SQL aggregates (PostgreSQL only): what the database alone costs.
# The insight scenarios' figures, as plain SQL: revenue and orders, buyers and repeat buyers
# (summary); customers and revenue by first-order month and month of order (cohorts); the
# stored RFM grid (rfm).
INSIGHT_SQL = {
    "summary": [
        text(
            "SELECT currency, count(*) AS orders, sum(total - refunded_total) AS revenue "
            "FROM \"order\" WHERE workspace_id = :w AND status IN ('completed', "
            "'partially_refunded') AND occurred_at >= :since GROUP BY currency"
        ),
        text(
            "SELECT count(*) AS active, sum(CASE WHEN n >= 2 THEN 1 ELSE 0 END) AS repeat "
            'FROM (SELECT customer_id, count(*) AS n FROM "order" WHERE workspace_id = :w '
            "AND status IN ('completed', 'partially_refunded') AND occurred_at >= :since "
            "AND customer_id IS NOT NULL GROUP BY customer_id) AS buyers"
        ),
        text("SELECT count(*) AS customers FROM customer WHERE workspace_id = :w"),
    ],
    "cohorts": [
        text(
            "SELECT to_char(c.first_order_at, 'YYYY-MM') AS cohort, "
            "to_char(o.occurred_at, 'YYYY-MM') AS month, count(DISTINCT o.customer_id) AS n, "
            'sum(o.total - o.refunded_total) AS revenue FROM "order" o JOIN customer c '
            "ON c.workspace_id = o.workspace_id AND c.id = o.customer_id "
            "WHERE o.workspace_id = :w AND o.status IN ('completed', 'partially_refunded') "
            "AND c.first_order_at >= :since GROUP BY 1, 2"
        ),
    ],
    "rfm": [
        text(
            "SELECT rfm_recency, rfm_frequency, spent_currency, count(*) AS n, "
            "sum(total_spent) AS revenue FROM customer WHERE workspace_id = :w "
            "AND rfm_recency IS NOT NULL GROUP BY 1, 2, 3"
        ),
    ],
}

FORECAST_SQL = text(
    "SELECT d.currency, d.status, to_char(CASE WHEN d.status = 'won' THEN d.closed_at "
    "ELSE d.expected_close_date END, 'YYYY-MM') AS month, sum(d.amount) AS amount, "
    "sum(d.amount * s.probability) / 100 AS weighted FROM deal d JOIN stage s "
    "ON s.workspace_id = d.workspace_id AND s.id = d.stage_id "
    "WHERE d.workspace_id = :w AND d.pipeline_id = :p AND d.status IN ('open', 'won') "
    "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
).bindparams(bindparam("w", type_=Uuid()), bindparam("p", type_=Uuid()))
# The funnel over every deal of the pipeline (no period), as the app computes it: the furthest
# stage position each deal reached (lost reaches nothing; built from the stages in the route), the
# nearest-rank median and p90 of the seconds spent in each stage before leaving it, and the
# deals by status.
TIME_IN_STAGE_SQL = text(
    "SELECT from_stage_id AS stage, "
    "percentile_disc(0.5) WITHIN GROUP (ORDER BY seconds_in_previous_stage) AS median, "
    "percentile_disc(0.9) WITHIN GROUP (ORDER BY seconds_in_previous_stage) AS p90 "
    "FROM deal_stage_change WHERE workspace_id = :w AND pipeline_id = :p "
    "AND from_stage_id IS NOT NULL AND seconds_in_previous_stage IS NOT NULL "
    "GROUP BY from_stage_id"
).bindparams(bindparam("w", type_=Uuid()), bindparam("p", type_=Uuid()))
STATUS_SQL = text(
    "SELECT status, count(*) AS deals FROM deal WHERE workspace_id = :w AND pipeline_id = :p "
    "GROUP BY status"
).bindparams(bindparam("w", type_=Uuid()), bindparam("p", type_=Uuid()))
PAGE_SIZE = 50

# Typed columns so that both databases answer the same JSON (SQLite keeps UUIDs and timestamps as
# text); the driver-level work is what any real endpoint reading this row would do.
USER_BY_ID = (
    text(
        "SELECT id, name, email, role, active, version, created_at, updated_at "
        'FROM "user" WHERE id = :id'
    )
    .bindparams(bindparam("id", type_=Uuid()))
    .columns(
        id=Uuid(),
        active=Boolean(),
        created_at=DateTime(timezone=True),
        updated_at=DateTime(timezone=True),
    )
)


def create_bare_app(settings: Settings | None = None) -> FastAPI:
    database = create_database(settings or Settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await database.dispose()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Only for the runner to know the server is up; not measured."""
        return {"status": "ok"}

    @app.get("/users/{user_id}")
    async def get_user(user_id: UUID) -> dict[str, Any]:
        async with database.reader() as session:
            result = await session.execute(USER_BY_ID, {"id": user_id})
            row = result.mappings().one_or_none()
        if row is None:
            raise HTTPException(status_code=404)
        return dict(row)

    @app.get("/w/{workspace_id}/customers/{customer_id}")
    async def get_customer(workspace_id: UUID, customer_id: UUID) -> dict[str, Any]:
        stmt = select(CUSTOMER).where(
            CUSTOMER.c.workspace_id == workspace_id, CUSTOMER.c.id == customer_id
        )
        async with database.reader() as session:
            row = (await session.execute(stmt)).mappings().one_or_none()
        if row is None:
            raise HTTPException(status_code=404)
        return dict(row)

    @app.get("/w/{workspace_id}/customers")
    async def list_customers(
        workspace_id: UUID,
        q: str | None = None,
        lifecycle_stage: str | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """`?q=`: the first page of a substring search by creation; else a page of a stage by
        `-updated_at` from `cursor` (a cursor of our app's, so both start at the same place)."""
        stmt = select(CUSTOMER).where(CUSTOMER.c.workspace_id == workspace_id)
        if q is not None:
            pattern = like_pattern(search_form(q))
            stmt = stmt.where(CUSTOMER.c.search_text.like(pattern, escape="\\")).order_by(
                CUSTOMER.c.created_at, CUSTOMER.c.id
            )
            rows = await _page(stmt)
            return {"data": rows[:PAGE_SIZE], "next_cursor": None}
        stmt = stmt.where(CUSTOMER.c.lifecycle_stage == lifecycle_stage).order_by(
            CUSTOMER.c.updated_at.desc(), CUSTOMER.c.id.desc()
        )
        if cursor is not None:
            updated_at, customer_id = decode_cursor(cursor, LIST_SORT)
            key = tuple_(
                literal(datetime.fromisoformat(updated_at), CUSTOMER.c.updated_at.type),
                literal(UUID(customer_id), CUSTOMER.c.id.type),
            )
            stmt = stmt.where(tuple_(CUSTOMER.c.updated_at, CUSTOMER.c.id) < key)
        rows = await _page(stmt)
        next_cursor = None
        if len(rows) > PAGE_SIZE:
            last = rows[PAGE_SIZE - 1]
            next_cursor = encode_cursor(
                LIST_SORT, [last["updated_at"].isoformat(), str(last["id"])]
            )
        return {"data": rows[:PAGE_SIZE], "next_cursor": next_cursor}

    async def _page(stmt: Select[Any]) -> list[dict[str, Any]]:
        async with database.reader() as session:
            result = await session.execute(stmt.limit(PAGE_SIZE + 1))
            return [dict(row) for row in result.mappings()]

    @app.post("/w/{workspace_id}/customers/batch")
    async def insert_customers(workspace_id: UUID, request: Request) -> dict[str, int]:
        """Inserts each item as a new customer row, as given: no validation, identities or
        events, so the same body costs the least a driver can do with it."""
        items = orjson.loads(await request.body())["items"]
        now = utcnow()
        rows = [_customer_row(workspace_id, item, now) for item in items]
        async with database.writer() as session, session.begin():
            await session.execute(insert(CUSTOMER), rows)
        return {"inserted": len(rows)}

    @app.post("/w/{workspace_id}/orders/batch")
    async def insert_orders(workspace_id: UUID, request: Request) -> dict[str, int]:
        """Each order event as an order row and its line rows, as given: no customers,
        dedup, metrics or domain events."""
        items = orjson.loads(await request.body())["items"]
        return {"inserted": await _insert_orders(workspace_id, items)}

    @app.post("/w/{workspace_id}/orders", status_code=201)
    async def insert_order(workspace_id: UUID, request: Request) -> dict[str, int]:
        event = orjson.loads(await request.body())
        return {"inserted": await _insert_orders(workspace_id, [event])}

    async def _insert_orders(workspace_id: UUID, events: list[dict[str, Any]]) -> int:
        now = utcnow()
        orders: list[dict[str, Any]] = []
        lines: list[dict[str, Any]] = []
        for event in events:
            order, order_id = event["order"], uuid7()
            orders.append(
                {
                    "workspace_id": workspace_id,
                    "id": order_id,
                    "order_id": order["order_id"],
                    "customer_id": None,
                    "currency": order["currency"],
                    "channel": order["channel"],
                    "store_id": None,
                    "lines": order["lines"],
                    "discount": 0,
                    "tax": 0,
                    "total": sum(ln["quantity"] * ln["unit_price"] for ln in order["lines"]),
                    "refunded_total": 0,
                    "status": "completed",
                    "occurred_at": datetime.fromisoformat(event["occurred_at"]),
                    "cancelled_at": None,
                    "created_at": now,
                    "updated_at": now,
                    "version": 1,
                }
            )
            lines += [
                {
                    "workspace_id": workspace_id,
                    "order_id": order_id,
                    "line_no": number,
                    "sku": line["sku"],
                    "name": line.get("name"),
                    "category": line.get("category"),
                    "quantity": line["quantity"],
                    "unit_price": line["unit_price"],
                    "refunded_quantity": 0,
                }
                for number, line in enumerate(order["lines"], start=1)
            ]
        async with database.writer() as session, session.begin():
            await session.execute(insert(ORDER), orders)
            await session.execute(insert(ORDER_LINE), lines)
        return len(orders)

    @app.get("/w/{workspace_id}/customers/{customer_id}/interactions")
    async def customer_interactions(
        workspace_id: UUID, customer_id: UUID, limit: int = 50
    ) -> dict[str, Any]:
        stmt = (
            select(INTERACTION)
            .where(
                INTERACTION.c.workspace_id == workspace_id,
                INTERACTION.c.customer_id == customer_id,
            )
            .order_by(INTERACTION.c.occurred_at.desc(), INTERACTION.c.id.desc())
            .limit(limit + 1)
        )
        async with database.reader() as session:
            rows = [dict(row) for row in (await session.execute(stmt)).mappings()]
        return {"data": rows[:limit]}

    @app.get("/w/{workspace_id}/pipelines/{pipeline_id}/board")
    async def board(workspace_id: UUID, pipeline_id: UUID) -> dict[str, Any]:
        async with database.reader() as session:
            stages = (
                await session.execute(
                    select(STAGE.c.id, STAGE.c.name)
                    .where(STAGE.c.workspace_id == workspace_id, STAGE.c.pipeline_id == pipeline_id)
                    .order_by(STAGE.c.position)
                )
            ).all()
            totals = {
                row.stage_id: (row.count, row.total)
                for row in await session.execute(
                    select(
                        DEAL.c.stage_id,
                        func.count().label("count"),
                        func.sum(DEAL.c.amount).label("total"),
                    )
                    .where(DEAL.c.workspace_id == workspace_id, DEAL.c.pipeline_id == pipeline_id)
                    .group_by(DEAL.c.stage_id)
                )
            }
            columns = []
            for stage in stages:
                deals = await session.execute(
                    select(DEAL)
                    .where(DEAL.c.workspace_id == workspace_id, DEAL.c.stage_id == stage.id)
                    .order_by(DEAL.c.created_at, DEAL.c.id)
                    .limit(BOARD_DEALS + 1)
                )
                count, total = totals.get(stage.id, (0, 0))
                columns.append(
                    {
                        "stage": stage.name,
                        "count": count,
                        "total": total,
                        "deals": [dict(row) for row in deals.mappings()][:BOARD_DEALS],
                    }
                )
        return {"stages": columns}

    @app.get("/w/{workspace_id}/pipelines/{pipeline_id}/forecast")
    async def forecast(workspace_id: UUID, pipeline_id: UUID) -> dict[str, Any]:
        async with database.reader() as session:
            rows = await session.execute(FORECAST_SQL, {"w": workspace_id, "p": pipeline_id})
            return {"groups": [dict(row) for row in rows.mappings()]}

    @app.get("/w/{workspace_id}/pipelines/{pipeline_id}/funnel")
    async def funnel(workspace_id: UUID, pipeline_id: UUID) -> dict[str, Any]:
        ids = {"w": workspace_id, "p": pipeline_id}
        async with database.reader() as session:
            stages = (
                await session.execute(
                    select(STAGE.c.id, STAGE.c.position, STAGE.c.kind)
                    .where(STAGE.c.workspace_id == workspace_id, STAGE.c.pipeline_id == pipeline_id)
                    .order_by(STAGE.c.position)
                )
            ).all()
            reached = case(
                {stage.id: stage.position for stage in stages if stage.kind != "lost"},
                value=CHANGE.c.to_stage_id,
            )
            per_deal = (
                select(func.max(reached).label("furthest"))
                .where(CHANGE.c.workspace_id == workspace_id, CHANGE.c.pipeline_id == pipeline_id)
                .group_by(CHANGE.c.deal_id)
                .subquery()
            )
            furthest = await session.execute(
                select(per_deal.c.furthest, func.count().label("deals"))
                .where(per_deal.c.furthest.is_not(None))
                .group_by(per_deal.c.furthest)
            )
            times = await session.execute(TIME_IN_STAGE_SQL, ids)
            statuses = await session.execute(STATUS_SQL, ids)
            return {
                "furthest": [dict(row) for row in furthest.mappings()],
                "time_in_stage": [dict(row) for row in times.mappings()],
                "statuses": [dict(row) for row in statuses.mappings()],
            }

    @app.post("/w/{workspace_id}/segments/preview")
    async def segment_preview(workspace_id: UUID) -> dict[str, Any]:
        async with database.reader() as session:
            count = await session.scalar(PREVIEW_COUNT_SQL, {"w": workspace_id})
            rows = await session.execute(PREVIEW_SAMPLE_SQL, {"w": workspace_id})
            return {"count": count, "sample": [dict(row) for row in rows.mappings()]}

    @app.get("/w/{workspace_id}/insights/{report}")
    async def insight(workspace_id: UUID, report: str, since: datetime) -> dict[str, Any]:
        answers = []
        async with database.reader() as session:
            for statement in INSIGHT_SQL[report]:
                rows = await session.execute(statement, {"w": workspace_id, "since": since})
                answers.append([dict(row) for row in rows.mappings()])
        return {"results": answers}

    return app


def _customer_row(workspace_id: UUID, item: dict[str, Any], now: datetime) -> dict[str, Any]:
    family, given = item.get("family_name"), item.get("given_name")
    birthday, company_id = item.get("birthday"), item.get("company_id")
    return {
        "workspace_id": workspace_id,
        "id": uuid7(),
        "family_name": family,
        "given_name": given,
        "family_name_kana": item.get("family_name_kana"),
        "given_name_kana": item.get("given_name_kana"),
        "display_name": " ".join(part for part in (family, given) if part),
        "emails": item.get("emails", []),
        "phones": item.get("phones", []),
        "external_ids": item.get("external_ids", {}),
        "address": item.get("address"),
        "birthday": date.fromisoformat(birthday) if birthday else None,
        "company_id": UUID(company_id) if company_id else None,
        "owner_id": None,
        "lifecycle_stage": item.get("lifecycle_stage"),
        "tags": item.get("tags", []),
        "consents": item.get("consents", {}),
        "attributes": {},
        "search_text": "",
        "name_key": None,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }
