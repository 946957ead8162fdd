"""create_app(): settings, storage, middleware, error handlers, routers and lifespan."""

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.middleware.cors import CORSMiddleware

from app.api import health
from app.api import v1 as api_v1
from app.api.auth import Authenticator
from app.api.errors import Problem, install_error_handlers
from app.api.middleware import (
    BodyRule,
    IdempotencyMiddleware,
    RateLimitMiddleware,
    RequestBodyMiddleware,
    RequestContextMiddleware,
)
from app.api.ratelimit import create_rate_limiter
from app.config import Settings, get_settings
from app.core.idempotency import IdempotencyStore
from app.db.session import create_database
from app.domain.imports.service import ImportRunner
from app.domain.insight.scoring import keep_fresh
from app.domain.interaction.service import announce_due_tasks
from app.domain.segment.follow import install as follow_customer_changes
from app.domain.segment.worker import SegmentWorker
from app.domain.webhook.dispatcher import Dispatcher
from app.domain.workflow.engine import WorkflowEngine

logger = logging.getLogger("kokyaku")

API_DESCRIPTION = """\
Kokyaku is a headless CRM: customers, interactions, purchases, pipelines and segments behind one
REST API, whose every change is an event.

Authenticate with `Authorization: Bearer kky_...`. Errors are RFC 9457 `application/problem+json`.
Lists page with `limit` and `cursor`; writes take `Idempotency-Key` (POST) and `If-Match` (PATCH,
DELETE).
"""
MAINTENANCE_INTERVAL_SECONDS = 60


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    follow_customer_changes()
    database = create_database(settings)
    authenticator = Authenticator(database, ttl=settings.api_key_cache_seconds)
    limiter = create_rate_limiter(
        settings.redis_url, settings.rate_limit, settings.rate_limit_window_seconds
    )
    workflows = WorkflowEngine(database.writer, readers=database.reader)
    dispatcher = Dispatcher(
        database.writer,
        allow_private=settings.webhook_allow_private,
        timeout=settings.webhook_timeout_seconds,
        listen_engine=database.write_engine if not settings.is_sqlite else None,
        readers=database.reader,
        companions=[workflows.run_once],
    )
    segment_worker = SegmentWorker(
        database.writer, sweep_every=timedelta(seconds=settings.segment_sweep_seconds)
    )
    idempotency = IdempotencyStore(
        database.writer, timedelta(seconds=settings.idempotency_ttl_seconds)
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        maintenance = asyncio.create_task(
            _maintain(database.writer, idempotency, ImportRunner(database.writer))
        )
        background = [maintenance]
        if settings.dispatcher == "on":
            background.append(asyncio.create_task(dispatcher.run()))
            background.append(asyncio.create_task(segment_worker.run()))
            if settings.insights_refresh_seconds:
                refresh = timedelta(seconds=settings.insights_refresh_seconds)
                background.append(asyncio.create_task(keep_fresh(database.writer, refresh)))
        # What startup built lives as long as the process: keep it out of every collection.
        gc.freeze()
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await limiter.close()
            await database.dispose()

    app = FastAPI(
        title="Kokyaku",
        version="1.0.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.authenticator = authenticator
    app.state.dispatcher = dispatcher
    app.state.workflows = workflows
    app.state.segment_worker = segment_worker

    install_error_handlers(app)
    # The routes themselves, not `include_router`: FastAPI matches an included router branch by
    # branch on every request, which took a third of a simple GET's CPU for the routers
    # included last. The routers' routes are complete (prefix, tags, responses) without it.
    for router in [health.router, *api_v1.routers]:
        app.router.routes.extend(router.routes)
    _install_docs(app)
    _declare_problem_schema(app)

    # Added innermost first: a request passes request context, CORS, body rules, rate limit,
    # then idempotency.
    app.add_middleware(IdempotencyMiddleware, authenticator=authenticator, store=idempotency)
    app.add_middleware(RateLimitMiddleware, limiter=limiter)
    app.add_middleware(
        RequestBodyMiddleware,
        rules=[
            BodyRule("/v1/imports", settings.max_import_bytes, multipart=True),
            BodyRule("/v1/", settings.max_body_bytes),
        ],
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "If-Match",
                "X-Request-Id",
            ],
            expose_headers=[
                "ETag",
                "Link",
                "Location",
                "X-Request-Id",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "Retry-After",
            ],
        )
    app.add_middleware(RequestContextMiddleware, access_log=settings.access_log)
    return app


async def _maintain(
    sessions: async_sessionmaker[AsyncSession],
    idempotency: IdempotencyStore,
    imports: ImportRunner,
) -> None:
    """Housekeeping: expired idempotency records, abandoned import jobs, tasks falling due."""
    while True:
        try:
            purged = await idempotency.purge_expired()
            resumed = await imports.resume_abandoned()
            async with sessions() as session, session.begin():
                announced = await announce_due_tasks(session)
            if purged or resumed or announced:
                logger.info(
                    "maintenance",
                    extra={"purged": purged, "imports_resumed": resumed, "tasks_due": announced},
                )
        except Exception:
            logger.exception("maintenance failed")
        await asyncio.sleep(MAINTENANCE_INTERVAL_SECONDS)


def _install_docs(app: FastAPI) -> None:
    """Swagger UI served from the installed package, so /docs works without internet access."""
    app.mount(
        "/docs-assets",
        StaticFiles(directory=swagger_ui_bundle.swagger_ui_path),
        name="docs-assets",
    )

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Kokyaku API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )


def _declare_problem_schema(app: FastAPI) -> None:
    """Adds the Problem schema that every error response refers to."""
    original = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            schema = original()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["Problem"] = Problem.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            components.update(components["Problem"].pop("$defs", {}))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
