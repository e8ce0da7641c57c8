"""The EMR availability calculation as it read before it was restructured for speed: each rule
scans every appointment of the provider, each window is a dataclass. Kept verbatim (below this
docstring) as the oracle that ``test_availability_calculation.py`` compares
``booking.availability.calculation`` with on random inputs; not used by the product.

EMR availability (``GET /v1/availability``): the three calculation methods, plain data in,
windows out.

Pure like the engine next to it (no Django, no ORM): ``emr.availability`` turns rows into the
dataclasses below. Shift expansion (weekday, validity dates, every-N-weeks, zones and DST) is the
engine's own (``wallclock.weekly_window_applies``, ``wallclock.window_on``) and interval
arithmetic is ``intervals``'s; this module adds what ``emr-api.md`` ("Availability from cached
data") says on top of them, one function per rule:

- ``shifts_on``: the provider's shifts valid that date, else (``fallback_to_default_hours``) the
  default hours; facility scoping and the ``location_ids`` filter.
- ``counted_spans``: the counted appointments, with ``buffer`` after the matching visit type.
- ``daily_limit_reached``: the daily limit per visit type (``gaps``: the whole date).
- ``gaps_windows``, ``slots_windows``, ``equal_slots_windows``: the three methods.
- ``window_render``: the window fields.

Instants are epoch seconds; a provider's dates are local dates in its zone.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import lru_cache

from booking.availability.intervals import Interval, merge, overlaps, subtract
from booking.availability.wallclock import (
    Moment,
    WeeklyWindow,
    dates_between,
    epoch,
    local_date,
    weekday_of,
    weekly_window_applies,
    window_on,
    zone_get,
)

GAPS, SLOTS, EQUAL_SLOTS = "gaps", "slots", "equal_slots"
METHODS = (GAPS, SLOTS, EQUAL_SLOTS)
ALL = "all"
MINUTE = 60


@dataclass(frozen=True, slots=True)
class RuleIn:
    """A visit-type rule of a shift: ``total_visits`` visits of ``visit_type`` in ``[start, end)``."""

    start: time
    end: time  # MIDNIGHT = the end of the day
    total_visits: int
    visit_type: str


@dataclass(frozen=True, slots=True)
class ShiftIn:
    window: WeeklyWindow  # weekday, wall times, validity dates, every-N-weeks
    facility_id: str | None = None
    facility_name: str | None = None
    rules: tuple[RuleIn, ...] = ()


@dataclass(frozen=True, slots=True)
class VisitIn:
    """A counted appointment (active, the provider in the requested role)."""

    start: Moment
    end: Moment
    visit_type: str = ""
    facility_id: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderIn:
    id: str  # EHR id, as the windows name it
    zone: str
    shifts: tuple[ShiftIn, ...] = ()
    visits: tuple[VisitIn, ...] = ()


@dataclass(frozen=True)
class Options:
    """The query's options, validated (``emr.api.availability``)."""

    method: str = GAPS
    buffer: int = 0  # minutes
    visit_type: str = ALL
    daily_limit: int | None = None
    daily_limit_type: str | None = None
    max_slot_duration: int | None = None  # minutes
    facility_scoped: bool = False
    location_ids: frozenset[str] | None = None
    fallback_to_default_hours: bool = False
    default_hours: tuple[WeeklyWindow, ...] = ()


@dataclass(frozen=True, slots=True)
class Window:
    provider_id: str
    zone: str
    day: date
    start: int
    end: int
    facility_id: str | None = None
    facility_name: str | None = None
    visit_type: str | None = None
    available: int | None = None
    max_visits: int | None = None


@dataclass
class _Day:
    """One provider's counted appointments, prepared once for all its dates."""

    spans: list[Interval]  # merged, with buffer
    ends: list[int] = field(default_factory=list)  # the spans' ends, for bisecting to one frame
    by_type: dict[str, list[tuple[int, int, str | None]]] = field(default_factory=dict)  # start, end (+buffer), facility
    per_date_type: dict[tuple[date, str], int] = field(default_factory=dict)


def _same_type(a: str | None, b: str | None) -> bool:
    return (a or "").casefold() == (b or "").casefold()


def shifts_on(provider: ProviderIn, day: date, options: Options) -> list[ShiftIn]:
    """"The provider's shifts valid that date (weekday, validity dates, every-N-weeks). None, and
    ``fallback_to_default_hours=true``: the organization's default hours. None otherwise: no
    availability." Then: "``facility_scoped_scheduling=true``: only shifts that name a facility
    produce windows"; "``location_ids`` keeps only windows whose facility is listed (windows
    without a facility are dropped)"."""
    weekday = weekday_of(day)
    found = [s for s in provider.shifts if s.window.day_of_week == weekday and weekly_window_applies(s.window, day)]
    if not found and options.fallback_to_default_hours:
        found = [ShiftIn(window=w) for w in options.default_hours if w.day_of_week == weekday and weekly_window_applies(w, day)]
    if options.facility_scoped:
        found = [s for s in found if s.facility_id]
    if options.location_ids is not None:
        found = [s for s in found if s.facility_id in options.location_ids]
    return found


