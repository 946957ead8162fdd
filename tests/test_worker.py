"""A worker killed with SIGKILL in the middle of a delivery loses nothing."""

import asyncio
import os
import signal
import sys

from httpx import AsyncClient
from standardwebhooks.webhooks import Webhook

from app.domain.webhook.dispatcher import Dispatcher
from tests.api.factories import make_customer
from tests.api.test_webhooks import drain, subscribe
from tests.conftest import Tenant


async def test_a_killed_worker_leaves_its_delivery_to_another(
    client: AsyncClient, tenant: Tenant, database_url: str
) -> None:
    received: list[tuple[dict[str, str], bytes]] = []
    hang = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        headers = {
            name.strip().lower(): value.strip()
            for name, value in (
                line.split(":", 1) for line in head.split("\r\n")[1:] if ":" in line
            )
        }
        body = await reader.readexactly(int(headers["content-length"]))
        received.append((headers, body))
        if len(received) == 1:
            hang.set()
            await asyncio.sleep(30)  # the first attempt never gets an answer
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    recovering = Dispatcher(tenant.database.writer, allow_private=True, timeout=3)
    await recovering.fan_out()
    endpoint = await subscribe(client, tenant, f"http://127.0.0.1:{port}/hooks")
    await make_customer(client, tenant)
    await recovering.fan_out()  # the delivery is queued; the worker will claim it

    env = {
        **os.environ,
        "KOKYAKU_DATABASE_URL": database_url,
        "KOKYAKU_WEBHOOK_ALLOW_PRIVATE": "true",
        "KOKYAKU_WEBHOOK_TIMEOUT_SECONDS": "3",
    }
    worker = await asyncio.create_subprocess_exec(sys.executable, "-m", "app", "worker", env=env)
    try:
        await asyncio.wait_for(hang.wait(), 30)
        os.kill(worker.pid, signal.SIGKILL)
        await asyncio.wait_for(worker.wait(), 10)
        # Its lease (2 × timeout + 5 s) runs out; then another dispatcher sends it again.
        await drain(recovering, lambda: len(received) == 2, seconds=40)
    finally:
        if worker.returncode is None:
            worker.kill()
        server.close()
    assert len(received) == 2
    (first, _), (second, body) = received
    assert first["webhook-id"] == second["webhook-id"]
    Webhook(endpoint["secret"]).verify(body, second)  # type: ignore[no-untyped-call]
    log = await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=tenant.headers)
    assert log.json()["data"][0]["status"] == "succeeded"
