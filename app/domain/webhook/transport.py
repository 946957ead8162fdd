"""One webhook delivery attempt: POST to the address the SSRF guard checked, never to a new lookup.

The request goes to `https://<checked address>:<port>/path` with the original `Host` header and
httpcore's `sni_hostname` extension, so TLS still sends SNI for, and verifies the certificate
against, the URL's host name while the socket connects only to the address that was checked.

Connections are kept alive between attempts (`PinnedClients`), one pool per destination: the URL's
host name *and* the checked address. Every attempt still checks the URL and resolves its name
first; an answer that differs picks another pool (a new connection to the new address, if it
passes the guard), so a kept connection never carries a request the guard would refuse now, and
a connection whose certificate was verified for one name never carries a request for another.
"""

import asyncio
import contextlib
import functools
import ssl
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

import httpx

from app.domain.webhook.ssrf import (
    IPAddress,
    ParsedTarget,
    Resolver,
    UnresolvableTarget,
    check_url,
    resolve_public,
    system_resolve,
)

DEFAULT_TIMEOUT = 15.0
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024
RESPONSE_EXCERPT_BYTES = 2 * 1024
KEPT_RESPONSE_HEADERS = ("content-type", "location", "retry-after")
USER_AGENT = "Kokyaku-Webhooks/1.0"
KEEPALIVE_SECONDS = 5.0
DEFAULT_CONNECTIONS_PER_DESTINATION = 32
DEFAULT_MAX_DESTINATIONS = 256

FailureReason: TypeAlias = Literal["dns", "connect", "timeout", "network"]


