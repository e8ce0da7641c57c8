"""Instants as wall-clock time in a named zone, and wall-clock input back to instants.

Used by model names (``Block: Dr Patel, Tue 8 Dec 2026, 13:00–17:00 EST``), the admin and anything
else that shows staff a time (admin.md, "Time").
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.utils import timezone


def zone_of(name: str | None) -> ZoneInfo:
    return ZoneInfo(name or "UTC")


def local(moment: datetime | None, zone_name: str | None) -> datetime | None:
    return None if moment is None else moment.astimezone(zone_of(zone_name))


def local_text(moment: datetime | None, zone_name: str | None, *, with_date: bool = True) -> str:
    """``Tue 8 Dec 2026, 14:20 EST`` (or ``14:20 EST``); an em dash for no instant."""
    if moment is None:
        return "—"
    at = local(moment, zone_name)
    text = f"{at:%a} {at.day} {at:%b %Y, %H:%M}" if with_date else f"{at:%H:%M}"
    return f"{text} {at.tzname()}"


def local_range_text(start: datetime | None, end: datetime | None, zone_name: str | None) -> str:
    """``Tue 8 Dec 2026, 13:00–17:00 EST``; the end's date is named when it is another day."""
    if start is None or end is None:
        return "—"
    a, b = local(start, zone_name), local(end, zone_name)
    head = f"{a:%a} {a.day} {a:%b %Y}, {a:%H:%M}"
    if b.date() == a.date() or (b.time() == time(0) and b.date() == a.date() + timedelta(days=1)):
        tail = "24:00" if b.date() != a.date() else f"{b:%H:%M}"
    else:
        tail = f"{b:%a} {b.day} {b:%b}, {b:%H:%M}"
    zone = a.tzname() if a.tzname() == b.tzname() else f"{a.tzname()}/{b.tzname()}"
    return f"{head}–{tail} {zone}"


def wall_clock_to_instant(naive: datetime, zone_name: str) -> datetime:
    """The instant a wall-clock time means in a zone. A time the clocks skip or pass twice there is
    refused with a ``ValidationError`` that says which."""
    zone = zone_of(zone_name)
    first, second = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    shown = f"{naive:%Y-%m-%d %H:%M}"
    if first.utcoffset() != second.utcoffset():
        roundtrip = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        if roundtrip != naive:
            raise ValidationError(
                f"{shown} does not exist in {zone_name}: the clocks spring forward then. Pick a time before or after the change.",
                code="nonexistent_time",
            )
        raise ValidationError(
            f"{shown} happens twice in {zone_name}: the clocks fall back then. Pick a time before or after the change.",
            code="ambiguous_time",
        )
    return first.astimezone(UTC)


def local_day_bounds(day: date, zone_name: str, days: int = 1) -> tuple[datetime, datetime]:
    """The instants ``[start, end)`` covering ``days`` local days from ``day`` in the zone (a day
    of 23 or 25 hours on a DST change)."""
    zone = zone_of(zone_name)
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(day + timedelta(days=days), time(0), zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def local_today(zone_name: str | None) -> date:
    return timezone.now().astimezone(zone_of(zone_name)).date()
