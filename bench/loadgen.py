"""A lean HTTP/1.1 keep-alive load generator: N connections, one request in flight on each.

Closed loop by default: each connection sends its next request as soon as an answer arrives.
With a `rate` it is an open loop, as clients arrive in real life: requests fall due at fixed
times whatever the server does, each goes out on the next idle connection, and its latency is
counted from the moment it fell due, waiting for a connection included. A slow server therefore
shows as a long tail at the offered rate rather than as a lower rate with flattering latencies
(coordinated omission). The connections stay N, so an overloaded server holds at most N requests
when the window ends and is ready for the next measurement after answering them.

httpx spends more CPU per request than the server under test does, so on a 2-core machine it would
measure itself. This client is a bare `asyncio.Protocol` that writes pre-formatted requests and
reads only the status line and Content-Length, and it refuses any host but loopback.
"""

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

LOOPBACK = "127.0.0.1"
CONNECT_TIMEOUT_SECONDS = 10.0
# In-flight requests get this long to answer after the measured window closes.
DRAIN_TIMEOUT_SECONDS = 10.0
MAX_ERROR_SAMPLES = 5

NextRequest = Callable[[], bytes]
"""Returns the bytes of the next request to send: `encode_request(...)` of some request."""


class LoadError(RuntimeError):
    """The load could not be generated at all (server down, wrong answer to the probe)."""


def encode_request(
    method: str,
    path: str,
    *,
    host: str,
    token: str | None = None,
    body: bytes | None = None,
    content_type: str = "application/json",
) -> bytes:
    """One HTTP/1.1 request with keep-alive (the HTTP/1.1 default), ready to write."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return head + body if body is not None else head


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one measured window produced. Latencies are in seconds, successful requests only."""

    seconds: float
    successes: int
    errors: int
    latencies: list[float]
    error_samples: list[str]
    client_cpu_seconds: float

    @property
    def throughput(self) -> float:
        return self.successes / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, fraction: float) -> float:
        """Nearest-rank percentile; NaN when nothing succeeded."""
        return percentile_ms(self.latencies, fraction)


def percentile_ms(latencies: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of latencies in seconds, in milliseconds; NaN when none."""
    if not latencies:
        return math.nan
    ordered = sorted(latencies)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1] * 1000


@dataclass(slots=True)
class _Tally:
    """Shared by all connections of one load run; the protocol callbacks update it in place."""

    next_request: NextRequest
    expected_status: int
    max_requests: int
    open_loop: bool = False
    # Open loop: connections waiting for a request, and due times waiting for a connection.
    # First in, first out: every connection takes its turn, so none sits idle long enough for
    # the server's keep-alive timeout to close it.
    idle: deque["_Connection"] = field(default_factory=deque)
    due: deque[float] = field(default_factory=deque)
    measuring: bool = False
    stopping: bool = False
    successes: int = 0
    # Errors count in the warm-up too: a run that ever answered wrongly must say so.
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)
    full: asyncio.Event = field(default_factory=asyncio.Event)

    def response(self, status: int, latency: float, body: bytes) -> None:
        if status != self.expected_status:
            self.error(f"status {status}: {body[:200]!r}")
            return
        if self.measuring:
            self.successes += 1
            self.latencies.append(latency)
            if self.successes >= self.max_requests:
                self.full.set()

    def error(self, description: str, count: int = 1) -> None:
        self.errors += count
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(description)


class _Connection(asyncio.Protocol):
    """One keep-alive connection that sends the next request as soon as a response completes.

    Driving the loop from `data_received` avoids a task and a future per request, which is most
    of what an asyncio client would otherwise spend.
    """

    def __init__(self, tally: _Tally) -> None:
        self.tally = tally
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.started = 0.0
        self.in_flight = False
        self.failed = False
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without inheriting from it.
        self.transport = cast(asyncio.Transport, transport)
        self._send_next()

    def _send_next(self) -> None:
        tally = self.tally
        if not tally.open_loop:
            self.write(time.perf_counter())
        elif tally.due and not tally.stopping:
            self.write(tally.due.popleft())
        elif tally.stopping:
            self.close()
        else:
            tally.idle.append(self)

    def write(self, due: float) -> None:
        """Sends the next request, whose latency counts from `due`."""
        assert self.transport is not None
        if self.tally.stopping:
            self.transport.close()
            return
        request = self.tally.next_request()
        self.in_flight = True
        self.started = due
        self.transport.write(request)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        header_end = buffer.find(b"\r\n\r\n")
        if header_end < 0:
            return
        head = bytes(buffer[:header_end]).lower()
        length = _content_length(head)
        if length is None:
            # Our servers always send Content-Length for these bodies; anything else is a bug.
            self._fail(f"response without Content-Length: {head[:200]!r}")
            return
        total = header_end + 4 + length
        if len(buffer) < total:
            return
        if len(buffer) > total:
            self._fail("bytes after the response, which was not requested")
            return
        finished = time.perf_counter()
        self.in_flight = False
        status = int(head[9:12])
        body = bytes(buffer[header_end + 4 :]) if status != self.tally.expected_status else b""
        buffer.clear()
        self.tally.response(status, finished - self.started, body)
        if b"\r\nconnection: close" in head:
            assert self.transport is not None
            self.transport.close()
            return
        self._send_next()

    def _fail(self, description: str) -> None:
        self.failed = True
        self.tally.error(description)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.failed:
            pass  # counted already
        elif self.in_flight:
            self.tally.error(f"connection lost mid-request: {exc!r}")
        elif not self.tally.stopping:
            # The run goes on with one connection fewer, so the figures need a loud mark.
            self.tally.error(f"connection closed by the server: {exc!r}")
        if self in self.tally.idle:
            self.tally.idle.remove(self)  # nothing more goes out on it
        if not self.closed.done():
            self.closed.set_result(None)


def _content_length(head: bytes) -> int | None:
    start = head.find(b"\r\ncontent-length:")
    if start < 0:
        return None
    start += len(b"\r\ncontent-length:")
    end = head.find(b"\r\n", start)
    return int(head[start : end if end >= 0 else len(head)])


async def probe(port: int, request: bytes, expected_status: int) -> bytes:
    """Sends one request before a measurement, so a wrong answer fails fast and legibly.

    Returns the body of the (expected) answer, for the scenario to check further."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(LOOPBACK, port), CONNECT_TIMEOUT_SECONDS
    )
    try:
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CONNECT_TIMEOUT_SECONDS)
        length = _content_length(head.lower()) or 0
        body = await asyncio.wait_for(reader.readexactly(length), CONNECT_TIMEOUT_SECONDS)
    finally:
        writer.close()
    status = int(head[9:12])
    if status != expected_status:
        raise LoadError(f"expected {expected_status}, got {status}: {body[:300]!r}")
    return body


