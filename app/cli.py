"""The `kokyaku` command: serve, worker, migrate, workspace, apikey, import, seed, metrics,
openapi."""

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings, get_settings
from app.core.context import Actor, Context
from app.core.errors import AppError
from app.db import migrations
from app.db.session import create_database
from app.domain.access.schemas import ApiKeyCreate
from app.domain.access.scopes import Scope
from app.domain.access.service import DEFAULT_WORKSPACE, ApiKeyService, WorkspaceService
from app.domain.imports.entities import ImportJob
from app.domain.imports.rows import Encoding, ImportFormat, ImportObject, chunks, read_rows
from app.domain.imports.service import ImportRunner, ImportService
from app.domain.segment.follow import install as follow_customer_changes
from app.logging import configure_logging

T = TypeVar("T")
DEFAULT_OPENAPI_PATH = Path("openapi/openapi.json")


def _in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def run() -> T:
        database = create_database(settings, pooled=False)
        try:
            async with database.writer() as session, session.begin():
                return await work(session)
        finally:
            await database.dispose()

    return asyncio.run(run())


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> None:
    migrations.upgrade(settings.database_url)
    print("Database migrated to the latest revision.", file=sys.stderr)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    secret = _in_transaction(settings, lambda s: WorkspaceService(s, Actor.cli()).bootstrap())
    if secret is not None:
        print(
            "Created the workspace 'default' and its admin API key (shown only this once):\n"
            f"\n    {secret}\n\n"
            f'Try: curl -H "Authorization: Bearer {secret}" '
            f"http://{args.host}:{args.port}/v1/users\n",
            flush=True,
        )
    configure_logging(settings.log_level)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        lifespan="on",
        proxy_headers=True,
    )


