"""The baseline every ratio is taken against: bare FastAPI reading one row, nothing else.

Same driver and the same SQLAlchemy async engine settings as the app (`create_database`), but no
authentication, middleware, ORM entities or response models. Started by the runner with
`uvicorn bench.bare_app:create_bare_app --factory`, configured by `KOKYAKU_DATABASE_URL`.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from fastapi import FastAPI, HTTPException
from sqlalchemy import Boolean, DateTime, Uuid, bindparam, text

from app.config import Settings
from app.db.session import create_database

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

    return app
