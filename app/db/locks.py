"""Transaction-scoped advisory locks on PostgreSQL, for serialising work on names rather than rows.

An advisory lock takes no transaction id, unlike a row lock or any write: taken first in a unit
of work, it orders that unit's transaction id, and so its events' place in the outbox feed, after
every earlier holder's commit.
"""

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.dialect import POSTGRESQL

# Sorted in the subquery so that concurrent holders of overlapping names take them in the same
# order and cannot deadlock on each other.
_LOCK_SORTED = text(
    "SELECT count(pg_advisory_xact_lock(hashtextextended(name, 0))) "
    "FROM (SELECT DISTINCT name FROM unnest(CAST(:names AS text[])) AS name ORDER BY name) "
    "AS sorted"
)


async def lock_names(session: AsyncSession, names: Iterable[str]) -> None:
    """Holds each of `names` until the transaction ends. SQLite has one writer at a time, so
    there the transaction's write lock already serialises its units of work."""
    bind = session.bind
    wanted = sorted(set(names))
    if wanted and bind is not None and bind.dialect.name == POSTGRESQL:
        await session.execute(_LOCK_SORTED, {"names": wanted})
