"""The dispatcher: turns committed domain events into deliveries and delivers them.

Two steps, each safe to run in any number of processes:
- fan-out reads the outbox in its gap-free order under a lock on a shared cursor, and writes one
  delivery per subscribed endpoint, numbered in that order;
- delivery claims due deliveries (`FOR UPDATE SKIP LOCKED` on PostgreSQL), leases them, posts
  them signed, and records each attempt. A process that dies mid-delivery loses nothing: its
  lease runs out and another process sends the delivery again (same `webhook-id`).
"""

import asyncio
import contextlib
import email.utils
import fnmatch
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID

import orjson
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import (
    Row,
    Table,
    and_,
    bindparam,
    exists,
    func,
    insert,
    not_,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from app.core.clock import utcnow
from app.core.context import Actor, Context
from app.core.errors import AppError
from app.core.ids import uuid7
from app.db.dialect import POSTGRESQL, insert_new
from app.domain.outbox.entities import DomainEvent
from app.domain.outbox.notify import CHANNEL as CHANNEL_NAME
from app.domain.outbox.repository import outbox_horizon
from app.domain.outbox.service import EventRecorder, envelope
from app.domain.webhook import schemas, signing
from app.domain.webhook.entities import (
    DispatcherCursor,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from app.domain.webhook.service import PING
from app.domain.webhook.transport import (
    DeliveryError,
    DeliveryResponse,
    PinnedClients,
    post_pinned,
)

logger = logging.getLogger("kokyaku.dispatcher")

ATTEMPTS = Counter(
    "kokyaku_webhook_attempts_total", "Webhook delivery attempts by outcome", ["outcome"]
)
ATTEMPT_SECONDS = Histogram(
    "kokyaku_webhook_attempt_seconds",
    "Time of one delivery attempt",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15),
)
OUTBOX_LAG = Gauge(
    "kokyaku_outbox_lag_seconds", "Age of the newest domain event the fan-out has handled"
)

# Seconds to wait before attempt 1, 2, ... 10: about three days in all (DESIGN §7).
RETRY_SCHEDULE = (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
JITTER = 0.1
FAILING_LIMIT = timedelta(days=5)
FAN_OUT_BATCH = 500
CURSOR = "fan-out"
_RETRYABLE_4XX = frozenset({408, 409, 429})
_QUEUED = ("pending", "delivering")
# A round claims enough for this many attempts one after another on each connection (and in each
# slot): fewer rounds, fewer claims and records per delivery, while every claimed delivery still
# starts within one attempt's time, well inside its lease.
ROUND_WAVES = 2
# Rounds start at most this often: under a stream of commits one round serves all those that
# arrived meanwhile, instead of each commit paying a round of queries in every process. At 50 ms
# the rounds of two serving processes took a sixth of their CPU under 150 events/s; at 100 ms
# the commit-to-delivery p50 at 100 events/s stays 43 ms.
ROUND_SPACING_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class _Job:
    workspace_id: UUID
    delivery_id: UUID
    endpoint_id: UUID
    event_id: UUID
    url: str
    secrets: list[str]
    headers: dict[str, str]
    payload: dict[str, Any]
    attempt: int
    ordered: bool


@dataclass(frozen=True, slots=True)
class _Outcome:
    job: _Job
    response: DeliveryResponse | None
    error: str | None
    final: bool  # no point in retrying (a policy refusal)
    request_headers: dict[str, str]
    latency_ms: int
    attempted_at: datetime

    @property
    def succeeded(self) -> bool:
        return self.response is not None and 200 <= self.response.status < 300


def subscribed(endpoint: WebhookEndpoint, event: DomainEvent) -> bool:
    """Whether the endpoint wants the event: a type pattern matches, and for an event with
    changes, one of the endpoint's fields (if it names any) changed."""
    if not any(fnmatch.fnmatchcase(event.type, pattern) for pattern in endpoint.event_types):
        return False
    if endpoint.changed_fields and event.changes is not None:
        return any(field in event.changes for field in endpoint.changed_fields)
    return True


def _retry_after(response: DeliveryResponse | None, now: datetime) -> float:
    value = response.headers.get("retry-after") if response is not None else None
    if not value:
        return 0.0
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        return max((email.utils.parsedate_to_datetime(value) - now).total_seconds(), 0.0)
    return 0.0


async def claim_cursor(
    session: AsyncSession,
    name: str,
    *,
    from_start: Callable[[AsyncSession], Awaitable[bool]] | None = None,
) -> DispatcherCursor | None:
    """The outbox reader's cursor `name`, locked until the transaction ends; None when another
    process holds it.

    A new cursor starts at the end of the outbox, unless `from_start` says the reader already
    has something to serve (endpoints or workflows made before any reader ran: the app served
    with its dispatcher off, workers started later); it then reads every event, and the reader
    skips those older than what it serves.
    """
    postgres = session.bind is not None and session.bind.dialect.name == POSTGRESQL
    stmt = select(DispatcherCursor).where(DispatcherCursor.name == name)
    locked = stmt.with_for_update(skip_locked=True) if postgres else stmt
    cursor = (await session.execute(locked)).scalar_one_or_none()
    if cursor is not None:
        return cursor
    if (await session.execute(stmt)).scalar_one_or_none() is not None:
        return None
    last = None
    if from_start is None or not await from_start(session):
        last = (
            await session.execute(
                select(DomainEvent.transaction_id, DomainEvent.position)
                .order_by(DomainEvent.transaction_id.desc(), DomainEvent.position.desc())
                .limit(1)
            )
        ).first()
    dialect = POSTGRESQL if postgres else "sqlite"
    await session.execute(
        insert_new(DispatcherCursor, dialect),
        [
            {
                "name": name,
                "transaction_id": last[0] if last else -1,
                "position": last[1] if last else -1,
                "next_sequence": 1,
            }
        ],
    )
    return (await session.execute(locked)).scalar_one_or_none()


async def _has_endpoints(session: AsyncSession) -> bool:
    return (await session.execute(select(WebhookEndpoint.id).limit(1))).first() is not None


async def outbox_window(
    session: AsyncSession, cursor: DispatcherCursor, limit: int
) -> Sequence[Row[int, int, datetime]]:
    """The keys (transaction, position, created_at) of the next events after `cursor`, in the
    outbox's gap-free order. Keys only: most events concern workspaces the reader has nothing
    for, whose payloads need not be read at all."""
    window = (
        select(DomainEvent.transaction_id, DomainEvent.position, DomainEvent.created_at)
        .where(
            tuple_(DomainEvent.transaction_id, DomainEvent.position)
            > tuple_(cursor.transaction_id, cursor.position)
        )
        .order_by(DomainEvent.transaction_id, DomainEvent.position)
        .limit(limit)
    )
    if session.bind is not None and session.bind.dialect.name == POSTGRESQL:
        window = window.where(DomainEvent.transaction_id < outbox_horizon())
    return (await session.execute(window)).all()


class Dispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        allow_private: bool,
        schedule: Sequence[float] = RETRY_SCHEDULE,
        timeout: float = 15.0,
        concurrency: int = 64,
        per_endpoint: int = 32,
        poll_seconds: float = 1.0,
        round_spacing: float = ROUND_SPACING_SECONDS,
        listen_engine: AsyncEngine | None = None,
        readers: async_sessionmaker[AsyncSession] | None = None,
        companions: Sequence[Callable[[], Awaitable[int]]] = (),
    ) -> None:
        self.sessions = sessions
        # Other outbox readers (the workflow engine) run in the same loop, woken the same way.
        self.companions = tuple(companions)
        # Looking for due work with a reader spares SQLite's single write lock when idle.
        self.readers = readers
        self.listen_engine = listen_engine
        self.allow_private = allow_private
        self.schedule = tuple(schedule)
        self.timeout = timeout
        # A claimed delivery is someone else's to retry once its lease runs out: long enough for
        # its round to finish and be recorded, short enough to recover from a killed worker.
        self.lease = timedelta(seconds=timeout * ROUND_WAVES + 5)
        self.concurrency = concurrency
        self.per_endpoint = per_endpoint
        self.poll_seconds = poll_seconds
        self.round_spacing = round_spacing
        # Connections stay open between rounds: one per delivery in flight to an endpoint.
        self.clients = PinnedClients(connections_per_destination=per_endpoint)
        self._wake = asyncio.Event()
        self._rng = random.Random()  # noqa: S311 - jitter, not secrets

    async def aclose(self) -> None:
        """Closes the connections kept open to receivers."""
        await self.clients.aclose()

    def wake(self) -> None:
        """Something was committed: look now rather than at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Fans out and delivers until `stop` is set or the task is cancelled; errors are
        logged and the loop goes on."""
        listener = asyncio.create_task(self.listen()) if self.listen_engine else None
        try:
            await self._rounds(stop)
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
            await self.aclose()

    async def listen(self) -> None:
        """Wakes on every commit that wrote events, in any process (PostgreSQL LISTEN)."""
        assert self.listen_engine is not None
        while True:
            try:
                async with self.listen_engine.connect() as connection:
                    raw = await connection.get_raw_connection()
                    driver: Any = raw.driver_connection
                    closed = asyncio.Event()
                    driver.add_termination_listener(lambda *_, done=closed: done.set())
                    await driver.add_listener(CHANNEL_NAME, lambda *_: self.wake())
                    await closed.wait()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("outbox listener lost its connection; polling meanwhile")
            await asyncio.sleep(self.poll_seconds * 5)

    async def _rounds(self, stop: asyncio.Event | None) -> None:
        """Again at once while there was work, else after a wake-up or the poll interval; never
        two rounds closer than `round_spacing`."""
        clock = asyncio.get_running_loop()
        while stop is None or not stop.is_set():
            started = clock.time()
            try:
                busy = await self.run_once()
            except Exception:
                logger.exception("dispatcher round failed")
                busy = 0
            if not busy:
                await self.idle(stop)
            rest = self.round_spacing - (clock.time() - started)
            if rest > 0:
                await asyncio.sleep(rest)

    async def idle(self, stop: asyncio.Event | None = None) -> None:
        """Waits for a wake-up, a stop, or the poll interval, whichever comes first."""
        waits = [asyncio.create_task(self._wake.wait())]
        if stop is not None:
            waits.append(asyncio.create_task(stop.wait()))
        _, pending = await asyncio.wait(
            waits, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        self._wake.clear()

    async def run_once(self) -> int:
        busy = 0
        for companion in self.companions:
            try:
                busy += await companion()
            except Exception:
                logger.exception("outbox companion round failed")
        return busy + await self.fan_out() + await self.deliver_due()

    # Fan-out

    async def fan_out(self) -> int:
        async with self.sessions() as session, session.begin():
            cursor = await claim_cursor(session, CURSOR, from_start=_has_endpoints)
            if cursor is None:
                return 0  # another process is fanning out
            keys = await outbox_window(session, cursor, FAN_OUT_BATCH)
            if not keys:
                return 0
            last_transaction, last_position, last_created = keys[-1]
            endpoints: dict[UUID, list[WebhookEndpoint]] = {}
            found = await session.execute(
                select(WebhookEndpoint).where(WebhookEndpoint.enabled.is_(True))
            )
            for endpoint in found.scalars():
                endpoints.setdefault(endpoint.workspace_id, []).append(endpoint)
            rows = []
            now = utcnow()
            if endpoints:
                first_transaction, first_position, _ = keys[0]
                events = await session.execute(
                    select(DomainEvent)
                    .where(
                        DomainEvent.workspace_id.in_(endpoints),
                        tuple_(DomainEvent.transaction_id, DomainEvent.position)
                        >= tuple_(first_transaction, first_position),
                        tuple_(DomainEvent.transaction_id, DomainEvent.position)
                        <= tuple_(last_transaction, last_position),
                    )
                    .order_by(DomainEvent.transaction_id, DomainEvent.position)
                )
                for event in events.scalars():
                    for endpoint in endpoints[event.workspace_id]:
                        if event.created_at >= endpoint.created_at and subscribed(endpoint, event):
                            rows.append(self._delivery_row(endpoint, event, cursor, now))
            if rows:
                await session.execute(insert(WebhookDelivery), rows)
            cursor.transaction_id = last_transaction
            cursor.position = last_position
            OUTBOX_LAG.set((now - last_created).total_seconds())
            return len(keys)

    @staticmethod
    def _delivery_row(
        endpoint: WebhookEndpoint, event: DomainEvent, cursor: DispatcherCursor, now: datetime
    ) -> dict[str, Any]:
        sequence = cursor.next_sequence
        cursor.next_sequence += 1
        return {
            "workspace_id": endpoint.workspace_id,
            "id": uuid7(),
            "endpoint_id": endpoint.id,
            "event_id": event.id,
            "event_type": event.type,
            "sequence": sequence,
            "payload": envelope(event),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }

    # Delivery

    async def deliver_due(self, limit: int | None = None) -> int:
        if self.readers is not None and not await self._anything_due():
            return 0
        jobs = await self._claim(limit or self.concurrency * ROUND_WAVES)
        if not jobs:
            return 0
        slots = asyncio.Semaphore(self.concurrency)
        # An ordered endpoint's deliveries go one after another, in order, and stop at the
        # first that fails: the rest wait for it again. Others go side by side.
        chains: dict[UUID, list[_Job]] = {}
        for job in jobs:
            chains.setdefault(job.endpoint_id if job.ordered else job.delivery_id, []).append(job)

        async def deliver(chain: list[_Job]) -> list[_Outcome]:
            outcomes = []
            for job in chain:
                async with slots:
                    outcome = await self._attempt(job)
                outcomes.append(outcome)
                if not outcome.succeeded:
                    break
            return outcomes

        results = await asyncio.gather(*(deliver(chain) for chain in chains.values()))
        outcomes = [outcome for chain in results for outcome in chain]
        untried = [
            job
            for chain, done in zip(chains.values(), results, strict=True)
            for job in chain[len(done) :]
        ]
        await self._record(outcomes, untried)
        return len(jobs)

    async def _anything_due(self) -> bool:
        assert self.readers is not None
        async with self.readers() as session:
            due = await session.execute(
                select(WebhookDelivery.id)
                .where(
                    WebhookDelivery.status.in_(_QUEUED),
                    WebhookDelivery.next_attempt_at <= utcnow(),
                )
                .limit(1)
            )
            return due.first() is not None

    async def _claim(self, limit: int) -> list[_Job]:
        now = utcnow()
        earlier = aliased(WebhookDelivery)
        waits_for_earlier = exists().where(
            earlier.workspace_id == WebhookDelivery.workspace_id,
            earlier.endpoint_id == WebhookDelivery.endpoint_id,
            earlier.status.in_(_QUEUED),
            earlier.event_type != PING,
            earlier.sequence < WebhookDelivery.sequence,
        )
        async with self.sessions() as session, session.begin():
            postgres = session.bind is not None and session.bind.dialect.name == POSTGRESQL
            stmt = (
                select(WebhookDelivery, WebhookEndpoint)
                .join(
                    WebhookEndpoint,
                    and_(
                        WebhookEndpoint.workspace_id == WebhookDelivery.workspace_id,
                        WebhookEndpoint.id == WebhookDelivery.endpoint_id,
                    ),
                )
                .where(
                    WebhookDelivery.status.in_(_QUEUED),
                    WebhookDelivery.next_attempt_at <= now,
                    WebhookEndpoint.enabled.is_(True),
                    or_(
                        WebhookEndpoint.ordered.is_(False),
                        WebhookDelivery.event_type == PING,
                        not_(waits_for_earlier),
                    ),
                )
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(limit)
            )
            if postgres:
                stmt = stmt.with_for_update(skip_locked=True, of=WebhookDelivery)
            rows = list((await session.execute(stmt)).all())
            jobs: list[_Job] = []
            claimed_per_endpoint: dict[UUID, int] = {}
            for delivery, endpoint in rows:
                if claimed_per_endpoint.get(endpoint.id, 0) >= self.per_endpoint * ROUND_WAVES:
                    continue  # a slow endpoint does not take every slot
                chain = [delivery]
                if endpoint.ordered and delivery.event_type != PING:
                    chain += await self._followers(session, delivery, now, postgres)
                for claimed in chain:
                    claimed_per_endpoint[endpoint.id] = claimed_per_endpoint.get(endpoint.id, 0) + 1
                    jobs.append(_job(claimed, endpoint, now))
            if jobs:
                await session.execute(
                    update(WebhookDelivery)
                    .where(
                        tuple_(WebhookDelivery.workspace_id, WebhookDelivery.id).in_(_keys(jobs))
                    )
                    .values(status="delivering", next_attempt_at=now + self.lease)
                    .execution_options(synchronize_session=False)
                )
            return jobs

    async def _followers(
        self, session: AsyncSession, head: WebhookDelivery, now: datetime, postgres: bool
    ) -> list[WebhookDelivery]:
        """The deliveries queued right behind an ordered endpoint's first one, in order: no
        other worker can take them, since each waits for the one claimed here."""
        stmt = (
            select(WebhookDelivery)
            .where(
                WebhookDelivery.workspace_id == head.workspace_id,
                WebhookDelivery.endpoint_id == head.endpoint_id,
                WebhookDelivery.status == "pending",
                WebhookDelivery.event_type != PING,
                WebhookDelivery.sequence > head.sequence,
            )
            .order_by(WebhookDelivery.sequence)
            .limit(self.per_endpoint - 1)
        )
        if postgres:
            stmt = stmt.with_for_update()
        followers = []
        for delivery in (await session.execute(stmt)).scalars():
            if delivery.next_attempt_at > now:
                break
            followers.append(delivery)
        return followers

    async def _attempt(self, job: _Job) -> _Outcome:
        body = orjson.dumps(job.payload)
        signed = signing.headers(job.secrets, str(job.event_id), int(time.time()), body)
        headers = {**job.headers, **signed}
        shown = {name: value for name, value in headers.items() if name != "webhook-signature"}
        attempted_at = utcnow()
        started = time.perf_counter()
        response: DeliveryResponse | None = None
        error: str | None = None
        final = False
        try:
            response = await post_pinned(
                job.url,
                body,
                headers,
                allow_private=self.allow_private,
                timeout=self.timeout,
                clients=self.clients,
            )
        except DeliveryError as failure:
            error = str(failure)[:500]
        except AppError as refusal:  # the target is no longer allowed
            error, final = refusal.detail[:500], True
        elapsed = time.perf_counter() - started
        ATTEMPT_SECONDS.observe(elapsed)
        latency = int(elapsed * 1000)
        return _Outcome(job, response, error, final, shown, latency, attempted_at)

    async def _record(self, outcomes: Sequence[_Outcome], untried: Sequence[_Job]) -> None:
        """Records a round in a handful of statements, whatever its size: the attempts in one
        insert, the deliveries' new states in one executemany update, the endpoints' failing
        state in one update each way. Only deliveries given up, which emit events, go one by one.
        """
        async with self.sessions() as session, session.begin():
            postgres = session.bind is not None and session.bind.dialect.name == POSTGRESQL
            present = await _existing(session, [o.job for o in outcomes] + list(untried), postgres)
            outcomes = [o for o in outcomes if _key(o.job) in present]  # others: deleted meanwhile
            untried = [job for job in untried if _key(job) in present]
            now = utcnow()
            if outcomes:
                await session.execute(insert(WebhookAttempt), [_attempt_row(o) for o in outcomes])
            changes: list[dict[str, Any]] = []
            given_up: list[_Outcome] = []
            endpoint_succeeded: dict[tuple[UUID, UUID], bool] = {}
            for outcome in outcomes:
                job, response = outcome.job, outcome.response
                endpoint_succeeded[(job.workspace_id, job.endpoint_id)] = outcome.succeeded
                retry_at = None if outcome.succeeded else self._retry_at(outcome, now)
                if outcome.succeeded:
                    ATTEMPTS.labels("succeeded").inc()
                    status = "succeeded"
                elif retry_at is not None:
                    ATTEMPTS.labels("retrying").inc()
                    status = "pending"
                else:
                    ATTEMPTS.labels("failed").inc()
                    status = "failed"
                    given_up.append(outcome)
                changes.append(
                    {
                        "key_workspace_id": job.workspace_id,
                        "key_id": job.delivery_id,
                        "new_status": status,
                        "new_attempts": job.attempt,
                        "new_status_code": response.status if response else None,
                        "new_error": outcome.error,
                        "new_next_attempt_at": retry_at,
                        "new_completed_at": None if retry_at else now,
                    }
                )
            if changes:
                await session.execute(_DELIVERY_OUTCOME, changes)
            if untried:  # back in the queue, untouched, behind the one that failed
                await session.execute(
                    update(_DELIVERY)
                    .where(tuple_(_DELIVERY.c.workspace_id, _DELIVERY.c.id).in_(_keys(untried)))
                    .values(status="pending", next_attempt_at=now)
                )
            await _mark_failing(session, endpoint_succeeded, now)
            for outcome in given_up:
                await self._give_up(session, outcome, now)

    def _retry_at(self, outcome: _Outcome, now: datetime) -> datetime | None:
        """When to try a failed delivery again; None when it is given up."""
        job, response = outcome.job, outcome.response
        status = response.status if response else None
        final = (
            outcome.final
            or status == 410
            or (status is not None and 400 <= status < 500 and status not in _RETRYABLE_4XX)
        )
        if final or job.attempt >= len(self.schedule):
            return None
        delay = self.schedule[job.attempt] * self._rng.uniform(1 - JITTER, 1 + JITTER)
        return now + timedelta(seconds=max(delay, _retry_after(response, now)))

    async def _give_up(self, session: AsyncSession, outcome: _Outcome, now: datetime) -> None:
        """A delivery failed for good: say so, and disable its endpoint if the receiver is gone
        or has been failing for too long."""
        job, response = outcome.job, outcome.response
        status = response.status if response else None
        endpoint = await session.get(WebhookEndpoint, (job.workspace_id, job.endpoint_id))
        if endpoint is None:
            return
        events = EventRecorder(session, Context(job.workspace_id, Actor.system()))
        events.record(
            "webhook.delivery_failed",
            subject_type="webhook",
            subject_id=endpoint.id,
            data={
                "delivery_id": str(job.delivery_id),
                "event_id": str(job.event_id),
                "attempts": job.attempt,
                "last_status_code": status,
                "last_error": outcome.error,
            },
        )
        gone = status == 410
        failing_since = endpoint.failing_since or now
        if endpoint.enabled and (gone or now - failing_since >= FAILING_LIMIT):
            endpoint.enabled = False
            endpoint.disabled_reason = (
                "The receiver answered 410 Gone." if gone else "Failing for 5 days."
            )
            events.record(
                "webhook.endpoint_disabled",
                subject_type="webhook",
                subject_id=endpoint.id,
                data=schemas.Webhook.snapshot(endpoint),
            )


_DELIVERY = cast(Table, WebhookDelivery.__table__)
_ENDPOINT = cast(Table, WebhookEndpoint.__table__)

# One delivery's outcome, executed for a whole round at once; a retried delivery keeps its
# completion time (none), a finished one keeps its last due time.
_DELIVERY_OUTCOME = (
    update(_DELIVERY)
    .where(
        _DELIVERY.c.workspace_id == bindparam("key_workspace_id"),
        _DELIVERY.c.id == bindparam("key_id"),
    )
    .values(
        status=bindparam("new_status"),
        attempts=bindparam("new_attempts"),
        last_status_code=bindparam("new_status_code"),
        last_error=bindparam("new_error"),
        next_attempt_at=func.coalesce(
            bindparam("new_next_attempt_at", type_=_DELIVERY.c.next_attempt_at.type),
            _DELIVERY.c.next_attempt_at,
        ),
        completed_at=bindparam("new_completed_at", type_=_DELIVERY.c.completed_at.type),
    )
)


def _key(job: _Job) -> tuple[UUID, UUID]:
    return job.workspace_id, job.delivery_id


def _keys(jobs: Sequence[_Job]) -> list[tuple[UUID, UUID]]:
    return [_key(job) for job in jobs]


async def _existing(
    session: AsyncSession, jobs: Sequence[_Job], postgres: bool
) -> set[tuple[UUID, UUID]]:
    """Which of the jobs' deliveries still exist (an endpoint deleted meanwhile took its own
    along), kept from deletion until the transaction ends."""
    if not jobs:
        return set()
    stmt = select(WebhookDelivery.workspace_id, WebhookDelivery.id).where(
        tuple_(WebhookDelivery.workspace_id, WebhookDelivery.id).in_(_keys(jobs))
    )
    if postgres:
        stmt = stmt.with_for_update(key_share=True)
    return {
        (workspace_id, delivery_id) for workspace_id, delivery_id in await session.execute(stmt)
    }


def _attempt_row(outcome: _Outcome) -> dict[str, Any]:
    job, response = outcome.job, outcome.response
    return {
        "workspace_id": job.workspace_id,
        "id": uuid7(),
        "delivery_id": job.delivery_id,
        "attempted_at": outcome.attempted_at,
        "status_code": response.status if response else None,
        "latency_ms": outcome.latency_ms,
        "error": outcome.error,
        "response_body": response.body if response else None,
        "request_headers": outcome.request_headers,
    }


async def _mark_failing(
    session: AsyncSession, succeeded: dict[tuple[UUID, UUID], bool], now: datetime
) -> None:
    """An endpoint whose last attempt of the round succeeded is healthy again; one whose last
    attempt failed is failing since now, unless it already was. Rows change only when their
    state does, so healthy endpoints are not locked at all."""
    for healthy in (True, False):
        keys = [key for key, outcome in succeeded.items() if outcome is healthy]
        if not keys:
            continue
        await session.execute(
            update(_ENDPOINT)
            .where(
                tuple_(_ENDPOINT.c.workspace_id, _ENDPOINT.c.id).in_(keys),
                _ENDPOINT.c.failing_since.is_not(None)
                if healthy
                else _ENDPOINT.c.failing_since.is_(None),
            )
            .values(failing_since=None if healthy else now, version=_ENDPOINT.c.version + 1)
        )


def _job(delivery: WebhookDelivery, endpoint: WebhookEndpoint, now: datetime) -> _Job:
    return _Job(
        workspace_id=delivery.workspace_id,
        delivery_id=delivery.id,
        endpoint_id=endpoint.id,
        event_id=delivery.event_id,
        url=endpoint.url,
        secrets=_signing_secrets(endpoint, now),
        headers=dict(endpoint.headers or {}),
        payload=delivery.payload,
        attempt=delivery.attempts + 1,
        ordered=endpoint.ordered and delivery.event_type != PING,
    )


def _signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    secrets = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        secrets.append(endpoint.previous_secret)
    return secrets
