"""Fixed-window request limits per API key, in process memory or in Redis across processes."""

import logging
import math
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger("kokyaku.ratelimit")


@dataclass(frozen=True, slots=True)
class Quota:
    limit: int
    remaining: int
    reset_seconds: int

    @property
    def exceeded(self) -> bool:
        return self.remaining < 0

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(max(self.remaining, 0)).encode()),
            (b"ratelimit-reset", str(self.reset_seconds).encode()),
        ]


class RateLimiter(Protocol):
    async def hit(self, bucket: str) -> Quota: ...

    async def close(self) -> None: ...


class _Window:
    def __init__(self, limit: int, window_seconds: int) -> None:
        self.limit = limit
        self.seconds = window_seconds

    def current(self) -> tuple[int, int]:
        """The index of the current window and the whole seconds until it ends."""
        now = time.time()
        index = int(now // self.seconds)
        return index, max(1, math.ceil((index + 1) * self.seconds - now))


class MemoryRateLimiter(_Window):
    """For a single process (the embedded default); counts are lost on restart."""

    def __init__(self, limit: int, window_seconds: int) -> None:
        super().__init__(limit, window_seconds)
        self._counts: dict[str, tuple[int, int]] = {}

    async def hit(self, bucket: str) -> Quota:
        index, reset = self.current()
        window, count = self._counts.get(bucket, (index, 0))
        if window != index:
            if len(self._counts) > 10_000:
                self._counts = {k: v for k, v in self._counts.items() if v[0] == index}
            count = 0
        count += 1
        self._counts[bucket] = (index, count)
        return Quota(self.limit, self.limit - count, reset)

    async def close(self) -> None:
        self._counts.clear()


class RedisRateLimiter(_Window):
    """Shared by every process that points at the same Redis."""

    def __init__(self, url: str, limit: int, window_seconds: int) -> None:
        super().__init__(limit, window_seconds)
        self._redis: Redis = Redis.from_url(url)

    async def hit(self, bucket: str) -> Quota:
        index, reset = self.current()
        key = f"kokyaku:ratelimit:{bucket}:{index}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, self.seconds + 1)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as error:
            # An unreachable limiter must not take the API down with it: let the request pass.
            logger.warning("rate limiter unavailable: %s", type(error).__name__)
            return Quota(self.limit, self.limit, reset)
        return Quota(self.limit, self.limit - int(count), reset)

    async def close(self) -> None:
        await self._redis.aclose()


def create_rate_limiter(redis_url: str | None, limit: int, window_seconds: int) -> RateLimiter:
    if redis_url:
        return RedisRateLimiter(redis_url, limit, window_seconds)
    return MemoryRateLimiter(limit, window_seconds)
