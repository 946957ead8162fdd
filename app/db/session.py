"""Engines and session factories for SQLite (embedded default) and PostgreSQL (production)."""

import asyncio
import fcntl
import os
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import event, make_url
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
WRITER_FILE_LOCK = "kokyaku.writer_file_lock"


class WriterFileLock:
    """The right to write a SQLite database, shared by every process that opens it.

    A kernel lock (flock) on a file beside the database: a process waiting for it is woken the
    moment the holder lets go, where SQLite's busy handler would poll, sleeping up to 100 ms
    between tries. The wait happens in a thread, so the event loop goes on meanwhile. It only
    decides who goes next: SQLite's own lock still guards the data, and takes over alone where
    the lock file cannot be made (a read-only directory).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._unavailable = False

    async def acquire(self) -> None:
        if self._unavailable:
            return
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                self._unavailable = True
                return
        fd = self._fd
        waiting = asyncio.get_running_loop().run_in_executor(None, fcntl.flock, fd, fcntl.LOCK_EX)
        try:
            await asyncio.shield(waiting)
        except asyncio.CancelledError:
            # The thread gets the lock in the end: it is given back as soon as it does.
            waiting.add_done_callback(lambda _: fcntl.flock(fd, fcntl.LOCK_UN))
            raise

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)


class SerializedSession(AsyncSession):
    """A SQLite write session that waits its turn before it starts.

    SQLite has one writer at a time. Writers of one process queue on an asyncio lock, and the
    processes on one database on a `WriterFileLock`, instead of all polling the database lock,
    whose busy handler sleeps up to 100 ms between tries and would cut throughput to a few
    writes a second under concurrency.
    """

    _holds_lock = False

    async def __aenter__(self) -> "SerializedSession":
        lock: asyncio.Lock = self.info[WRITE_LOCK]
        await lock.acquire()
        file_lock: WriterFileLock | None = self.info.get(WRITER_FILE_LOCK)
        if file_lock is not None:
            try:
                await file_lock.acquire()
            except BaseException:
                lock.release()
                raise
        self._holds_lock = True
        return self

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            if self._holds_lock:
                self._holds_lock = False
                file_lock: WriterFileLock | None = self.info.get(WRITER_FILE_LOCK)
                if file_lock is not None:
                    file_lock.release()
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
        {"class_": SerializedSession, "info": _writer_locks(url)}
        if url.startswith("sqlite")
        else {}
    )
    return Database(
        engine=engine,
        write_engine=write_engine,
        reader=async_sessionmaker(engine, expire_on_commit=False),
        writer=async_sessionmaker(write_engine, expire_on_commit=False, **serialized),
    )


def _writer_locks(url: str) -> dict[str, Any]:
    """The locks a SQLite writer takes: this process's, and the file lock of a database file
    (an in-memory database belongs to one process)."""
    locks: dict[str, Any] = {WRITE_LOCK: asyncio.Lock()}
    path = make_url(url).database
    if path and path != ":memory:" and not path.startswith("file:"):
        locks[WRITER_FILE_LOCK] = WriterFileLock(f"{path}.writer-lock")
    return locks
