"""What a valid weekly window is (``{"dayOfWeek", "startTime", "endTime"}``): an organization's
default hours are made of them, and so are the booking app's weekly hours (``booking/validators.py``
uses these definitions).

Pure Python: no ORM, no settings. The model validator raises Django's ``ValidationError``; DRF
turns the same error into a 400 when a serializer field lists the validator.
"""

from __future__ import annotations

import re
from datetime import time

from django.core.exceptions import ValidationError

MIDNIGHT = time(0, 0)
DAY_MIN, DAY_MAX = 0, 6  # 0 = Sunday … 6 = Saturday
MAX_WEEKLY_WINDOWS = 7 * 48
WEEKLY_WINDOW_KEYS = ("dayOfWeek", "startTime", "endTime")

# ASCII digits only (``\d`` also matches other scripts' digits), matched on the whole string.
WALL_TIME = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})")


def parse_wall_time(value, *, end: bool = False) -> time | None:
    """``HH:MM:SS`` as a time, or None when it isn't one. With ``end=True``, ``24:00:00`` (and
    ``00:00:00``) is midnight at the end of the day, returned as 00:00."""
    match = WALL_TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    hours, minutes, seconds = (int(part) for part in match.groups())
    if end and (hours, minutes, seconds) == (24, 0, 0):
        return MIDNIGHT
    if hours > 23 or minutes > 59 or seconds > 59:
        return None
    return time(hours, minutes, seconds)


def wall_window_is_valid(start: time, end: time) -> bool:
    """The end is after the start, or at midnight (the end of the day)."""
    return end == MIDNIGHT or end > start


def is_day_of_week(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and DAY_MIN <= value <= DAY_MAX


def weekly_window_problems(item) -> dict[str, str]:
    """What is wrong with one ``{"dayOfWeek", "startTime", "endTime"}`` window, by key."""
    if not isinstance(item, dict):
        return {"": "Must be an object with dayOfWeek, startTime and endTime."}
    problems = {key: "Unknown key." for key in item if key not in WEEKLY_WINDOW_KEYS}
    for key in WEEKLY_WINDOW_KEYS:
        if key not in item:
            problems[key] = "Required."
    if "dayOfWeek" in item and not is_day_of_week(item["dayOfWeek"]):
        problems["dayOfWeek"] = f"Must be an integer from {DAY_MIN} (Sunday) to {DAY_MAX} (Saturday)."
    start = parse_wall_time(item.get("startTime"))
    end = parse_wall_time(item.get("endTime"), end=True)
    if "startTime" in item and start is None:
        problems["startTime"] = "Must be a time in HH:MM:SS format (00:00:00 to 23:59:59)."
    if "endTime" in item and end is None:
        problems["endTime"] = "Must be a time in HH:MM:SS format (00:00:00 to 24:00:00)."
    if start is not None and end is not None and not wall_window_is_valid(start, end):
        problems["endTime"] = "Must be after startTime."
    return problems


def validate_weekly_windows(value) -> None:
    """A list of weekly windows as stored (``weeklyAvailability``, default hours)."""
    if not isinstance(value, list):
        raise ValidationError(
            'Must be a list of {"dayOfWeek": 0-6, "startTime": "HH:MM:SS", "endTime": "HH:MM:SS"} windows.',
            code="invalid",
        )
    if len(value) > MAX_WEEKLY_WINDOWS:
        raise ValidationError(f"At most {MAX_WEEKLY_WINDOWS} windows.", code="max_length")
    messages = []
    for index, item in enumerate(value):
        for key, problem in weekly_window_problems(item).items():
            where = f"Window {index + 1}" + (f" {key}" if key else "")
            messages.append(f"{where}: {problem}")
    if messages:
        raise ValidationError(messages, code="invalid")
