"""API key authentication with a short-lived cache, so a request costs no extra query."""

import time
from uuid import UUID

from starlette.datastructures import Headers

from app.core.clock import utcnow
from app.db.session import Database
from app.domain.access.service import Principal, authenticate

_MAX_CACHED = 10_000


def bearer_token(headers: Headers) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class Authenticator:
    """Resolves secrets to principals.

    Lookups are cached for `ttl` seconds: a key revoked through this process stops working at
    once; through another process, within `ttl` seconds. Expiry is checked on every request.
    """

    def __init__(self, database: Database, ttl: float) -> None:
        self.database = database
        self.ttl = ttl
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def principal(self, secret: str) -> Principal | None:
        now = time.monotonic()
        cached = self._cache.get(secret)
        if cached is not None and cached[0] > now:
            principal = cached[1]
        else:
            async with self.database.reader() as session:
                principal = await authenticate(session, secret)
            if self.ttl > 0:
                if len(self._cache) >= _MAX_CACHED:
                    self._cache.clear()
                self._cache[secret] = (now + self.ttl, principal)
        expired = principal is not None and principal.expires_at is not None
        if expired and principal.expires_at <= utcnow():  # type: ignore[union-attr,operator]
            return None
        return principal

    def forget_key(self, api_key_id: UUID) -> None:
        self._cache = {
            secret: entry
            for secret, entry in self._cache.items()
            if entry[1] is None or entry[1].api_key_id != api_key_id
        }
