"""On PostgreSQL, a commit that wrote events wakes dispatchers of other processes at once."""

import asyncio

import pytest

from app.core.context import Actor, Context
from app.domain.access.schemas import UserCreate
from app.domain.access.service import UserService
from app.domain.webhook.dispatcher import Dispatcher
from tests.conftest import Tenant


async def test_a_commit_with_events_wakes_a_listening_dispatcher(
    tenant: Tenant, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has no LISTEN/NOTIFY; its dispatcher polls (one process)")
    dispatcher = Dispatcher(
        tenant.database.writer,
        allow_private=True,
        poll_seconds=30,  # so only a notification can wake it within the test
        listen_engine=tenant.database.write_engine,
    )
    listener = asyncio.create_task(dispatcher.listen())
    try:
        await asyncio.sleep(0.3)  # the listener is connected
        waiting = asyncio.create_task(dispatcher.idle())
        async with tenant.database.writer() as session, session.begin():
            users = UserService(session, Context(tenant.id, Actor.system()))
            await users.create(UserCreate(name="通知", email="notify@example.jp", role="sales"))
        await asyncio.wait_for(waiting, 5)
    finally:
        listener.cancel()
