"""Wall-clock time: zones, instants, and weekly windows and recurring blocks expanded per local date.

Pure (no Django), shared by the availability engine and anything else that reads wall-clock data.
overview.md "Time": "Wall-clock data (working hours, recurring blocks) is stored as wall-clock time
plus an IANA zone and expanded per local date with ``zoneinfo``, so DST changes move the UTC
instants and never the local hours. A local time that does not exist (spring-forward gap) moves
forward to the first valid instant; an ambiguous one (fall-back) uses its first occurrence for
starts and its second for ends." An end of 00:00 means midnight at the end of the day. Weekdays are
0 = Sunday … 6 = Saturday. Instants are seconds since the Unix epoch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from functools import cache, lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

MIDNIGHT = time(0, 0)
ONE_DAY = timedelta(days=1)
OPEN_ENDED_ANCHOR = date(1970, 1, 4)  # a Sunday: every-N-weeks shifts without validity dates count from here

Interval = tuple[int, int]

# An instant in the engine's inputs: an aware datetime, or seconds since the epoch (what the loader
# reads straight from the database, saving a datetime per value).
Moment = datetime | float | int


class WeeklyWindow(NamedTuple):
    """A wall-clock window on one weekday: a resource's shift or a location's opening hours.

    ``valid_from``/``valid_until`` bound the dates it applies on; ``every_weeks`` > 1 makes it apply
    every N weeks, counted from the week (Sunday to Saturday) of ``valid_from`` or of 1970-01-04.

    This and ``RecurringRule`` are named tuples: the loader makes them for every candidate
    resource, and the engine keeps what it expands from them by their value (``engine.state``),
    which a tuple hashes without calling back into Python.
    """

    day_of_week: int
    start: time
    end: time  # MIDNIGHT = the end of the day
    valid_from: date | None = None
    valid_until: date | None = None
    every_weeks: int = 1
    ref: str = ""


class RecurringRule(NamedTuple):
    """A recurring block, with its zone already resolved (its own, else its scope entity's)."""

    frequency: str  # DAILY | WEEKLY | BIWEEKLY | MONTHLY | YEARLY
    start_date: date
    start: time
    end: time  # MIDNIGHT = the end of the day
    zone: str
    interval: int = 1
    end_date: date | None = None
    weekdays: tuple[int, ...] = ()  # WEEKLY / BIWEEKLY; empty = the weekday of start_date
    month_day: int | None = None  # MONTHLY; None = the day of start_date
    ref: str = ""


# --------------------------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------------------------


@cache
def zone_get(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def seconds(moment: Moment) -> float:
    """An instant given as an aware datetime or as seconds since the epoch, in seconds."""
    return moment.timestamp() if isinstance(moment, datetime) else float(moment)


def epoch(moment: Moment) -> int:
    """An instant as whole epoch seconds (floor)."""
    return math.floor(seconds(moment))


def epoch_ceil(moment: Moment) -> int:
    return math.ceil(seconds(moment))


def instant(seconds: int, zone: str = "UTC") -> datetime:
    return datetime.fromtimestamp(seconds, zone_get(zone))


def local_date(seconds: int, zone: str) -> date:
    return datetime.fromtimestamp(seconds, zone_get(zone)).date()


def _gap_end(zone: ZoneInfo, naive: datetime) -> int:
    """The first valid instant after the spring-forward gap that swallows ``naive``."""
    before = math.floor(naive.replace(tzinfo=zone, fold=1).timestamp())  # read with the later offset
    after = math.floor(naive.replace(tzinfo=zone, fold=0).timestamp())  # read with the earlier offset
    target = datetime.fromtimestamp(after, zone).utcoffset()
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == target:
            after = middle
        else:
            before = middle
    return after


@lru_cache(maxsize=262144)
def wall_to_epoch(zone_name: str, day: date, at: time, is_end: bool) -> int:
    """The instant of wall-clock ``at`` on local ``day`` in ``zone_name`` (overview.md "Time").

    "A local time that does not exist (spring-forward gap) moves forward to the first valid
    instant; an ambiguous one (fall-back) uses its first occurrence for starts and its second for
    ends." ``is_end`` with ``at`` 00:00 means midnight at the END of ``day``.
    """
    if is_end and at == MIDNIGHT:
        day = day + ONE_DAY
    zone = zone_get(zone_name)
    naive = datetime.combine(day, at)
    found = math.floor(naive.replace(tzinfo=zone, fold=1 if is_end else 0).timestamp())
    if datetime.fromtimestamp(found, zone).replace(tzinfo=None) != naive:
        return _gap_end(zone, naive)
    return found


def dates_between(first: date, last: date) -> Iterable[date]:
    day = first
    while day <= last:
        yield day
        day += ONE_DAY


def weekday_of(day: date) -> int:
    """0 = Sunday … 6 = Saturday."""
    return (day.weekday() + 1) % 7


def week_start(day: date) -> date:
    return day - timedelta(days=weekday_of(day))


def window_on(zone: str, day: date, start: time, end: time) -> Interval:
    return wall_to_epoch(zone, day, start, False), wall_to_epoch(zone, day, end, True)


# --------------------------------------------------------------------------------------------
# Wall-clock expansion (used by rule 3)
# --------------------------------------------------------------------------------------------


def weekly_window_applies(window: WeeklyWindow, day: date) -> bool:
    """On ``day``'s weekday, within its validity dates, and in an on-week of an every-N-weeks window."""
    if window.valid_from is not None and day < window.valid_from:
        return False
    if window.valid_until is not None and day > window.valid_until:
        return False
    if window.every_weeks > 1:
        anchor = week_start(window.valid_from or OPEN_ENDED_ANCHOR)
        if ((week_start(day) - anchor).days // 7) % window.every_weeks:
            return False
    return True


def weekly_windows_expand(
    windows: Iterable[WeeklyWindow], zone: str, first: date, last: date
) -> list[tuple[int, int, str]]:
    """Each window on each local date from ``first`` to ``last`` as ``(start, end, ref)``."""
    by_day: dict[int, list[WeeklyWindow]] = {}
    for window in windows:
        by_day.setdefault(window.day_of_week, []).append(window)
    if not by_day:
        return []
    out = []
    for day in dates_between(first, last):
        for window in by_day.get(weekday_of(day), ()):
            if weekly_window_applies(window, day):
                start, end = window_on(zone, day, window.start, window.end)
                if end > start:
                    out.append((start, end, window.ref))
    return out


def recurring_rule_occurs(rule: RecurringRule, day: date) -> bool:
    """Whether a recurring block happens on local ``day``.

    DAILY: every ``interval`` days from ``start_date``. WEEKLY/BIWEEKLY: on ``weekdays`` (default:
    the weekday of ``start_date``), every ``interval`` (BIWEEKLY: 2 × ``interval``) weeks counted
    from the week of ``start_date``. MONTHLY: on ``month_day`` (default: the day of ``start_date``)
    every ``interval`` months; a month without that day is skipped (no block on the 31st of
    April, and none moved to the 30th). YEARLY: on the month and day of ``start_date`` every
    ``interval`` years (29 February only in leap years).
    """
    if day < rule.start_date or (rule.end_date is not None and day > rule.end_date):
        return False
    interval = max(1, rule.interval)
    frequency = rule.frequency
    if frequency == "DAILY":
        return (day - rule.start_date).days % interval == 0
    if frequency in ("WEEKLY", "BIWEEKLY"):
        weekdays = rule.weekdays or (weekday_of(rule.start_date),)
        if weekday_of(day) not in weekdays:
            return False
        every = interval * (2 if frequency == "BIWEEKLY" else 1)
        return ((week_start(day) - week_start(rule.start_date)).days // 7) % every == 0
    if frequency == "MONTHLY":
        month_day = rule.month_day or rule.start_date.day
        months = (day.year - rule.start_date.year) * 12 + day.month - rule.start_date.month
        return day.day == month_day and months % interval == 0
    if frequency == "YEARLY":
        return (
            (day.month, day.day) == (rule.start_date.month, rule.start_date.day)
            and (day.year - rule.start_date.year) % interval == 0
        )
    return False


def recurring_rules_expand(rules: Iterable[RecurringRule], start: int, end: int) -> list[tuple[int, int, str]]:
    """Each occurrence, in its rule's zone, of every local date touching ``[start, end)``."""
    out = []
    for rule in rules:
        first, last = local_date(start, rule.zone), local_date(end, rule.zone)
        if rule.end_date is not None and rule.end_date < first or rule.start_date > last:
            continue
        for day in dates_between(max(first, rule.start_date), min(last, rule.end_date or last)):
            if recurring_rule_occurs(rule, day):
                block_start, block_end = window_on(rule.zone, day, rule.start, rule.end)
                if block_end > block_start:
                    out.append((block_start, block_end, rule.ref))
    return out
