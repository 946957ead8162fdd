"""Pure workflow rules: schedules in local time, payload templates, durations."""

from datetime import UTC, datetime, timedelta

import pytest

from app.domain.workflow.schedules import next_occurrence
from app.domain.workflow.schemas import parse_duration
from app.domain.workflow.templates import TemplateError, placeholders, render

TOKYO_9 = {"every": "day", "at": "09:00", "timezone": "Asia/Tokyo"}


def test_daily_at_nine_in_tokyo() -> None:
    before = datetime(2026, 11, 23, 23, 59, tzinfo=UTC)  # 08:59 on the 24th in Tokyo
    assert next_occurrence(TOKYO_9, before) == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    at = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # exactly then: the next day
    assert next_occurrence(TOKYO_9, at) == datetime(2026, 11, 25, 0, 0, tzinfo=UTC)


def test_weekly_on_a_weekday() -> None:
    schedule = {"every": "week", "weekday": "monday", "at": "18:30", "timezone": "Asia/Tokyo"}
    wednesday = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    assert next_occurrence(schedule, wednesday) == datetime(2026, 11, 30, 9, 30, tzinfo=UTC)


def test_local_time_follows_daylight_saving() -> None:
    schedule = {"every": "day", "at": "09:00", "timezone": "America/New_York"}
    winter = next_occurrence(schedule, datetime(2026, 3, 6, 15, 0, tzinfo=UTC))
    summer = next_occurrence(schedule, datetime(2026, 3, 8, 15, 0, tzinfo=UTC))
    assert (winter.hour, summer.hour) == (14, 13)  # EST then EDT


def test_a_skipped_local_time_still_fires() -> None:
    schedule = {"every": "day", "at": "02:30", "timezone": "America/New_York"}
    fired = next_occurrence(schedule, datetime(2026, 3, 8, 5, 0, tzinfo=UTC))
    assert fired - datetime(2026, 3, 8, 5, 0, tzinfo=UTC) < timedelta(hours=25)


VALUES = {
    "customer": {"display_name": "山田 太郎", "emails": ["taro@example.jp"], "metrics": None},
    "event": {"type": "order.completed", "data": {"total": 2640, "lines": [{"sku": "TEA-01"}]}},
}


def test_whole_placeholders_keep_their_type_and_inner_ones_become_text() -> None:
    template = {
        "total": "{{event.data.total}}",
        "sku": "{{ event.data.lines.0.sku }}",
        "text": "{{customer.display_name}} 様 ¥{{event.data.total}}",
        "none": "{{customer.metrics}}",
        "inside": "[{{customer.metrics}}]",
        "kept": [1, None, {"{{not.a.key}}": "literal keys stay"}],
    }
    assert render(template, VALUES) == {
        "total": 2640,
        "sku": "TEA-01",
        "text": "山田 太郎 様 ¥2640",
        "none": None,
        "inside": "[]",
        "kept": [1, None, {"{{not.a.key}}": "literal keys stay"}],
    }


def test_a_missing_value_is_an_error_not_a_blank() -> None:
    with pytest.raises(TemplateError, match=r"customer\.phone"):
        render({"to": "{{customer.phone}}"}, VALUES)
    with pytest.raises(TemplateError):
        render("{{event.data.lines.3.sku}}", VALUES)


def test_placeholders_are_found_with_their_place() -> None:
    found = list(placeholders({"a": ["x", "{{customer.emails.0}} {{event.type}}"]}))
    assert found == [(("a", 1), "customer.emails.0"), (("a", 1), "event.type")]


def test_templates_cannot_reach_attributes_or_code() -> None:
    with pytest.raises(TemplateError):
        render("{{customer.__class__}}", VALUES)
    assert render("{{ 1 + 1 }}", VALUES) == "{{ 1 + 1 }}"  # not a path: left as written


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("15m", 900), ("4h", 14400), ("2d", 172800)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "2", "2w", "0s", "366d", "-1h", "1.5h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)
