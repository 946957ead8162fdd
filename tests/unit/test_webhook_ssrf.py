"""The SSRF guard: URL syntax, IP literals in every spelling, and only global unicast targets."""

import ipaddress
from collections.abc import Sequence

import pytest

from app.core.errors import ValidationFailed
from app.domain.webhook.ssrf import (
    BlockedTarget,
    IPAddress,
    ParsedTarget,
    UnresolvableTarget,
    check_url,
    is_public,
    parse_host_address,
    resolve_public,
)

LOOPBACK = ipaddress.IPv4Address("127.0.0.1")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://hooks.example.com/in", ParsedTarget("https", "hooks.example.com", 443, "/in")),
        (
            "https://Hooks.Example.COM:8443/a?b=1#f",
            ParsedTarget("https", "hooks.example.com", 8443, "/a?b=1"),
        ),
        ("https://bücher.example/", ParsedTarget("https", "xn--bcher-kva.example", 443, "/")),
        ("https://8.8.8.8", ParsedTarget("https", "8.8.8.8", 443, "/")),
        ("https://[2606:4700::1111]:444/x", ParsedTarget("https", "2606:4700::1111", 444, "/x")),
        # Odd spellings are canonicalised: the address checked is the address connected to.
        ("https://134744072/", ParsedTarget("https", "8.8.8.8", 443, "/")),
        (
            "https://my_host.internal.example/",
            ParsedTarget("https", "my_host.internal.example", 443, "/"),
        ),
    ],
)
def test_check_url_accepts(url: str, expected: ParsedTarget) -> None:
    assert check_url(url, allow_private=False) == expected


def test_http_only_when_private_targets_are_allowed() -> None:
    with pytest.raises(ValidationFailed, match="https"):
        check_url("http://hooks.example.com/", allow_private=False)
    target = check_url("http://127.0.0.1:8080/in", allow_private=True)
    assert target == ParsedTarget("http", "127.0.0.1", 8080, "/in")
    assert target.host_header == "127.0.0.1:8080"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://hooks.example.com/", "https"),
        ("file:///etc/passwd", "https"),
        ("hooks.example.com/in", "https"),
        ("https://user:pass@hooks.example.com/", "user name or password"),
        ("https://user@hooks.example.com/", "user name or password"),
        ("https:///in", "host"),
        ("https://hooks.example.com:0/", "port"),
        ("https://hooks.example.com:65536/", "port"),
        ("https://hooks.example.com:99999/", "port"),
        ("https://hooks.example.com/" + "a" * 2048, "2048"),
        ("https://hooks example.com/", "valid"),
        ("https://hooks.example.com%2f@evil/", "user name"),
        ("https://127.0.0.1%20evil/", "host name"),
        ("https://[fe80::1%25eth0]/", "zone"),
        ("https://1.2.3.4.5/", "IPv4"),
        ("https://example.123/", "IPv4"),
        ("https://0177.0.0.1/", "valid URL"),  # httpx itself refuses it: nothing to send
        ("https://[::1/", "valid URL"),
        ("https://-bad-.example.com/", "host name"),
    ],
)
def test_check_url_refuses(url: str, reason: str) -> None:
    with pytest.raises(ValidationFailed, match=reason) as caught:
        check_url(url, allow_private=False)
    assert caught.value.extensions["errors"][0]["loc"] == ["body", "url"]
    assert caught.value.status == 422


@pytest.mark.parametrize(
    ("target", "header"),
    [
        (ParsedTarget("https", "a.example", 443, "/"), "a.example"),
        (ParsedTarget("https", "a.example", 80, "/"), "a.example:80"),
        (ParsedTarget("http", "a.example", 80, "/"), "a.example"),
        (ParsedTarget("https", "2606:4700::1111", 443, "/"), "[2606:4700::1111]"),
        (ParsedTarget("https", "::1", 8443, "/"), "[::1]:8443"),
    ],
)
def test_host_header(target: ParsedTarget, header: str) -> None:
    assert target.host_header == header


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),  # one 32-bit decimal
        ("0x7f000001", "127.0.0.1"),  # one 32-bit hexadecimal
        ("0x7f.1", "127.0.0.1"),  # hexadecimal, then the last 24 bits
        ("0X7F.0.0.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),  # octal
        ("0177.1", "127.0.0.1"),
        ("00000177.0.0.01", "127.0.0.1"),
        ("127.1", "127.0.0.1"),  # short form: the last part fills the remaining bytes
        ("127.0.1", "127.0.0.1"),
        ("10.1.65535", "10.1.255.255"),
        ("0", "0.0.0.0"),  # noqa: S104 - an address under test, nothing binds to it
        ("127.0.0.1.", "127.0.0.1"),  # the trailing root dot changes nothing
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("[::1]", "::1"),  # bracketed IPv6
        ("::1", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("[0:0:0:0:0:0:0:1]", "::1"),
    ],
)
def test_parse_host_address_reads_odd_spellings(host: str, address: str) -> None:
    assert parse_host_address(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["hooks.example.com", "localhost", "a1.b2", "0x7f.example", "x"])