async def generate_load(
    port: int,
    next_request: NextRequest,
    *,
    expected_status: int,
    connections: int,
    warmup_seconds: float,
    seconds: float,
    max_requests: int,
    rate: float | None = None,
) -> LoadResult:
    """Loads 127.0.0.1:`port` for a warm-up, then measures for `seconds` or `max_requests`;
    at most `rate` requests/s if given."""
    tally = _Tally(next_request, expected_status, max_requests, open_loop=rate is not None)
    opened: list[_Connection] = []
    arrivals: asyncio.Task[None] | None = None
    try:
        await _connect(port, tally, connections, opened)
        if rate is not None:
            arrivals = asyncio.create_task(_arrive(tally, rate))
        elapsed, cpu = await _measure_window(tally, warmup_seconds, seconds)
        if arrivals is not None:
            await arrivals
        _, pending = await asyncio.wait(
            [connection.closed for connection in opened], timeout=DRAIN_TIMEOUT_SECONDS
        )
    except BaseException:
        # Cancelled (SIGTERM, Ctrl-C) or failed: leave no connection behind.
        tally.stopping = True
        if arrivals is not None:
            arrivals.cancel()
        _abort(opened)
        raise
    if pending:
        tally.error(
            f"{len(pending)} requests unanswered {DRAIN_TIMEOUT_SECONDS:.0f} s after the end",
            count=len(pending),
        )
        _abort(opened)
    return LoadResult(
        seconds=elapsed,
        successes=tally.successes,
        errors=tally.errors,
        latencies=tally.latencies,
        error_samples=tally.error_samples,
        client_cpu_seconds=cpu,
    )


async def _connect(port: int, tally: _Tally, count: int, opened: list[_Connection]) -> None:
    loop = asyncio.get_running_loop()
    for _ in range(count):
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(tally), LOOPBACK, port),
                CONNECT_TIMEOUT_SECONDS,
            )
        except (OSError, TimeoutError) as error:
            raise LoadError(f"cannot connect to {LOOPBACK}:{port}: {error!r}") from error
        opened.append(protocol)


async def _arrive(tally: _Tally, rate: float) -> None:
    """Makes a request due every 1/`rate` seconds until the window closes; all that fell due
    while the loop was busy go out at once (as connections allow), each still timed from its
    own due moment."""
    interval = 1 / rate
    started = time.perf_counter()
    number = 0
    while not tally.stopping:
        now = time.perf_counter()
        while started + number * interval <= now:
            tally.due.append(started + number * interval)
            number += 1
        while tally.due and tally.idle:
            tally.idle.popleft().write(tally.due.popleft())
        await asyncio.sleep(max(0.0, started + number * interval - time.perf_counter()))
    tally.due.clear()  # never sent: not part of the measurement
    for connection in tally.idle:
        connection.close()
    tally.idle.clear()


async def _measure_window(
    tally: _Tally, warmup_seconds: float, seconds: float
) -> tuple[float, float]:
    """The measured window's length and the CPU time this process spent in it."""
    await asyncio.sleep(warmup_seconds)
    tally.measuring = True
    cpu_started = time.process_time()
    started = time.perf_counter()
    # The window usually ends by timing out; `max_requests` only bounds a surprisingly fast run.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(tally.full.wait(), seconds)
    # Responses that arrive from here on are not counted, and each connection closes after one.
    tally.measuring = False
    tally.stopping = True
    return time.perf_counter() - started, time.process_time() - cpu_started


def _abort(connections: list[_Connection]) -> None:
    for connection in connections:
        if connection.transport is not None:
            connection.transport.abort()