def cmd_worker(settings: Settings, _args: argparse.Namespace) -> None:
    """Delivers webhooks, runs workflows, keeps segments current and insight scores fresh until
    SIGTERM or Ctrl-C; the delivery round in progress finishes first."""
    import gc
    import signal

    from app.domain.insight.scoring import keep_fresh
    from app.domain.segment.worker import SegmentWorker
    from app.domain.webhook.dispatcher import Dispatcher
    from app.domain.workflow.engine import WorkflowEngine

    configure_logging(settings.log_level)

    async def work() -> None:
        database = create_database(settings)
        dispatcher = Dispatcher(
            database.writer,
            allow_private=settings.webhook_allow_private,
            timeout=settings.webhook_timeout_seconds,
            listen_engine=database.write_engine if not settings.is_sqlite else None,
            readers=database.reader,
            companions=[WorkflowEngine(database.writer, readers=database.reader).run_once],
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        # What start-up built lives as long as the process: keep it out of every collection
        # (deliveries allocate a lot, and each collection would walk it all again).
        gc.freeze()
        segments = asyncio.create_task(
            SegmentWorker(
                database.writer, sweep_every=timedelta(seconds=settings.segment_sweep_seconds)
            ).run()
        )
        insights = (
            asyncio.create_task(
                keep_fresh(
                    database.writer, timedelta(seconds=settings.insights_refresh_seconds), stop
                )
            )
            if settings.insights_refresh_seconds
            else None
        )
        try:
            await dispatcher.run(stop)
        finally:
            segments.cancel()
            if insights is not None:
                await insights
            await database.dispose()

    asyncio.run(work())


def cmd_workspace_create(settings: Settings, args: argparse.Namespace) -> None:
    workspace = _in_transaction(
        settings, lambda s: WorkspaceService(s, Actor.cli()).create(args.name)
    )
    print(workspace.id)


def cmd_workspace_list(settings: Settings, _args: argparse.Namespace) -> None:
    workspaces = _in_transaction(settings, lambda s: WorkspaceService(s, Actor.cli()).page())
    for workspace in workspaces:
        print(f"{workspace.id}\t{workspace.name}")


def cmd_apikey_create(settings: Settings, args: argparse.Namespace) -> None:
    request = ApiKeyCreate(
        name=args.name,
        scopes=[Scope(scope.strip()) for scope in args.scopes.split(",") if scope.strip()],
        expires_at=datetime.fromisoformat(args.expires_at) if args.expires_at else None,
    )

    async def create(session: AsyncSession) -> str:
        workspace = await WorkspaceService(session, Actor.cli()).by_name(args.workspace)
        keys = ApiKeyService(session, Context(workspace.id, Actor.cli()))
        _, secret = await keys.create(request)
        return secret

    print(_in_transaction(settings, create))


def cmd_import(settings: Settings, args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.progress import Progress

    path = Path(args.file)
    import_format = ImportFormat(args.format) if args.format else _format_from_suffix(path)
    mapping = json.loads(args.mapping) if args.mapping else None
    console = Console(stderr=True)

    async def run(stream: BinaryIO) -> ImportJob:
        database = create_database(settings, pooled=False)
        try:
            with console.status(f"Reading {path.name}"):
                async with database.writer() as session, session.begin():
                    workspace = await WorkspaceService(session, Actor.cli()).by_name(args.workspace)
                    context = Context(workspace.id, Actor.cli())
                    rows = chunks(read_rows(stream, import_format, Encoding(args.encoding)))
                    job = await ImportService(session, context).create(
                        ImportObject(args.object), import_format, mapping, path.name, rows
                    )
            with Progress(console=console) as progress:
                task = progress.add_task(f"Importing {args.object}", total=job.total_rows)
                await ImportRunner(database.writer).run(
                    workspace.id, job.id, progress=lambda count: progress.advance(task, count)
                )
            async with database.reader() as session:
                finished, _ = await ImportService(session, context).get(job.id)
            return finished
        finally:
            await database.dispose()

    with path.open("rb") as stream:
        job = asyncio.run(run(stream))
    console.print(
        f"{job.status}: {job.created_count} created, {job.updated_count} updated, "
        f"{job.failed_count} failed (details: GET /v1/imports/{job.id})"
    )
    print(job.id)
    if job.failed_count:
        sys.exit(3)


def cmd_metrics_rebuild(settings: Settings, args: argparse.Namespace) -> None:
    from app.domain.commerce.metrics import rebuild_metrics

    async def rebuild(session: AsyncSession) -> int:
        workspace = await WorkspaceService(session, Actor.cli()).by_name(args.workspace)
        return await rebuild_metrics(session, workspace.id)

    count = _in_transaction(settings, rebuild)
    print(f"Recomputed the metrics of {count} customers.", file=sys.stderr)


SEED_SLICE = 10_000


def cmd_seed(settings: Settings, args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.progress import Progress

    from app.core.clock import utcnow
    from app.domain.insight.scoring import recompute
    from app.seed import seed_companies, seed_customers
    from app.seed_history import seed_orders

    console = Console(stderr=True)

    async def run() -> None:
        database = create_database(settings, pooled=False)
        try:
            async with database.writer() as session, session.begin():
                workspaces = WorkspaceService(session, Actor.cli())
                workspace = await workspaces.directory.by_name(args.workspace)
                if workspace is None:
                    workspace = await workspaces.create(args.workspace)
                context = Context(workspace.id, Actor.cli())
                company_ids = await seed_companies(
                    session, context, count=args.companies, seed=args.seed
                )
            with Progress(console=console) as progress:
                task = progress.add_task("Seeding customers", total=args.customers)
                for start in range(0, args.customers, SEED_SLICE):
                    # One transaction per slice keeps a large seed from holding one huge one.
                    async with database.writer() as session, session.begin():
                        await seed_customers(
                            session,
                            context,
                            count=min(SEED_SLICE, args.customers - start),
                            seed=args.seed,
                            start=start,
                            company_ids=company_ids,
                            progress=lambda count: progress.advance(task, count),
                        )
                if args.orders:
                    history = progress.add_task("Seeding a year of orders", total=None)
                    async with database.writer() as session, session.begin():
                        found = await seed_orders(
                            session,
                            context,
                            customers=args.customers,
                            seed=args.seed,
                            progress=lambda count: progress.advance(history, count),
                        )
                        await recompute(session, workspace.id, utcnow())
                    console.print(
                        f"Posted {found.orders} orders, {found.refunds} refunds, "
                        f"{found.cancellations} cancellations and {found.surveys} surveys; "
                        "insight scores computed."
                    )
        finally:
            await database.dispose()

    asyncio.run(run())
    console.print(
        f"Seeded {args.customers} customers and {args.companies} companies into '{args.workspace}'."
    )


def _format_from_suffix(path: Path) -> ImportFormat:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return ImportFormat.JSONL
    if suffix == ".csv":
        return ImportFormat.CSV
    raise ValueError("give --format csv or jsonl")


def cmd_openapi(_settings: Settings, args: argparse.Namespace) -> None:
    from app.main import create_app

    schema = create_app(Settings(database_url="sqlite+aiosqlite://")).openapi()
    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(schema, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"Wrote {path}", file=sys.stderr)


def _parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kokyaku", description="Kokyaku, a headless CRM API.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the API (creates a first admin key if empty)")
    serve.add_argument("--host", default=settings.host)
    serve.add_argument("--port", type=int, default=settings.port)
    serve.add_argument("--workers", type=int, default=settings.workers)
    serve.set_defaults(handler=cmd_serve)

    commands.add_parser(
        "worker",
        help="deliver webhooks, run workflows, keep segments and insight scores current "
        "(any number may run beside `serve`)",
    ).set_defaults(handler=cmd_worker)

    commands.add_parser("migrate", help="upgrade the database schema").set_defaults(
        handler=cmd_migrate
    )

    workspace = commands.add_parser("workspace", help="manage workspaces").add_subparsers(
        dest="action", required=True
    )
    create = workspace.add_parser("create", help="create a workspace; prints its id")
    create.add_argument("name")
    create.set_defaults(handler=cmd_workspace_create)
    workspace.add_parser("list", help="list workspaces").set_defaults(handler=cmd_workspace_list)

    apikey = commands.add_parser("apikey", help="manage API keys").add_subparsers(
        dest="action", required=True
    )
    key_create = apikey.add_parser("create", help="create a key; prints it alone on stdout")
    key_create.add_argument("--workspace", required=True, help="workspace name")
    key_create.add_argument(
        "--scopes", required=True, help=f"comma-separated, of: {', '.join(s.value for s in Scope)}"
    )
    key_create.add_argument("--name", default="cli", help="a label for the key")
    key_create.add_argument("--expires-at", help="ISO 8601 time with offset")
    key_create.set_defaults(handler=cmd_apikey_create)

    importing = commands.add_parser("import", help="import customers or companies from a file")
    importing.add_argument("file", help="a CSV file with a header row, or JSON Lines")
    importing.add_argument("--workspace", required=True, help="workspace name")
    importing.add_argument("--object", choices=[o.value for o in ImportObject], default="customers")
    importing.add_argument("--format", choices=[f.value for f in ImportFormat])
    importing.add_argument("--mapping", help='JSON: column -> field, e.g. {"メール": "emails"}')
    importing.add_argument("--encoding", choices=[e.value for e in Encoding], default="utf-8")
    importing.set_defaults(handler=cmd_import)

    metrics = commands.add_parser("metrics", help="customer purchase metrics").add_subparsers(
        dest="action", required=True
    )
    rebuild = metrics.add_parser("rebuild", help="recompute every customer's metrics from orders")
    rebuild.add_argument("--workspace", required=True, help="workspace name")
    rebuild.set_defaults(handler=cmd_metrics_rebuild)

    seed = commands.add_parser("seed", help="add demo data: a Japanese shop's customers")
    seed.add_argument("--workspace", default=DEFAULT_WORKSPACE, help="created if missing")
    seed.add_argument("--customers", type=int, default=1000)
    seed.add_argument("--companies", type=int, default=50)
    seed.add_argument("--seed", type=int, default=0, help="the same seed gives the same people")
    seed.add_argument(
        "--orders",
        action="store_true",
        help="also a year of their orders, refunds and surveys (for insights in a demo)",
    )
    seed.set_defaults(handler=cmd_seed)

    openapi = commands.add_parser("openapi", help="export the OpenAPI document")
    openapi.add_argument("--output", default=str(DEFAULT_OPENAPI_PATH))
    openapi.set_defaults(handler=cmd_openapi)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    settings = get_settings()
    follow_customer_changes()  # imports, seeds and workers keep segments current too
    args = _parser(settings).parse_args(argv)
    try:
        args.handler(settings, args)
    except AppError as error:
        print(f"kokyaku: {error.detail}", file=sys.stderr)
        sys.exit(1)
    except ValueError as error:
        print(f"kokyaku: {error}", file=sys.stderr)
        sys.exit(2)
