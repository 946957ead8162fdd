"""The SQLite writers' file lock: one holder at a time across processes, the next woken at once."""

import asyncio
from pathlib import Path

from app.db.session import WriterFileLock


async def test_a_second_writer_waits_for_the_first_and_goes_when_it_lets_go(
    tmp_path: Path,
) -> None:
    # Two locks on one path open the file twice, as two processes would.
    path = str(tmp_path / "kokyaku.db.writer-lock")
    first, second = WriterFileLock(path), WriterFileLock(path)
    await first.acquire()
    waiting = asyncio.create_task(second.acquire())
    await asyncio.sleep(0.2)
    assert not waiting.done()
    first.release()
    await asyncio.wait_for(waiting, timeout=2)
    second.release()


async def test_a_cancelled_wait_gives_the_lock_back_once_it_comes(tmp_path: Path) -> None:
    path = str(tmp_path / "kokyaku.db.writer-lock")
    holder, cancelled, later = WriterFileLock(path), WriterFileLock(path), WriterFileLock(path)
    await holder.acquire()
    waiting = asyncio.create_task(cancelled.acquire())
    await asyncio.sleep(0.1)
    waiting.cancel()
    holder.release()
    await asyncio.wait_for(later.acquire(), timeout=2)
    later.release()


async def test_without_a_writable_directory_sqlite_alone_decides(tmp_path: Path) -> None:
    lock = WriterFileLock(str(tmp_path / "missing" / "kokyaku.db.writer-lock"))
    await asyncio.wait_for(lock.acquire(), timeout=2)
    lock.release()
