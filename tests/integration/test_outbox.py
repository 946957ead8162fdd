"""The outbox commits with its change, and the feed never skips a late-committing event."""

import asyncio

import asyncpg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from app.core.context import Actor, Context
from app.domain.access.schemas import UserCreate
from app.domain.access.service import UserService
from app.domain.outbox.entities import DomainEvent
from app.domain.outbox.service import EventFeedService, EventRecorder, changes_between
from tests.conftest import POSTGRES_URL, Tenant


async def _event_count(tenant: Tenant) -> int:
    async with tenant.database.reader() as session:
        count = await session.scalar(
            select(func.count()).where(DomainEvent.workspace_id == tenant.id)
        )
    return int(count or 0)


async def test_rolled_back_work_leaves_no_event(tenant: Tenant) -> None:
    before = await _event_count(tenant)
    async with tenant.database.writer() as session:
        service = UserService(session, Context(tenant.id, Actor.system()))
        await service.create(UserCreate(name="Gone", email="gone@example.jp", role="sales"))
        await session.flush()
        await session.rollback()
    assert await _event_count(tenant) == before


async def test_committed_work_has_its_event(tenant: Tenant) -> None:
    before = await _event_count(tenant)
    async with tenant.database.writer() as session, session.begin():
        service = UserService(session, Context(tenant.id, Actor.system()))
        await service.create(UserCreate(name="Kept", email="kept@example.jp", role="sales"))
    assert await _event_count(tenant) == before + 1


async def test_feed_waits_for_an_earlier_transaction_that_commits_late(
    tenant: Tenant, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite serialises writers, so commit order is position order there")
    context = Context(tenant.id, Actor.system())

    def record(recorder: EventRecorder, name: str) -> None:
        recorder.record(
            "test.happened", subject_type="test", subject_id=tenant.id, data={"name": name}
        )

    async with tenant.database.reader() as reader:
        start = (await EventFeedService(reader, context).read(None, 200)).next_cursor

    slow = tenant.database.writer()
    async with slow.begin():
        record(EventRecorder(slow, context), "slow")
        await slow.flush()  # takes its position (and transaction id) first
        async with tenant.database.writer() as fast, fast.begin():
            record(EventRecorder(fast, context), "fast")
        async with tenant.database.reader() as reader:
            during = await EventFeedService(reader, context).read(start, 200)
        # "fast" is held back while "slow" may still commit. (Other events of the workspace may
        # surface meanwhile if a foreign transaction on the server held them back earlier.)
        assert [e.data["name"] for e in during.events if e.type == "test.happened"] == []
    await slow.close()

    names: list[str] = []
    for _ in range(100):  # a foreign transaction on the server may hold the horizon a moment
        async with tenant.database.reader() as reader:
            after = await EventFeedService(reader, context).read(start, 200)
        names = [event.data["name"] for event in after.events if event.type == "test.happened"]
        if len(names) == 2:
            break
        await asyncio.sleep(0.05)
    assert names == ["slow", "fast"]


def test_changes_list_old_and_new_of_changed_fields_only() -> None:
    before = {"name": "a", "role": "x", "version": 1, "updated_at": "t1"}
    after = {"name": "a", "role": "y", "version": 2, "updated_at": "t2"}
    assert changes_between(before, after) == {"role": {"old": "x", "new": "y"}}


async def test_a_transaction_in_another_database_does_not_hold_the_feed_back(
    tenant: Tenant, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("transactions of other databases exist only on a PostgreSQL server")
    assert POSTGRES_URL is not None
    context = Context(tenant.id, Actor.system())
    async with tenant.database.reader() as reader:
        start = (await EventFeedService(reader, context).read(None, 200)).next_cursor
    elsewhere = await asyncpg.connect(
        make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        # Begun before ours and still running: an older transaction id than our event's, on the
        # same server but in a database whose transactions cannot write to our outbox.
        async with elsewhere.transaction():
            await elsewhere.fetchval("SELECT txid_current()")
            async with tenant.database.writer() as session, session.begin():
                EventRecorder(session, context).record(
                    "test.happened", subject_type="test", subject_id=tenant.id, data={}
                )
            async with tenant.database.reader() as reader:
                during = await EventFeedService(reader, context).read(start, 200)
            assert [event.type for event in during.events] == ["test.happened"]
    finally:
        await elsewhere.close()
