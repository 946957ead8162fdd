"""One webhook delivery attempt: POST to the address the SSRF guard checked, never to a new lookup.

The request goes to `https://<checked address>:<port>/path` with the original `Host` header and
httpcore's `sni_hostname` extension, so TLS still sends SNI for, and verifies the certificate
against, the URL's host name while the socket connects only to the address that was checked.
Each attempt opens its own connection: simple, and deliveries to one endpoint are sequential.
"""

import asyncio
import functools
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
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


async def post_pinned(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    allow_private: bool,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - part of the delivery contract (15 s)
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    resolve: Resolver = system_resolve,
    ssl_context: ssl.SSLContext | None = None,
) -> DeliveryResponse:
    """POST `body` to `url` after checking the URL and every address it resolves to.

    Redirects are returned, not followed. `timeout` bounds the whole attempt, lookup to last
    byte. At most `max_response_bytes` of the response are read (enough to let a short answer
    end cleanly; a huge or endless one is cut off), and the first 2 KiB kept. `resolve` is a seam
    for tests; `ssl_context` replaces the default trust store (e.g. an on-premise CA).

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
            return await _post(
                target, addresses[0], body, headers, ssl_context, max_response_bytes, started
            )
    except TimeoutError as exc:
        raise DeliveryError("timeout", f"No complete response within {timeout:g} s.") from exc


async def _post(
    target: ParsedTarget,
    address: IPAddress,
    body: bytes,
    headers: Mapping[str, str],
    ssl_context: ssl.SSLContext | None,
    max_response_bytes: int,
    started: float,
) -> DeliveryResponse:
    """One request whose socket goes to `address`; Host and TLS still name the URL's host."""
    pinned_url = httpx.URL(
        scheme=target.scheme,
        host=str(address),
        port=target.port,
        raw_path=target.path.encode("ascii"),
    )
    request_headers = httpx.Headers({"user-agent": USER_AGENT})
    request_headers.update(headers)
    request_headers["host"] = target.host_header
    # The body is read raw, since inflating it could go far past the read limit; asking for it
    # uncompressed keeps the logged excerpt readable.
    request_headers["accept-encoding"] = "identity"
    transport = httpx.AsyncHTTPTransport(verify=ssl_context or _default_ssl_context())
    # An explicit transport and trust_env=False: no proxy from the environment (a proxy would
    # resolve the name again), no .netrc credentials. The whole attempt is bounded by the caller's
    # asyncio.timeout, so httpx's per-operation timeouts are off.
    async with httpx.AsyncClient(
        transport=transport,
        trust_env=False,
        follow_redirects=False,
        timeout=None,  # noqa: S113 - bounded by asyncio.timeout in post_pinned
    ) as client:
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