def counted_spans(provider: ProviderIn, options: Options) -> _Day:
    """"``buffer`` minutes are added after each appointment whose visit type matches
    ``visit_type`` (``all``: every appointment)." Also counts, per local date and visit type,
    what the daily limit reads."""
    buffer = options.buffer * MINUTE
    prepared = _Day(spans=[])
    raw = []
    for visit in provider.visits:
        start, end = epoch(visit.start), epoch(visit.end)
        if buffer and (options.visit_type == ALL or _same_type(visit.visit_type, options.visit_type)):
            end += buffer
        raw.append((start, end))
        key = (visit.visit_type or "").casefold()
        prepared.by_type.setdefault(key, []).append((start, end, visit.facility_id))
        if options.daily_limit is not None:
            day_key = (local_date(start, provider.zone), key)
            prepared.per_date_type[day_key] = prepared.per_date_type.get(day_key, 0) + 1
    prepared.spans = merge(raw)
    prepared.ends = [end for _, end in prepared.spans]
    return prepared


def _spans_within(counted: _Day, frame: Interval) -> list[Interval]:
    """The counted spans that can touch ``frame`` (a slice: they are sorted and disjoint)."""
    return counted.spans[bisect_right(counted.ends, frame[0]) : bisect_left(counted.spans, (frame[1],))]


def daily_limit_reached(counted: _Day, day: date, options: Options) -> bool:
    """"When a provider already has ``daily_appointment_limit`` counted appointments of visit type
    ``daily_limit_type`` on a date, that date gives no windows of that type (with ``gaps``: no
    windows at all that date)." """
    if options.daily_limit is None or not options.daily_limit_type:
        return False
    return counted.per_date_type.get((day, options.daily_limit_type.casefold()), 0) >= options.daily_limit


def _pieces(start: int, end: int, length: int | None) -> list[Interval]:
    """``max_slot_duration``: "consecutive pieces of that many minutes from its start; a shorter
    last piece is kept"."""
    if not length:
        return [(start, end)]
    step = length * MINUTE
    return [(at, min(at + step, end)) for at in range(start, end, step)]


def gaps_windows(provider: ProviderIn, day: date, shifts: Sequence[ShiftIn], counted: _Day, options: Options) -> list[Window]:
    """"Each maximal free interval of each shift after subtracting the counted appointments (with
    buffer) is one window." Gaps subtract all the provider's appointments, whatever facility."""
    if daily_limit_reached(counted, day, options):
        return []
    out = []
    for shift in shifts:
        frame = [window_on(provider.zone, day, shift.window.start, shift.window.end)]
        if frame[0][1] <= frame[0][0]:
            continue
        for free_start, free_end in subtract(frame, _spans_within(counted, frame[0])):
            for start, end in _pieces(free_start, free_end, options.max_slot_duration):
                out.append(Window(provider.id, provider.zone, day, start, end, shift.facility_id, shift.facility_name))
    return out


def _rules_on(shifts: Sequence[ShiftIn], counted: _Day, day: date, options: Options):
    """The rules that give windows that date: restricted to ``visit_type`` unless ``all``, none of
    a visit type whose daily limit is reached."""
    limited = daily_limit_reached(counted, day, options)
    for shift in shifts:
        for rule in shift.rules:
            if options.visit_type != ALL and not _same_type(rule.visit_type, options.visit_type):
                continue
            if limited and _same_type(rule.visit_type, options.daily_limit_type):
                continue
            yield shift, rule


def _rule_visits(counted: _Day, rule: RuleIn, shift: ShiftIn, options: Options) -> list[tuple[int, int]]:
    """The counted appointments of the rule's visit type; with ``facility_scoped_scheduling``,
    only those at the shift's facility consume its capacity."""
    visits = counted.by_type.get(rule.visit_type.casefold(), ())
    if options.facility_scoped:
        return [(s, e) for s, e, facility in visits if facility == shift.facility_id]
    return [(s, e) for s, e, _ in visits]


def _remaining(rule_range: Interval, visits: Iterable[tuple[int, int]], total: int) -> int:
    """``max_visits`` minus the counted appointments of that visit type that START inside the range."""
    start, end = rule_range
    return total - sum(1 for s, _ in visits if start <= s < end)


def slots_windows(provider: ProviderIn, day: date, shifts: Sequence[ShiftIn], counted: _Day, options: Options) -> list[Window]:
    """"One window per visit-type rule of the shifts (restricted to ``visit_type`` unless
    ``all``): ``max_visits`` = the rule's ``total_visits``; ``available_appointments`` =
    ``max_visits`` minus the counted appointments of that visit type that start inside the rule's
    range. Windows with nothing available are dropped." """
    out = []
    for shift, rule in _rules_on(shifts, counted, day, options):
        rule_range = window_on(provider.zone, day, rule.start, rule.end)
        left = _remaining(rule_range, _rule_visits(counted, rule, shift, options), rule.total_visits)
        if left > 0 and rule_range[1] > rule_range[0]:
            out.append(
                Window(provider.id, provider.zone, day, *rule_range, shift.facility_id, shift.facility_name,
                       rule.visit_type, left, rule.total_visits)
            )
    return out


