"""Pure ASGI middleware: request ids and logs, body size limit, rate limit, idempotency."""

import contextlib
import hashlib
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.auth import Authenticator, bearer_token
from app.api.errors import app_error_response, internal_error_response
from app.api.ratelimit import RateLimiter
from app.core.errors import (
    AppError,
    Conflict,
    PayloadTooLarge,
    RateLimited,
    UnsupportedMediaType,
    ValidationFailed,
)
from app.core.idempotency import Claim, IdempotencyRecord, IdempotencyStore

logger = logging.getLogger("kokyaku.access")

REQUESTS = Counter(
    "kokyaku_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "kokyaku_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

_NUL_IN_QUERY = re.compile(rb"%00")
_CLIENT_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,200}")
_API_PREFIX = "/v1/"


def _is_api(scope: Scope) -> bool:
    return scope["type"] == "http" and str(scope["path"]).startswith(_API_PREFIX)


async def _send_error(error: AppError, scope: Scope, receive: Receive, send: Send) -> None:
    await app_error_response(error)(scope, receive, send)


def _with_headers(message: Message, extra: list[tuple[bytes, bytes]]) -> Message:
    return {**message, "headers": [*message.get("headers", []), *extra]}


def _with_request_id(send: Send, request_id: str) -> Send:
    async def send_with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = _with_headers(message, [(b"x-request-id", request_id.encode())])
        await send(message)

    return send_with_id


class RequestContextMiddleware:
    """Gives every request an id, logs and measures it, and turns a crash into a 500 problem."""

    def __init__(self, app: ASGIApp, *, access_log: bool) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get("x-request-id")
        valid = incoming is not None and _CLIENT_REQUEST_ID.fullmatch(incoming)
        request_id = incoming if valid and incoming else secrets.token_hex(16)
        scope.setdefault("state", {})["request_id"] = request_id
        if _NUL_IN_QUERY.search(scope.get("query_string", b"")):
            nul = ValidationFailed.at(("query",), "The query may not contain %00 (NUL).")
            await _send_error(nul, scope, receive, _with_request_id(send, request_id))
            return
        started = time.perf_counter()
        status = 500
        response_started = False

        identified_send = _with_request_id(send, request_id)

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
            await identified_send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception("unhandled error", extra={"request_id": request_id})
            if response_started:
                raise
            await internal_error_response()(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route).observe(elapsed)
            if self.access_log:
                logger.info(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )


class _BodyTooLargeError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class BodyRule:
    """What request bodies under a path prefix may be: their media type and size."""

    prefix: str
    max_bytes: int
    multipart: bool = False


def _media_type_problem(headers: Headers, rule: BodyRule) -> AppError | None:
    content_type = headers.get("content-type")
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if rule.multipart:
        if media_type != "multipart/form-data":
            return UnsupportedMediaType("Send the file as multipart/form-data.")
        return None
    has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
    if content_type is None and not has_body:
        return None
    if media_type != "application/json" and not media_type.endswith("+json"):
        return UnsupportedMediaType("Send the request body as application/json.")
    return None


class RequestBodyMiddleware:
    """Checks /v1 bodies before anything reads them: 415 for the wrong media type, 413 over the
    size limit (declared or streamed). The first rule whose prefix matches applies."""

    def __init__(self, app: ASGIApp, *, rules: list[BodyRule]) -> None:
        self.app = app
        self.rules = rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        path = str(scope["path"])
        rule = next((rule for rule in self.rules if path.startswith(rule.prefix)), None)
        if rule is None:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if (problem := _media_type_problem(headers, rule)) is not None:
            await _send_error(problem, scope, receive, send)
            return
        max_bytes = rule.max_bytes
        too_large = PayloadTooLarge(f"Request bodies are limited to {max_bytes} bytes.")
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await _send_error(too_large, scope, receive, send)
            return
        received = 0
        exceeded = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    exceeded = True
                    raise _BodyTooLargeError
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if exceeded:
                return  # the app's answer to a truncated body is replaced by the 413 below
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(_BodyTooLargeError):
            await self.app(scope, limited_receive, guarded_send)
        if exceeded and not response_started:
            await _send_error(too_large, scope, receive, send)


