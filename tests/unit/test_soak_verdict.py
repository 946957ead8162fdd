"""The soak's verdict: a pool swinging with the load is flat, a rising floor is a leak."""

from bench.soak import Sample, _verdicts


def _sample(elapsed: float, *, rss: float = 390.0, fds: int = 111, connections: int = 22) -> Sample:
    return Sample(
        elapsed=elapsed,
        rss_mib=rss,
        largest_rss_mib=rss / 2,
        fds=fds,
        threads=10,
        connections=connections,
        processes=4,
    )


def _flat(samples: list[Sample]) -> dict[str, bool]:
    return {label: flat for label, _, _, flat in _verdicts(samples)}


def test_counts_swinging_between_pool_levels_are_flat() -> None:
    # The last fifth peaks more often than the first: its median is the peak, its floor is not.
    peaks = {3, 41, 42, 43, 45, 46, 48}
    samples = [
        _sample(
            second, fds=120 if second in peaks else 111, connections=31 if second in peaks else 22
        )
        for second in range(50)
    ]
    assert _flat(samples) == {
        "RSS MiB": True,
        "largest RSS MiB": True,
        "open fds": True,
        "threads": True,
        "DB connections": True,
    }


def test_a_rising_floor_is_growth() -> None:
    samples = [
        _sample(second, fds=111 + second // 5, connections=22 + second // 5) for second in range(50)
    ]
    verdict = _flat(samples)
    assert verdict["open fds"] is False
    assert verdict["DB connections"] is False
    assert verdict["threads"] is True


def test_memory_may_settle_but_not_keep_growing() -> None:
    settling = [_sample(second, rss=390.0 + (5.0 if second > 10 else 0.0)) for second in range(50)]
    assert _flat(settling)["RSS MiB"] is True
    growing = [_sample(second, rss=390.0 * (1 + second / 100)) for second in range(50)]
    assert _flat(growing)["RSS MiB"] is False
