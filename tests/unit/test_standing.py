"""Pure rules of tiers and scores: threshold crossings and decayed points."""

from datetime import UTC, datetime, timedelta

from app.domain.segment.standing import crossed, decayed

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_a_threshold_is_crossed_when_reached_from_below_or_left_downwards() -> None:
    assert crossed(49, 50, [50, 80]) == [50]
    assert crossed(50, 49, [50, 80]) == [50]
    assert crossed(10, 95, [50, 80]) == [50, 80]
    assert crossed(95, 10, [50, 80]) == [50, 80]
    assert crossed(50, 79, [50, 80]) == []
    assert crossed(60, 60, [50, 80]) == []
    assert crossed(-5, 0, [0]) == [0]
    assert crossed(10, 90, []) == []


def test_points_halve_every_half_life_and_round_to_the_nearest_point() -> None:
    assert decayed(40, NOW, 7, NOW) == 40
    assert decayed(40, NOW - timedelta(days=7), 7, NOW) == 20
    assert decayed(40, NOW - timedelta(days=14), 7, NOW) == 10
    assert decayed(40, NOW - timedelta(days=13), 7, NOW) == 11  # 11.04
    assert decayed(40, NOW - timedelta(minutes=1), 7, NOW) == 40  # 39.997
    assert decayed(-50, NOW - timedelta(days=7), 7, NOW) == -25
    assert decayed(3, NOW - timedelta(days=21), 7, NOW) == 0  # 0.375
    assert decayed(40, NOW - timedelta(days=400), 7, NOW) == 0


def test_without_decay_or_without_a_row_points_count_in_full() -> None:
    assert decayed(40, None, 7, NOW) == 40
    assert decayed(40, NOW - timedelta(days=70), None, NOW) == 40
    assert decayed(40, NOW + timedelta(hours=1), 7, NOW) == 40  # a row dated in the future