class RateLimitMiddleware:
    """Counts every /v1 request against its API key (or client address without one)."""

    def __init__(self, app: ASGIApp, *, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_api(scope):
            await self.app(scope, receive, send)
            return
        token = bearer_token(Headers(scope=scope))
        if token is not None:
            bucket = "key:" + hashlib.sha256(token.encode()).hexdigest()[:32]
        else:
            client = scope.get("client")
            bucket = "addr:" + (client[0] if client else "unknown")
        quota = await self.limiter.hit(bucket)
        quota_headers = quota.headers()

        async def send_with_quota(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = _with_headers(message, quota_headers)
            await send(message)

        if quota.exceeded:
            await _send_error(RateLimited(quota.reset_seconds), scope, receive, send_with_quota)
            return
        await self.app(scope, receive, send_with_quota)


# Outcomes that mean the request never ran are not kept, so the client may retry with the key.
_NOT_STORED = frozenset({400, 401, 403, 413, 415, 422, 429})
_REPLAYED_HEADERS = frozenset({"content-type", "location", "etag"})


class IdempotencyMiddleware:
    """Replays the first completed outcome of a POST for the same Idempotency-Key (DESIGN §5)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticator: Authenticator,
        store: IdempotencyStore,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_api(scope) or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get("idempotency-key")
        if key is None:
            await self.app(scope, receive, send)
            return
        if not 1 <= len(key) <= 255:
            error = ValidationFailed.at(
                ("header", "Idempotency-Key"), "The key must have 1 to 255 characters."
            )
            await _send_error(error, scope, receive, send)
            return
        token = bearer_token(headers)
        principal = await self.authenticator.principal(token) if token else None
        if principal is None:
            await self.app(scope, receive, send)  # answered 401 downstream; nothing to store
            return

        body = await _read_body(receive)
        fingerprint = request_fingerprint(scope["path"], scope.get("query_string", b""), body)
        store = self.store
        identity = (principal.workspace_id, principal.api_key_id, key)
        claim, record = await store.claim(*identity, fingerprint)
        if claim is Claim.MISMATCH:
            mismatch = ValidationFailed.at(
                ("header", "Idempotency-Key"),
                "This key was used with a different request; use a new key for a new request.",
            )
            await _send_error(mismatch, scope, receive, send)
            return
        if claim is Claim.IN_FLIGHT:
            in_flight = Conflict("A request with this Idempotency-Key is still being processed.")
            await _send_error(in_flight, scope, receive, send)
            return
        if claim is Claim.COMPLETED and record is not None:
            await _replay(record, send)
            return
        await self._run_and_store(scope, body, send, store, identity)

    async def _run_and_store(
        self,
        scope: Scope,
        body: bytes,
        send: Send,
        store: IdempotencyStore,
        identity: tuple[Any, Any, str],
    ) -> None:
        status = 500
        kept_headers: list[list[str]] = []
        chunks: list[bytes] = []
        body_sent = False

        async def replay_receive() -> Message:
            nonlocal body_sent
            if body_sent:
                return {"type": "http.disconnect"}
            body_sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def capturing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                kept_headers.extend(
                    [name.decode(), value.decode()]
                    for name, value in message.get("headers", [])
                    if name.decode().lower() in _REPLAYED_HEADERS
                )
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_receive, capturing_send)
        except BaseException:
            await store.release(identity)
            raise
        if status >= 500 or status in _NOT_STORED:
            await store.release(identity)
        else:
            await store.complete(identity, status, kept_headers, b"".join(chunks))


def request_fingerprint(path: str, query_string: bytes, body: bytes) -> str:
    """What makes two POSTs with one Idempotency-Key the same request."""
    return hashlib.sha256(b"\n".join([path.encode(), query_string, body])).hexdigest()


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def _replay(record: IdempotencyRecord, send: Send) -> None:
    headers = [(name.encode(), value.encode()) for name, value in record.response_headers or []]
    headers.append((b"idempotent-replayed", b"true"))
    status = record.response_status or 200
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": record.response_body or b""})
