"""Small builders for engine inputs, so each engine test reads like the rule it pins."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from booking.availability import engine as e
from booking.availability import wallclock as wc

UTC = UTC
NOW = datetime(2000, 1, 1, tzinfo=UTC)  # far in the past: nothing is filtered as "past" unless a test says so
ALL_DAYS = range(7)


def t(text: str) -> time:
    """'09:00' or '24:00' (midnight at the end of the day)."""
    hours, minutes = (int(p) for p in text.split(":"))
    return wc.MIDNIGHT if hours == 24 else time(hours, minutes)


def at(text: str, zone: str = "UTC") -> datetime:
    """'2025-03-10 09:00' as an instant in ``zone`` (first occurrence when ambiguous)."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def weekly(start: str, end: str, days=ALL_DAYS, **kwargs) -> tuple[wc.WeeklyWindow, ...]:
    return tuple(wc.WeeklyWindow(day, t(start), t(end), **kwargs) for day in days)


def resource(rid: str = "r1", zone: str = "UTC", hours=("09:00", "17:00"), days=ALL_DAYS, **kwargs) -> e.ResourceIn:
    windows = kwargs.pop("weekly", None)
    if windows is None:
        windows = weekly(*hours, days=days) if hours else ()
    return e.ResourceIn(id=rid, zone=zone, weekly=windows, **kwargs)


def booked(ref: str, start: datetime, end: datetime, **kwargs) -> e.Booked:
    return e.Booked(ref=ref, start=start, end=end, **kwargs)


def inputs(
    resources=None,
    *,
    start: datetime,
    end: datetime,
    duration: int = 30,
    padding: int = 0,
    capacity: int | None = None,
    booking_interval: int | None = None,
    service_round_robin: str | None = None,
    location_zone: str = "UTC",
    location_weekly=(),
    blocks=(),
    recurring_blocks=(),
    now: datetime = NOW,
    zone: str = "UTC",
    **query,
) -> e.Inputs:
    query.setdefault("round_robin", e.NONE)
    return e.Inputs(
        location=e.LocationIn("L", location_zone, tuple(location_weekly)),
        service=e.ServiceIn(
            "S", duration, padding, capacity, booking_interval, service_round_robin,
            duration_select=True,
        ),
        resources=tuple(resources if resources is not None else [resource()]),
        query=e.Query(start=start, end=end, now=now, zone=zone, **query),
        blocks=tuple(blocks),
        recurring_blocks=tuple(recurring_blocks),
    )


def day(d: str, zone: str = "UTC") -> dict:
    """start/end of one local day, as rule 1 sanitizes a date-only request."""
    parsed = date.fromisoformat(d)
    return {
        "start": wc.instant(wc.wall_to_epoch(zone, parsed, time(0), False)),
        "end": wc.instant(wc.wall_to_epoch(zone, parsed, time(23, 59, 59), True)),
        "zone": zone,
    }


def days(first: str, last: str, zone: str = "UTC") -> dict:
    return {"start": day(first, zone)["start"], "end": day(last, zone)["end"], "zone": zone}


def compute(inp: e.Inputs) -> list[tuple[str, tuple[str, ...]]]:
    """The slots as (start rendered in the answer zone, resource ids)."""
    result = e.availability_compute(inp)
    zone = wc.zone_get(inp.query.zone)
    return [(datetime.fromtimestamp(s.start, zone).isoformat(), s.resource_ids) for s in result.slots]


def starts(inp: e.Inputs) -> list[str]:
    """Slot starts as local 'HH:MM' (or 'MM-DD HH:MM' across days) in the answer zone."""
    rendered = compute(inp)
    multi_day = len({s[:10] for s, _ in rendered}) > 1
    return [s[5:16].replace("T", " ") if multi_day else s[11:16] for s, _ in rendered]


def output(inp: e.Inputs) -> dict:
    result = e.availability_compute(inp)
    return e.rule_10_output(result, service_id="S", location_id="L", zone=inp.query.zone)


def with_query(inp: e.Inputs, **changes) -> e.Inputs:
    return replace(inp, query=replace(inp.query, **changes))
