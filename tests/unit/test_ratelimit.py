import uuid

import pytest

from app.api.ratelimit import MemoryRateLimiter, RedisRateLimiter

REDIS_URL = "redis://127.0.0.1:6379/0"


async def test_memory_limiter_counts_down_then_reports_excess() -> None:
    limiter = MemoryRateLimiter(limit=3, window_seconds=60)
    quotas = [await limiter.hit("key:a") for _ in range(4)]
    assert [quota.remaining for quota in quotas[:3]] == [2, 1, 0]
    assert quotas[3].exceeded
    assert not (await limiter.hit("key:b")).exceeded
    assert 1 <= quotas[3].reset_seconds <= 60


async def test_redis_limiter_shares_counts_between_instances() -> None:
    bucket = f"key:{uuid.uuid4().hex}"
    first = RedisRateLimiter(REDIS_URL, limit=2, window_seconds=60)
    second = RedisRateLimiter(REDIS_URL, limit=2, window_seconds=60)
    try:
        assert (await first.hit(bucket)).remaining == 1
        assert (await second.hit(bucket)).remaining == 0
        assert (await first.hit(bucket)).exceeded
    finally:
        await first.close()
        await second.close()


async def test_unreachable_redis_lets_requests_through() -> None:
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0", limit=1, window_seconds=60)
    try:
        quota = await limiter.hit("key:x")
    finally:
        await limiter.close()
    assert not quota.exceeded
    assert quota.remaining == 1


@pytest.mark.parametrize("limit", [1, 5])
async def test_headers_never_show_negative_remaining(limit: int) -> None:
    limiter = MemoryRateLimiter(limit=limit, window_seconds=60)
    for _ in range(limit + 2):
        quota = await limiter.hit("key:c")
    headers = dict(quota.headers())
    assert headers[b"ratelimit-remaining"] == b"0"
    assert headers[b"ratelimit-limit"] == str(limit).encode()
