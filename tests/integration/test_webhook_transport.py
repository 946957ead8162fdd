"""Deliveries against real local HTTP servers: pinned addresses, SSRF refusals, limits, TLS.

DNS is the one seam: a fake resolver stands in for names such as `evil.example`, so rebinding
and private answers can be shown without a real DNS server. Everything else is real sockets.
"""

import asyncio
import contextlib
import ipaddress
import json
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import pytest
import trustme
from standardwebhooks import Webhook

from app.core.errors import ValidationFailed
from app.domain.webhook import signing
from app.domain.webhook.ssrf import BlockedTarget, IPAddress
from app.domain.webhook.transport import DeliveryError, PinnedClients, post_pinned
from tests.conftest import free_port

BODY = json.dumps({"id": "evt_1", "type": "customer.created", "data": {"name": "佐藤"}}).encode()
HEADERS = {"content-type": "application/json"}


@dataclass
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


Respond = Callable[[Received, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class LocalServer:
    """A minimal HTTP/1.1 server on a random local port; records what it was sent."""

    respond: Respond
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    connections: int = 0
    server_names: list[str | None] = field(default_factory=list)
    client_left: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.connections += 1
        try:
            while True:  # until the client closes its end
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                request_line, *header_lines = head.split("\r\n")[:-2]
                method, target, _ = request_line.split(" ")
                headers = {}
                for line in header_lines:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                received = Received(method, target, headers, body)
                self.requests.append(received)
                await self.respond(received, reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away mid-exchange, as a cut-off reader does
        finally:
            self.client_left.set()
            writer.close()


@contextlib.asynccontextmanager
async def serve(
    respond: Respond, *, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
) -> AsyncIterator[LocalServer]:
    local = LocalServer(respond)
    if tls is not None:
        tls.sni_callback = lambda _sock, name, _ctx: local.server_names.append(name)
    server = await asyncio.start_server(local.handle, host, port, ssl=tls)
    local.port = server.sockets[0].getsockname()[1]
    try:
        yield local
    finally:
        server.close()
        for task in local.tasks:
            task.cancel()
        await asyncio.gather(*local.tasks, return_exceptions=True)
        await server.wait_closed()


def reply(
    status: int,
    body: bytes = b"",
    headers: Sequence[tuple[str, str]] = (),
    *,
    keep_alive: bool = False,
) -> Respond:
    async def respond(
        _request: Received, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}"]
        head += [] if keep_alive else ["Connection: close"]
        head += [f"{name}: {value}" for name, value in headers]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()

    return respond


async def hang(
    _request: Received, _reader: asyncio.StreamReader, _writer: asyncio.StreamWriter
) -> None:
    await asyncio.Event().wait()


async def send_1_of_10_mb(
    _request: Received, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    # Announces 10 MB but sends one, then waits for the client to leave: a client that wanted it
    # all would wait until its timeout, so a prompt answer shows the body was cut off.
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (10 * 1024 * 1024))
    writer.write(b"x" * 1024 * 1024)
    await writer.drain()


class FakeResolver:
    """DNS stand-in: each name answers the next address in its list (the last one repeats)."""

    def __init__(self, answers: dict[str, Sequence[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, host: str, _port: int) -> list[IPAddress]:
        self.asked.append(host)
        found = self.answers.get(host, [])
        if not found:
            return []
        asked_before = self.asked.count(host) - 1
        return [ipaddress.ip_address(found[min(asked_before, len(found) - 1)])]


async def test_delivery_reaches_the_server_signed_with_host_and_body() -> None:
    secret = signing.new_secret()
    sent = signing.headers([secret], "evt_1", int(time.time()), BODY)
    async with serve(reply(200, b"thanks", [("Retry-After", "120")])) as server:
        response = await post_pinned(
            f"http://127.0.0.1:{server.port}/hooks/in?x=1", BODY, sent, allow_private=True
        )
    assert (response.status, response.body, response.truncated) == (200, "thanks", False)
    assert response.headers["retry-after"] == "120"
    assert response.elapsed_ms >= 0
    [received] = server.requests
    assert (received.method, received.target) == ("POST", "/hooks/in?x=1")
    assert received.headers["host"] == f"127.0.0.1:{server.port}"
    assert received.body == BODY
    # The receiver's view: the bytes that arrived verify against the headers that arrived.
    assert Webhook(secret).verify(received.body, received.headers) == json.loads(BODY)


async def test_a_name_is_pinned_to_the_checked_address_despite_rebinding() -> None:
    # First answer 127.0.0.1 (checked), later answers 10.255.255.1: a second lookup by the HTTP
    # client would go elsewhere, or fail outright since the name is not in real DNS.
    resolve = FakeResolver({"rebind.example": ["127.0.0.1", "10.255.255.1"]})
    async with serve(reply(204)) as server:
        url = f"http://rebind.example:{server.port}/in"
        response = await post_pinned(url, BODY, HEADERS, allow_private=True, resolve=resolve)
    assert response.status == 204
    assert resolve.asked == ["rebind.example"]
    [received] = server.requests
    assert received.headers["host"] == f"rebind.example:{server.port}"


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    resolve = FakeResolver({"evil.example": ["127.0.0.1"]})
    async with serve(reply(200)) as server:
        with pytest.raises(BlockedTarget, match=r"127\.0\.0\.1"):
            await post_pinned(
                f"https://evil.example:{server.port}/",
                BODY,
                HEADERS,
                allow_private=False,
                resolve=resolve,
            )
    assert server.requests == []


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "2130706433",
        "0x7f.1",
        "127.1",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[64:ff9b::7f00:1]",
        "169.254.169.254",
    ],
)
async def test_private_targets_are_refused(host: str) -> None:
    async with serve(reply(200)) as server:
        with pytest.raises(BlockedTarget):
            await post_pinned(f"https://{host}:{server.port}/", BODY, HEADERS, allow_private=False)
    assert server.requests == []


@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "0x7f.1", "[::1]"])
async def test_plain_http_is_refused_without_allow_private(host: str) -> None:
    with pytest.raises(ValidationFailed, match="https"):
        await post_pinned(f"http://{host}:8080/", BODY, HEADERS, allow_private=False)


async def test_odd_spellings_connect_to_the_address_they_spell() -> None:
    async with serve(reply(200)) as server:
        for host in ("2130706433", "0x7f.1", "127.1"):
            response = await post_pinned(
                f"http://{host}:{server.port}/", BODY, HEADERS, allow_private=True
            )
            assert response.status == 200
    assert [r.headers["host"] for r in server.requests] == [f"127.0.0.1:{server.port}"] * 3


async def test_redirects_are_returned_not_followed() -> None:
    async with serve(reply(200)) as inside:
        location = f"http://127.0.0.1:{inside.port}/admin"
        async with serve(reply(302, headers=[("Location", location)])) as outside:
            response = await post_pinned(
                f"http://127.0.0.1:{outside.port}/", BODY, HEADERS, allow_private=True
            )
    assert response.status == 302
    assert response.headers["location"] == location
    assert inside.requests == []


async def test_a_hanging_server_times_out() -> None:
    async with serve(hang) as server:
        started = time.monotonic()
        with pytest.raises(DeliveryError) as caught:
            await post_pinned(
                f"http://127.0.0.1:{server.port}/", BODY, HEADERS, allow_private=True, timeout=0.3
            )
    assert caught.value.reason == "timeout"
    assert time.monotonic() - started < 2
    assert len(server.requests) == 1


async def test_a_10_mb_response_is_cut_off_not_buffered() -> None:
    async with serve(send_1_of_10_mb) as server:
        response = await post_pinned(
            f"http://127.0.0.1:{server.port}/", BODY, HEADERS, allow_private=True, timeout=3
        )
        await asyncio.wait_for(server.client_left.wait(), 1)
    assert response.status == 200
    assert response.truncated
    assert response.body == "x" * 2048


async def test_a_closed_port_is_a_connection_error() -> None:
    with pytest.raises(DeliveryError) as caught:
        await post_pinned(f"http://127.0.0.1:{free_port()}/", BODY, HEADERS, allow_private=True)
    assert caught.value.reason == "connect"


async def test_an_unresolvable_name_is_a_dns_error() -> None:
    with pytest.raises(DeliveryError) as caught:
        await post_pinned(
            "https://nowhere.example/", BODY, HEADERS, allow_private=False, resolve=FakeResolver({})
        )
    assert caught.value.reason == "dns"


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_ipv6_loopback_when_private_targets_are_allowed() -> None:
    async with serve(reply(200), host="::1") as server:
        response = await post_pinned(
            f"http://[::1]:{server.port}/in", BODY, HEADERS, allow_private=True
        )
    assert response.status == 200
    assert server.requests[0].headers["host"] == f"[::1]:{server.port}"


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


def _tls_contexts(ca: trustme.CA, certified_name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(certified_name).configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


async def test_tls_uses_the_url_host_for_sni_and_certificate(
    certificate_authority: trustme.CA,
) -> None:
    server_tls, client_tls = _tls_contexts(certificate_authority, "hooks.example")
    resolve = FakeResolver({"hooks.example": ["127.0.0.1"]})
    async with (
        serve(reply(200, b"ok"), tls=server_tls) as server,
        contextlib.aclosing(PinnedClients(ssl_context=client_tls)) as clients,
    ):
        response = await post_pinned(
            f"https://hooks.example:{server.port}/in",
            BODY,
            HEADERS,
            allow_private=True,
            resolve=resolve,
            clients=clients,
        )
    assert (response.status, response.body) == (200, "ok")
    assert server.server_names == ["hooks.example"]
    assert server.requests[0].headers["host"] == f"hooks.example:{server.port}"


async def test_tls_refuses_a_certificate_for_another_name(
    certificate_authority: trustme.CA,
) -> None:
    server_tls, client_tls = _tls_contexts(certificate_authority, "other.example")
    resolve = FakeResolver({"hooks.example": ["127.0.0.1"]})
    async with (
        serve(reply(200), tls=server_tls) as server,
        contextlib.aclosing(PinnedClients(ssl_context=client_tls)) as clients,
    ):
        with pytest.raises(DeliveryError) as caught:
            await post_pinned(
                f"https://hooks.example:{server.port}/in",
                BODY,
                HEADERS,
                allow_private=True,
                resolve=resolve,
                clients=clients,
            )
    assert caught.value.reason == "connect"
    assert "CERTIFICATE_VERIFY_FAILED" in caught.value.detail
    assert server.requests == []


async def test_kept_alive_connections_carry_the_next_attempts() -> None:
    async with (
        serve(reply(200, keep_alive=True)) as server,
        contextlib.aclosing(PinnedClients()) as clients,
    ):
        url = f"http://127.0.0.1:{server.port}/in"
        for _ in range(3):
            response = await post_pinned(url, BODY, HEADERS, allow_private=True, clients=clients)
            assert response.status == 200
    assert (len(server.requests), server.connections) == (3, 1)


async def test_a_kept_connection_does_not_follow_the_name_to_a_new_address() -> None:
    # The name moves from 127.0.0.1 to 127.0.0.2 while a connection to the first stays open:
    # the next attempt goes where the name points now, over a connection of its own.
    resolve = FakeResolver({"moving.example": ["127.0.0.1", "127.0.0.2"]})
    async with (
        serve(reply(200, keep_alive=True)) as first,
        serve(reply(200, keep_alive=True), host="127.0.0.2", port=first.port) as second,
        contextlib.aclosing(PinnedClients()) as clients,
    ):
        url = f"http://moving.example:{first.port}/in"
        for _ in range(2):
            await post_pinned(
                url, BODY, HEADERS, allow_private=True, resolve=resolve, clients=clients
            )
    assert resolve.asked == ["moving.example", "moving.example"]
    assert (len(first.requests), len(second.requests)) == (1, 1)
    assert second.requests[0].headers["host"] == f"moving.example:{first.port}"


async def test_a_kept_connection_does_not_bypass_the_guard(
    certificate_authority: trustme.CA,
) -> None:
    # A connection to the name's first, allowed, answer stays open; the name then resolves to a
    # private address that the guard refuses. The refusal comes before any request is sent,
    # although a connection to that very host name is open.
    server_tls, client_tls = _tls_contexts(certificate_authority, "rebind.example")
    resolve = FakeResolver({"rebind.example": ["127.0.0.1", "10.255.255.1"]})
    async with (
        serve(reply(200, keep_alive=True), tls=server_tls) as server,
        contextlib.aclosing(PinnedClients(ssl_context=client_tls)) as clients,
    ):
        url = f"https://rebind.example:{server.port}/in"
        allowed = await post_pinned(
            url, BODY, HEADERS, allow_private=True, resolve=resolve, clients=clients
        )
        assert allowed.status == 200
        with pytest.raises(BlockedTarget, match=r"10\.255\.255\.1"):
            await post_pinned(
                url, BODY, HEADERS, allow_private=False, resolve=resolve, clients=clients
            )
    assert (len(server.requests), server.connections) == (1, 1)


async def test_a_kept_connection_for_one_name_is_not_used_for_another(
    certificate_authority: trustme.CA,
) -> None:
    # Both names resolve to the same address; the certificate covers only the first. A pool by
    # address alone would send the second name's request over the first name's verified TLS.
    server_tls, client_tls = _tls_contexts(certificate_authority, "hooks.example")
    resolve = FakeResolver({"hooks.example": ["127.0.0.1"], "other.example": ["127.0.0.1"]})
    async with (
        serve(reply(200, keep_alive=True), tls=server_tls) as server,
        contextlib.aclosing(PinnedClients(ssl_context=client_tls)) as clients,
    ):
        for name in ("hooks.example", "other.example"):
            with contextlib.suppress(DeliveryError):
                await post_pinned(
                    f"https://{name}:{server.port}/in",
                    BODY,
                    HEADERS,
                    allow_private=True,
                    resolve=resolve,
                    clients=clients,
                )
    assert [request.headers["host"] for request in server.requests] == [
        f"hooks.example:{server.port}"
    ]
    assert server.server_names == ["hooks.example", "other.example"]
