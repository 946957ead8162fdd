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
from app.domain.customer.entities import Customer
from bench.data import LIST_SORT

CUSTOMER: Table = Customer.__table__  # type: ignore[assignment]
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