def test_names_are_not_addresses(host: str) -> None:
    assert parse_host_address(host) is None


@pytest.mark.parametrize(
    "host",
    [
        "[fe80::1%eth0]",  # zone ids
        "fe80::1%25eth0",
        "[::1",
        "::1]",
        "[127.0.0.1]",
        "[::g]",
        "127 evil.1",  # inet_aton would stop at the space and read 0.0.0.127
        "1.2.3.4.5",
        "256.0.0.1",
        "1.2.3.256",
        "4294967296",
        "08.0.0.1",  # not octal
        "0x100.0.0.1",
        "1..2.3",
        "hooks.example.123",  # a numeric last label makes an address, or nothing
        "0x",
    ],
)
def test_parse_host_address_refuses_malformed(host: str) -> None:
    with pytest.raises(ValueError, match=r"(?i)ipv4|ipv6|zone"):
        parse_host_address(host)


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.215.14",
        "2606:4700:4700::1111",
        "2001:4860:4860::8888",
        "2a00:1450:4001:80b::200e",
    ],
)
def test_global_unicast_is_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        # loopback
        "127.0.0.1",
        "127.255.255.254",
        "::1",
        # private
        "10.0.0.1",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "fc00::1",
        "fd12:3456::1",
        # CGNAT
        "100.64.0.1",
        "100.127.255.254",
        # link-local and metadata
        "169.254.169.254",
        "fe80::1",
        "fe80::a9fe:a9fe",
        "fec0::1",
        # multicast (Python 3.11 calls these global)
        "224.0.0.1",
        "239.255.255.250",
        "ff02::1",
        "ff0e::1",
        # unspecified, "this network", reserved and broadcast
        "0.0.0.0",  # noqa: S104 - an address under test, nothing binds to it
        "0.1.2.3",
        "::",
        "240.0.0.1",
        "255.255.255.255",
        # documentation, benchmarking, protocol assignments, discard
        "192.0.2.1",
        "198.51.100.1",
        "203.0.113.1",
        "198.18.0.1",
        "192.0.0.8",
        "192.88.99.1",
        "2001:db8::1",
        "100::1",
        # IPv6 forms embedding an IPv4 address, even a public one
        "::ffff:8.8.8.8",  # mapped
        "::ffff:127.0.0.1",
        "::ffff:0:808:808",  # translated (SIIT)
        "::8.8.8.8",  # compatible
        "64:ff9b::808:808",  # NAT64
        "64:ff9b::7f00:1",
        "64:ff9b:1::808:808",  # local-use NAT64
        "2002:808:808::1",  # 6to4
        "2002:7f00:1::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    ],
)
def test_everything_else_is_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


class FakeResolver:
    """A DNS stand-in: fixed answers, and a record of the names asked for."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = {
            host: [ipaddress.ip_address(address) for address in found]
            for host, found in answers.items()
        }
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[IPAddress]:
        self.asked.append((host, port))
        return self.answers.get(host, [])


async def test_resolve_public_returns_public_answers() -> None:
    resolve = FakeResolver(
        {"hooks.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]}
    )
    found = await resolve_public("hooks.example.com", 443, allow_private=False, resolve=resolve)
    assert [str(a) for a in found] == ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    assert resolve.asked == [("hooks.example.com", 443)]


async def test_any_private_answer_blocks_the_name() -> None:
    resolve = FakeResolver({"evil.example": ["93.184.215.14", "127.0.0.1"]})
    with pytest.raises(BlockedTarget) as caught:
        await resolve_public("evil.example", 443, allow_private=False, resolve=resolve)
    assert caught.value.address == LOOPBACK
    assert caught.value.status == 422
    assert caught.value.slug == "blocked-target"


async def test_private_answers_pass_when_allowed() -> None:
    resolve = FakeResolver({"evil.example": ["127.0.0.1"]})
    found = await resolve_public("evil.example", 443, allow_private=True, resolve=resolve)
    assert found == [LOOPBACK]


async def test_ip_literals_are_not_looked_up() -> None:
    resolve = FakeResolver({})
    with pytest.raises(BlockedTarget):
        await resolve_public("2130706433", 443, allow_private=False, resolve=resolve)
    assert await resolve_public("8.8.8.8", 443, allow_private=False, resolve=resolve) == [
        ipaddress.IPv4Address("8.8.8.8")
    ]
    assert resolve.asked == []


async def test_a_name_without_answers_is_unresolvable() -> None:
    with pytest.raises(UnresolvableTarget):
        await resolve_public("nowhere.example", 443, allow_private=False, resolve=FakeResolver({}))


async def test_the_system_resolver_refuses_localhost() -> None:
    with pytest.raises(BlockedTarget):
        await resolve_public("localhost", 443, allow_private=False)
