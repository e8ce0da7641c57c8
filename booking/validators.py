"""What a valid weekly window, weekday list, US state code list and NPI are: one definition for
the models (so the admin's ``full_clean`` refuses bad values) and the ``/v3/`` serializers.

Pure Python: no ORM, no settings. Model validators raise Django's ``ValidationError``; DRF turns
the same error into a 400 when a serializer field lists the validator.
"""

from __future__ import annotations

import re
from datetime import time

from django.core.exceptions import ValidationError

from tenants.us_states import US_STATE_CODES

MIDNIGHT = time(0, 0)
DAY_MIN, DAY_MAX = 0, 6  # 0 = Sunday … 6 = Saturday
MAX_WEEKLY_WINDOWS = 7 * 48
MAX_LICENSED_STATES = 60
MAX_VISITS_PER_RULE = 1000  # a visit-type rule's total_visits
MAX_RECUR_EVERY_WEEKS = 52  # a shift's every-N-weeks recurrence
WEEKLY_FREQUENCIES = ("WEEKLY", "BIWEEKLY")
MONTHLY_FREQUENCY = "MONTHLY"
WEEKLY_WINDOW_KEYS = ("dayOfWeek", "startTime", "endTime")

# ASCII digits only (``\d`` also matches other scripts' digits), the whole string (``$`` also
# matches before a trailing newline).
WALL_TIME = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})")
NPI = re.compile(r"[0-9]{10}")


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


def _minute_of_day(value: time, *, end: bool) -> float:
    return 24 * 60 if end and value == MIDNIGHT else value.hour * 60 + value.minute + value.second / 60


def wall_window_contains(outer: tuple[time, time], inner: tuple[time, time]) -> bool:
    """``inner`` lies within ``outer`` (each a start and an end; an end of 00:00 is midnight)."""
    return (
        _minute_of_day(inner[0], end=False) >= _minute_of_day(outer[0], end=False)
        and _minute_of_day(inner[1], end=True) <= _minute_of_day(outer[1], end=True)
    )


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


def validate_weekdays(value) -> None:
    """A recurring block's ``weekdays``: a list of distinct days 0 (Sunday) … 6 (Saturday)."""
    if not isinstance(value, list) or not all(is_day_of_week(day) for day in value):
        raise ValidationError(
            f"Must be a list of weekdays, integers from {DAY_MIN} (Sunday) to {DAY_MAX} (Saturday).", code="invalid"
        )
    if len(set(value)) != len(value):
        raise ValidationError("Each weekday at most once.", code="invalid")


def recurrence_problems(*, frequency: str, weekdays, month_day) -> dict[str, str]:
    """A recurring block's fields that its frequency doesn't use, keyed ``weekdays``/``month_day``."""
    problems = {}
    if weekdays and frequency not in WEEKLY_FREQUENCIES:
        problems["weekdays"] = "Only for WEEKLY and BIWEEKLY blocks."
    if month_day is not None and frequency != MONTHLY_FREQUENCY:
        problems["month_day"] = "Only for MONTHLY blocks."
    return problems


def validate_us_state_codes(value) -> None:
    """A list of distinct upper-case US state codes (the 50 states, DC and five territories)."""
    if not isinstance(value, list) or not all(isinstance(code, str) for code in value):
        raise ValidationError('Must be a list of US state codes, e.g. ["MA", "NY"].', code="invalid")
    if len(value) > MAX_LICENSED_STATES:
        raise ValidationError(f"At most {MAX_LICENSED_STATES} state codes.", code="max_length")
    unknown = [code for code in value if code not in US_STATE_CODES]
    if unknown:
        raise ValidationError(f"Unknown US state code(s): {', '.join(c[:8] for c in unknown[:10])}.", code="invalid")
    if len(set(value)) != len(value):
        raise ValidationError("Each state code at most once.", code="invalid")


def validate_npi(value) -> None:
    """A National Provider Identifier: 10 ASCII digits (empty: none)."""
    if value in ("", None):
        return
    if not isinstance(value, str) or NPI.fullmatch(value) is None:
        raise ValidationError("Must be 10 digits.", code="invalid")
