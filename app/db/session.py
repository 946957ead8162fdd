"""Engines and session factories for SQLite (embedded default) and PostgreSQL (production)."""

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from app.config import Settings

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    "PRAGMA synchronous=NORMAL",
)


WRITE_LOCK = "kokyaku.write_lock"


class SerializedSession(AsyncSession):
    """A SQLite write session that waits its turn in this process before it starts.

    SQLite has one writer at a time. Writers of one process queue on an asyncio lock instead of
    all polling the database lock, whose busy handler sleeps up to 100 ms between tries and
    would cut throughput to a few writes a second under concurrency.
    """

    _holds_lock = False

    async def __aenter__(self) -> "SerializedSession":
        lock: asyncio.Lock = self.info[WRITE_LOCK]
        await lock.acquire()
        self._holds_lock = True
        return self

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            if self._holds_lock:
                self._holds_lock = False
                self.info[WRITE_LOCK].release()


@dataclass(frozen=True)
class Database:
    """One database, with separate session factories for reading and writing.

    On SQLite a write transaction starts with BEGIN IMMEDIATE so that it waits for the single
    writer lock up front (busy_timeout) instead of failing when a read transaction tries to
    upgrade; reads start deferred and never block each other under WAL. On PostgreSQL both
    share one connection pool, and reads run in autocommit (one statement, one snapshot).
    """

    engine: AsyncEngine
    write_engine: AsyncEngine
    reader: async_sessionmaker[AsyncSession]
    writer: async_sessionmaker[AsyncSession]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.engine.sync_engine.pool is not self.write_engine.sync_engine.pool:
            await self.engine.dispose()


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _sqlite_engine(url: str, *, begin: str, pooled: bool) -> AsyncEngine:
    options: dict[str, Any] = {"json_serializer": _json}
    if not pooled:
        options["poolclass"] = NullPool
    engine = create_async_engine(url, **options)

    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to the "begin" hook below instead of the driver's own.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql(begin)

    return engine


def create_database(settings: Settings, *, pooled: bool = True) -> Database:
    """Engines for `settings.database_url`; `pooled=False` opens a connection per session."""
    url = settings.database_url
    if url.startswith("sqlite"):
        engine = _sqlite_engine(url, begin="BEGIN", pooled=pooled)
        write_engine = _sqlite_engine(url, begin="BEGIN IMMEDIATE", pooled=pooled)
    else:
        options: dict[str, Any] = {
            "json_serializer": _json,
            # Custom plans for every statement: a generic plan cannot use the trigram index
            # for a LIKE pattern it does not know. No JIT: compiling a report's expressions
            # takes hundreds of milliseconds and saves less on the scans an API answer makes.
            "connect_args": {
                "server_settings": {"plan_cache_mode": "force_custom_plan", "jit": "off"}
            },
        }
        options.update(
            {"pool_size": settings.database_pool_size, "max_overflow": settings.database_pool_size}
            if pooled
            else {"poolclass": NullPool}
        )
        write_engine = create_async_engine(url, **options)
        # Reads run without BEGIN/ROLLBACK round trips; a lost connection is replaced on the
        # next checkout after the failed request answers 503.
        engine = write_engine.execution_options(isolation_level="AUTOCOMMIT")
    serialized: dict[str, Any] = (
        {"class_": SerializedSession, "info": {WRITE_LOCK: asyncio.Lock()}}
        if url.startswith("sqlite")
        else {}
    )
    return Database(
        engine=engine,
        write_engine=write_engine,
        reader=async_sessionmaker(engine, expire_on_commit=False),
        writer=async_sessionmaker(write_engine, expire_on_commit=False, **serialized),
    )
