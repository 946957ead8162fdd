"""When a scheduled workflow runs next: daily or weekly at a local time in an IANA zone."""

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def next_occurrence(schedule: dict[str, Any], after: datetime) -> datetime:
    """The first time strictly after `after` (UTC) at which `schedule` fires, in UTC.

    A local time that a daylight-saving change skips fires at the wall time after the gap;
    one that occurs twice fires at its first occurrence.
    """
    zone = ZoneInfo(schedule["timezone"])
    hour, minute = (int(part) for part in schedule["at"].split(":"))
    local = after.astimezone(zone)
    day = local.date()
    if schedule["every"] == "week":
        day += timedelta(days=(WEEKDAYS.index(schedule["weekday"]) - day.weekday()) % 7)
    step = timedelta(days=7 if schedule["every"] == "week" else 1)
    while True:
        candidate = datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(UTC)
        if candidate > after:
            return candidate
        day += step