class DeliveryError(Exception):
    """An attempt that got no HTTP response; the dispatcher retries these (DESIGN §7)."""

    def __init__(self, reason: FailureReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class DeliveryResponse:
    """What the receiver answered, as much of it as the delivery log keeps."""

    status: int
    headers: dict[str, str]  # only KEPT_RESPONSE_HEADERS, lowercase names
    body: str  # the first RESPONSE_EXCERPT_BYTES, decoded leniently
    truncated: bool  # the receiver sent more than `body` holds
    elapsed_ms: int  # the whole attempt, address checks included


@dataclass(frozen=True, slots=True)
class _Destination:
    scheme: str
    host: str  # the name TLS verifies and SNI sends
    address: IPAddress  # the checked address the socket connects to
    port: int


@dataclass(slots=True)
class _Pool:
    """The kept connections to one destination: one single-connection client each, the most
    recently used last."""

    slots: asyncio.Semaphore
    idle: deque[tuple[float, httpx.AsyncClient]] = field(default_factory=deque)
    users: int = 0  # attempts using or waiting for one of its connections


class PinnedClients:
    """HTTP connections kept alive between attempts, pooled per checked destination.

    Each connection is a client of its own (httpx's pool looks at every connection it holds for
    each request, which costs more than the request itself at a few dozen), taken for one
    attempt at a time; at most `connections_per_destination` exist per destination. Connections
    idle for KEEPALIVE_SECONDS are closed, and beyond `max_destinations` the least recently
    used idle pools. `ssl_context` replaces the default trust store (an on-premise CA).
    """

    def __init__(
        self,
        *,
        connections_per_destination: int = DEFAULT_CONNECTIONS_PER_DESTINATION,
        max_destinations: int = DEFAULT_MAX_DESTINATIONS,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.connections_per_destination = connections_per_destination
        self.max_destinations = max_destinations
        self.ssl_context = ssl_context
        self._pools: OrderedDict[_Destination, _Pool] = OrderedDict()
        self._swept_at = time.monotonic()

    @contextlib.asynccontextmanager
    async def client_for(self, destination: _Destination) -> AsyncIterator[httpx.AsyncClient]:
        pool = self._pools.pop(destination, None) or _Pool(
            asyncio.Semaphore(self.connections_per_destination)
        )
        self._pools[destination] = pool  # the most recently used last
        pool.users += 1
        try:
            async with pool.slots:
                client = pool.idle.pop()[1] if pool.idle else self._new_client()
                try:
                    yield client
                finally:
                    pool.idle.append((time.monotonic(), client))
        finally:
            pool.users -= 1
        await self._sweep()

    def _new_client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(
            max_connections=1, max_keepalive_connections=1, keepalive_expiry=KEEPALIVE_SECONDS
        )
        transport = httpx.AsyncHTTPTransport(
            verify=self.ssl_context or _default_ssl_context(), limits=limits
        )
        # An explicit transport and trust_env=False: no proxy from the environment (a proxy would
        # resolve the name again), no .netrc credentials. The whole attempt is bounded by the
        # caller's asyncio.timeout, so httpx's per-operation timeouts are off.
        return httpx.AsyncClient(
            transport=transport,
            trust_env=False,
            follow_redirects=False,
            timeout=None,  # noqa: S113 - bounded by asyncio.timeout in post_pinned
        )

    async def _sweep(self) -> None:
        """Closes connections idle too long and pools beyond the limit; at most once a second
        unless there are too many pools."""
        now = time.monotonic()
        if now - self._swept_at < 1 and len(self._pools) <= self.max_destinations:
            return
        self._swept_at = now
        stale: list[httpx.AsyncClient] = []
        for destination, pool in list(self._pools.items()):
            while pool.idle and now - pool.idle[0][0] > KEEPALIVE_SECONDS:
                stale.append(pool.idle.popleft()[1])
            if not pool.users and not pool.idle:
                del self._pools[destination]
        unused = [destination for destination, pool in self._pools.items() if not pool.users]
        for destination in unused[: max(len(self._pools) - self.max_destinations, 0)]:
            stale += [client for _, client in self._pools.pop(destination).idle]
        for client in stale:
            await client.aclose()

    async def aclose(self) -> None:
        """Closes every kept connection."""
        pools = list(self._pools.values())
        self._pools.clear()
        for pool in pools:
            for _, client in pool.idle:
                await client.aclose()


async def post_pinned(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    allow_private: bool,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - part of the delivery contract (15 s)
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    resolve: Resolver = system_resolve,
    clients: PinnedClients | None = None,
) -> DeliveryResponse:
    """POST `body` to `url` after checking the URL and every address it resolves to.

    Redirects are returned, not followed. `timeout` bounds the whole attempt, lookup to last
    byte. At most `max_response_bytes` of the response are read (enough to let a short answer
    end cleanly; a huge or endless one is cut off), and the first 2 KiB kept. `resolve` is a seam
    for tests. `clients` keeps connections alive for the next attempts; without it the attempt
    opens a connection of its own and closes it.

    Raises ValidationFailed or BlockedTarget when the URL or an address is refused, and
    DeliveryError when no response arrived.
    """
    started = time.monotonic()
    target = check_url(url, allow_private=allow_private)
    try:
        async with asyncio.timeout(timeout):
            try:
                addresses = await resolve_public(
                    target.host, target.port, allow_private=allow_private, resolve=resolve
                )
            except UnresolvableTarget as exc:
                raise DeliveryError("dns", exc.detail) from exc
            destination = _Destination(target.scheme, target.host, addresses[0], target.port)
            if clients is not None:
                return await _post(
                    clients, destination, target, body, headers, max_response_bytes, started
                )
            single_use = PinnedClients(connections_per_destination=1)
            try:
                return await _post(
                    single_use, destination, target, body, headers, max_response_bytes, started
                )
            finally:
                await single_use.aclose()
    except TimeoutError as exc:
        raise DeliveryError("timeout", f"No complete response within {timeout:g} s.") from exc


async def _post(
    clients: PinnedClients,
    destination: _Destination,
    target: ParsedTarget,
    body: bytes,
    headers: Mapping[str, str],
    max_response_bytes: int,
    started: float,
) -> DeliveryResponse:
    """One request whose socket goes to the checked address; Host and TLS still name the URL's
    host."""
    pinned_url = httpx.URL(
        scheme=target.scheme,
        host=str(destination.address),
        port=target.port,
        raw_path=target.path.encode("ascii"),
    )
    request_headers = httpx.Headers({"user-agent": USER_AGENT})
    request_headers.update(headers)
    request_headers["host"] = target.host_header
    # The body is read raw, since inflating it could go far past the read limit; asking for it
    # uncompressed keeps the logged excerpt readable.
    request_headers["accept-encoding"] = "identity"
    async with clients.client_for(destination) as client:
        request = client.build_request(
            "POST",
            pinned_url,
            content=body,
            headers=request_headers,
            extensions={"sni_hostname": target.host},
        )
        try:
            response = await client.send(request, stream=True)
            try:
                content, complete = await _read_at_most(response, max_response_bytes)
            finally:
                await response.aclose()
        except httpx.ConnectError as exc:
            raise DeliveryError("connect", str(exc) or "Connection failed.") from exc
        except httpx.TransportError as exc:
            raise DeliveryError("network", str(exc) or type(exc).__name__) from exc
    return DeliveryResponse(
        status=response.status_code,
        headers={
            name: value for name in KEPT_RESPONSE_HEADERS if (value := response.headers.get(name))
        },
        body=content[:RESPONSE_EXCERPT_BYTES].decode("utf-8", errors="replace"),
        truncated=not complete or len(content) > RESPONSE_EXCERPT_BYTES,
        elapsed_ms=round((time.monotonic() - started) * 1000),
    )


async def _read_at_most(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """Up to `limit` raw bytes of the body, and whether the body ended within them."""
    received = bytearray()
    async for chunk in response.aiter_raw():
        received += chunk
        if len(received) > limit:
            return bytes(received[:limit]), False
    return bytes(received), True


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes tens of milliseconds; one context serves every attempt.
    return httpx.create_ssl_context()
