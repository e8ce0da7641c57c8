"""What a valid weekday list, US state code list and NPI are (and, from ``tenants/weekly_windows.py``,
a weekly window): one definition for the models (so the admin's ``full_clean`` refuses bad values)
and the ``/v3/`` serializers.

Pure Python: no ORM, no settings. Model validators raise Django's ``ValidationError``; DRF turns
the same error into a 400 when a serializer field lists the validator.
"""

from __future__ import annotations

import re
from datetime import time

from django.core.exceptions import ValidationError

from tenants.us_states import US_STATE_CODES
from tenants.weekly_windows import (  # noqa: F401 - one definition, used by the booking models and serializers too
    DAY_MAX,
    DAY_MIN,
    MAX_WEEKLY_WINDOWS,
    MIDNIGHT,
    WEEKLY_WINDOW_KEYS,
    is_day_of_week,
    parse_wall_time,
    validate_weekly_windows,
    wall_window_is_valid,
    weekly_window_problems,
)

MAX_LICENSED_STATES = 60
MAX_VISITS_PER_RULE = 1000  # a visit-type rule's total_visits
MAX_RECUR_EVERY_WEEKS = 52  # a shift's every-N-weeks recurrence
WEEKLY_FREQUENCIES = ("WEEKLY", "BIWEEKLY")
MONTHLY_FREQUENCY = "MONTHLY"

# ASCII digits only (``\d`` also matches other scripts' digits), the whole string (``$`` also
# matches before a trailing newline).
NPI = re.compile(r"[0-9]{10}")


def _minute_of_day(value: time, *, end: bool) -> float:
    return 24 * 60 if end and value == MIDNIGHT else value.hour * 60 + value.minute + value.second / 60


def wall_window_contains(outer: tuple[time, time], inner: tuple[time, time]) -> bool:
    """``inner`` lies within ``outer`` (each a start and an end; an end of 00:00 is midnight)."""
    return (
        _minute_of_day(inner[0], end=False) >= _minute_of_day(outer[0], end=False)
        and _minute_of_day(inner[1], end=True) <= _minute_of_day(outer[1], end=True)
    )


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