def equal_sub_slots(rule_range: Interval, visits: int, max_minutes: int | None) -> list[Interval]:
    """"Each rule's range is split into ``max_visits`` equal sub-slots (whole minutes, remainder to
    the last); with ``max_slot_duration``, a sub-slot is at most that long (the range is then
    split into as many sub-slots of that length as fit)." """
    start, end = rule_range
    minutes = (end - start) // MINUTE
    length = minutes // visits if visits else 0
    if max_minutes and length > max_minutes:
        count = minutes // max_minutes
        return [(start + i * max_minutes * MINUTE, start + (i + 1) * max_minutes * MINUTE) for i in range(count)]
    if length <= 0:
        return []
    pieces = [(start + i * length * MINUTE, start + (i + 1) * length * MINUTE) for i in range(visits)]
    pieces[-1] = (pieces[-1][0], start + minutes * MINUTE)
    return pieces


def equal_slots_windows(
    provider: ProviderIn, day: date, shifts: Sequence[ShiftIn], counted: _Day, options: Options
) -> list[Window]:
    """"Sub-slots overlapping a counted appointment of that visit type are dropped; the earliest
    remaining ones are kept up to the rule's remaining capacity. Each carries the rule's
    ``max_visits`` and ``available_appointments`` = 1." An appointment overlaps with its buffer."""
    out = []
    for shift, rule in _rules_on(shifts, counted, day, options):
        rule_range = window_on(provider.zone, day, rule.start, rule.end)
        visits = _rule_visits(counted, rule, shift, options)
        left = _remaining(rule_range, visits, rule.total_visits)
        if left <= 0:
            continue
        taken = merge(visits)
        free = [p for p in equal_sub_slots(rule_range, rule.total_visits, options.max_slot_duration) if not overlaps(taken, *p)]
        for start, end in free[:left]:
            out.append(
                Window(provider.id, provider.zone, day, start, end, shift.facility_id, shift.facility_name,
                       rule.visit_type, 1, rule.total_visits)
            )
    return out


METHOD_FUNCTIONS = {GAPS: gaps_windows, SLOTS: slots_windows, EQUAL_SLOTS: equal_slots_windows}


def availability_windows(
    providers: Iterable[ProviderIn], options: Options, *, first: date, last: date, clip: Interval | None = None
) -> list[Window]:
    """Every provider's windows on each of its local dates ``first`` … ``last``, "sorted by
    provider, then ``range_start``". ``clip`` (epoch seconds, from date-time bounds) keeps the
    parts of gaps inside it and the slots starting inside it."""
    method = METHOD_FUNCTIONS[options.method]
    out: list[Window] = []
    for provider in sorted(providers, key=lambda p: p.id):
        counted = counted_spans(provider, options)
        found: list[Window] = []
        for day in dates_between(first, last):
            found.extend(method(provider, day, shifts_on(provider, day, options), counted, options))
        if clip is not None:
            found = _clipped(found, clip, options.method)
        found.sort(key=lambda w: (w.start, w.end))
        out.extend(found)
    return out


def _clipped(windows: list[Window], clip: Interval, method: str) -> list[Window]:
    lo, hi = clip
    if method != GAPS:
        return [w for w in windows if lo <= w.start < hi]
    out = []
    for w in windows:
        start, end = max(w.start, lo), min(w.end, hi)
        if start < end:
            out.append(Window(w.provider_id, w.zone, w.day, start, end, w.facility_id, w.facility_name))
    return out


# --- output ------------------------------------------------------------------------------------


def duration_string(seconds: int) -> str:
    """``"9h"``, ``"45m"``, ``"1h 30m"``."""
    minutes = seconds // MINUTE
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{hours}h {rest}m"
    return f"{hours}h" if hours else f"{rest}m"


@lru_cache(maxsize=65536)
def render_local_millis(seconds: int, zone: str) -> str:
    """Local wall time with milliseconds and offset: ``2024-04-05T08:00:00.000-07:00``."""
    local = datetime.fromtimestamp(seconds, zone_get(zone))
    text = local.isoformat()
    return f"{text[:19]}.000{text[19:]}"


def window_render(window: Window) -> dict:
    """"``day_of_week`` (ISO 1–7, Monday = 1), ``date``, ``duration_string``, ``range_start``,
    ``range_end`` (...), ``provider_id`` (EHR id), plus ``facility_id``, ``facility_name`` when
    known, plus ``visit_type``, ``available_appointments``, ``max_visits`` for ``slots`` and
    ``equal_slots``." """
    out = {
        "day_of_week": window.day.isoweekday(),
        "date": window.day.isoformat(),
        "duration_string": duration_string(window.end - window.start),
        "range_start": render_local_millis(window.start, window.zone),
        "range_end": render_local_millis(window.end, window.zone),
        "provider_id": window.provider_id,
    }
    if window.facility_id is not None:
        out["facility_id"] = window.facility_id
        out["facility_name"] = window.facility_name
    if window.visit_type is not None:
        out["visit_type"] = window.visit_type
        out["available_appointments"] = window.available
        out["max_visits"] = window.max_visits
    return out
