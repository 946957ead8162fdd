"""Time-ordered identifiers (UUID version 7, RFC 9562)."""

import os
import random
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0
# Ids order and identify rows; they are not secrets (access is by API key and workspace), so a
# fast generator seeded from the OS serves better than a system call per id.
_random = random.Random(os.urandom(32))  # noqa: S311
# A forked process must not repeat its parent's sequence.
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))


def uuid7() -> uuid.UUID:
    """A UUIDv7 whose values are strictly increasing within this process.

    The 12-bit `rand_a` field carries a counter seeded randomly each millisecond (RFC 9562
    method 1), so ids made in the same millisecond still sort in creation order.
    """
    global _last_ms, _counter
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms > _last_ms:
            _last_ms = now_ms
            _counter = _random.getrandbits(11)
        else:
            _counter += 1
            if _counter > 0xFFF:
                _last_ms += 1
                _counter = 0
        timestamp_ms, sequence = _last_ms, _counter
        tail = _random.getrandbits(62)
    value = (timestamp_ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= sequence << 64
    value |= 0b10 << 62
    value |= tail
    return uuid.UUID(int=value)
