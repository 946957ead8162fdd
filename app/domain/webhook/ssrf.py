"""The SSRF guard for webhook URLs (DESIGN §7): syntax, odd IP spellings, and public addresses only.

A URL is checked when an endpoint is saved and again at every delivery; the transport then
connects to an address this module returned, so a DNS answer that changes in between is ignored.
"""

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import httpx

from app.core.errors import AppError, ValidationFailed

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver: TypeAlias = Callable[[str, int], Awaitable[Sequence[IPAddress]]]

URL_LOC = ("body", "url")
MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"https": 443, "http": 80}

# One label of an IPv4 address as resolvers and browsers read it: decimal, octal (leading 0) or
# hexadecimal (0x); inet_aton decides the value and the range.
_NUMERIC_LABEL = re.compile(r"0[xX][0-9a-fA-F]*|[0-9]+")
_HOSTNAME_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_MAX_HOSTNAME_LENGTH = 253

# Refused whatever `is_global` says: Python's answer differs between patch releases (3.11.7 calls
# multicast, 6to4, NAT64 and IPv4-mapped addresses global), so every range DESIGN §7 names is here.
_BLOCKED_V4 = tuple(
    ipaddress.IPv4Network(network)
    for network in (
        "0.0.0.0/8",  # "this network", including the unspecified address
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata services
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, including the broadcast address
    )
)
_BLOCKED_V6 = tuple(
    ipaddress.IPv6Network(network)
    for network in (
        "::/96",  # IPv4-compatible (embeds IPv4), including unspecified :: and loopback ::1
        "::ffff:0:0/96",  # IPv4-mapped (embeds IPv4)
        "::ffff:0:0:0/96",  # IPv4-translated, SIIT (embeds IPv4)
        "64:ff9b::/96",  # NAT64 well-known prefix (embeds IPv4)
        "64:ff9b:1::/48",  # NAT64 local-use prefix (embeds IPv4)
        "100::/64",  # discard-only
        "2001::/32",  # Teredo (embeds IPv4)
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4 (embeds IPv4)
        "fc00::/7",  # unique local (private)
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated, still routed inside some networks)
        "ff00::/8",  # multicast
    )
)


class BlockedTarget(AppError):
    status = 422
    slug = "blocked-target"
    title = "Target address not allowed"

    def __init__(self, host: str, address: IPAddress) -> None:
        super().__init__(
            f"{host} resolves to {address}, which is not a public address.", address=str(address)
        )
        self.address = address


class UnresolvableTarget(AppError):
    status = 422
    slug = "unresolvable-target"
    title = "Target host does not resolve"

    def __init__(self, host: str) -> None:
        super().__init__(f"{host} does not resolve to any address.")


@dataclass(frozen=True, slots=True)
class ParsedTarget:
    """A checked webhook URL, in the form the request is sent."""

    scheme: str
    host: str  # lowercase ASCII (IDNA) name, or the IP address in canonical form
    port: int
    path: str  # path and query, as sent in the request line

    @property
    def host_header(self) -> str:
        """The `Host` header: the host, bracketed if IPv6, with the port unless the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def check_url(url: str, *, allow_private: bool) -> ParsedTarget:
    """Check a webhook URL's syntax; addresses are checked by `resolve_public`."""
    if len(url) > MAX_URL_LENGTH:
        raise _invalid(f"A URL is at most {MAX_URL_LENGTH} characters.")
    # httpx parses it because httpx sends it: one parser, so no disagreement about the host.
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise _invalid(f"Not a valid URL ({exc}).") from exc
    allowed_schemes = ("https", "http") if allow_private else ("https",)
    if parsed.scheme not in allowed_schemes:
        raise _invalid(f"The URL must use {' or '.join(allowed_schemes)}.")
    if parsed.userinfo:
        raise _invalid("The URL must not contain a user name or password.")
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise _invalid("The URL must name a host.")
    port = DEFAULT_PORTS[parsed.scheme] if parsed.port is None else parsed.port
    if not 1 <= port <= 65535:
        raise _invalid("The port must be between 1 and 65535.")
    try:
        address = parse_host_address(host)
    except ValueError as exc:
        raise _invalid(str(exc)) from exc
    if address is None and not _is_hostname(host):
        raise _invalid(f"{host!r} is not a valid host name.")
    canonical_host = host if address is None else str(address)
    return ParsedTarget(parsed.scheme, canonical_host, port, parsed.raw_path.decode("ascii"))


def parse_host_address(host: str) -> IPAddress | None:
    """The IP address a URL host spells, or None for a DNS name.

    IPv4 is read as resolvers and browsers read it (`2130706433`, `0x7f.1`, `0177.0.0.1`,
    `127.1` are all 127.0.0.1), because the resolver is what would connect. A host whose last
    label is numeric is an address or an error, never a name, as in the WHATWG URL standard.
    Raises ValueError for a malformed address and for IPv6 zone ids.
    """
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed or ":" in host or "[" in host or "]" in host:
        return _parse_ipv6(host[1:-1] if bracketed else host)
    # A single trailing dot is the DNS root; resolvers ignore it, so the address is the same.
    labels = host.removesuffix(".").split(".")
    if not _NUMERIC_LABEL.fullmatch(labels[-1]):
        return None
    # inet_aton stops at whitespace and ignores what follows, so the whole host is matched first.
    if len(labels) > 4 or not all(_NUMERIC_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{host!r} is not a valid IPv4 address.")
    try:
        return ipaddress.IPv4Address(socket.inet_aton(".".join(labels)))
    except OSError as exc:
        raise ValueError(f"{host!r} is not a valid IPv4 address.") from exc


def is_public(address: IPAddress) -> bool:
    """Whether `address` is global unicast, and not an IPv6 form that embeds an IPv4 address."""
    blocked: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = (
        _BLOCKED_V4 if isinstance(address, ipaddress.IPv4Address) else _BLOCKED_V6
    )
    if any(address in network for network in blocked):
        return False
    # What remains is judged by the IANA special-purpose registries that `is_global` follows.
    return address.is_global


async def system_resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses the system resolver gives for `host`, in its preference order."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except socket.gaierror:
        return []
    addresses: list[IPAddress] = []
    for family, *_, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            address = ipaddress.ip_address(sockaddr[0])
            if address not in addresses:
                addresses.append(address)
    return addresses


async def resolve_public(
    host: str, port: int, *, allow_private: bool, resolve: Resolver = system_resolve
) -> list[IPAddress]:
    """The addresses of `host`, all of them public unless `allow_private`.

    Every answer is checked, not just the first: a name answering both a public and a private
    address would otherwise reach the private one whenever the client prefers it.
    Raises BlockedTarget or UnresolvableTarget. `resolve` is a seam for tests.
    """
    literal = parse_host_address(host)
    addresses = [literal] if literal is not None else list(await resolve(host, port))
    if not addresses:
        raise UnresolvableTarget(host)
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                raise BlockedTarget(host, address)
    return addresses


def _parse_ipv6(text: str) -> ipaddress.IPv6Address:
    # A zone id names an interface of this machine: meaningless, and risky, in a webhook URL.
    if "%" in text:
        raise ValueError("IPv6 zone ids are not allowed.")
    try:
        return ipaddress.IPv6Address(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid IPv6 address.") from exc


def _is_hostname(host: str) -> bool:
    name = host.removesuffix(".")
    return len(name) <= _MAX_HOSTNAME_LENGTH and all(
        _HOSTNAME_LABEL.fullmatch(label) for label in name.split(".")
    )


def _invalid(reason: str) -> ValidationFailed:
    return ValidationFailed.at(URL_LOC, reason)
