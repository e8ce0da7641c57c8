"""EMR availability (``GET /v1/availability``): the three calculation methods, plain data in,
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
- ``windows_render``: the window fields.

Instants are epoch seconds; a provider's dates are local dates in its zone.

A provider's appointments are prepared once for all its dates (``counted_spans``): merged, and per
visit type sorted by start, so that each shift and each rule reads only its own by bisecting
instead of scanning every appointment. ``tests/emr/availability_oracle.py`` keeps the direct
reading of the rules (one scan per rule) that a property test compares this module with.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import lru_cache
from math import floor
from operator import attrgetter
from typing import NamedTuple

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


class VisitIn(NamedTuple):
    """A counted appointment (active, the provider in the requested role); a tuple: a month holds
    thousands."""

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


class Window(NamedTuple):
    """One window of the answer (a tuple: an answer holds thousands of them)."""

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
class _Taken:
    """Counted appointments of one visit type (and, facility-scoped, one facility)."""

    starts: list[int] = field(default_factory=list)  # sorted: a rule counts those starting inside it by bisecting
    spans: list[Interval] = field(default_factory=list)  # merged, with buffer: what a sub-slot must not overlap

    def starting_within(self, start: int, end: int) -> int:
        if end <= start:
            return 0
        return bisect_left(self.starts, end) - bisect_left(self.starts, start)


@dataclass
class _Day:
    """One provider's counted appointments, prepared once for all its dates."""

    spans: list[Interval]  # gaps: merged, with buffer
    ends: list[int] = field(default_factory=list)  # the spans' ends, for bisecting to one frame
    # slots, equal_slots: casefolded visit type and (facility-scoped) facility → its appointments
    by_type: dict[tuple[str, str | None], _Taken] = field(default_factory=dict)
    per_date_type: dict[tuple[date, str], int] = field(default_factory=dict)


_NOTHING_TAKEN = _Taken()


def _same_type(a: str | None, b: str | None) -> bool:
    return (a or "").casefold() == (b or "").casefold()


def _always_applies(window: WeeklyWindow) -> bool:
    return window.valid_from is None and window.valid_until is None and window.every_weeks <= 1


class _Week:
    """A provider's shifts by weekday (and the default hours), for ``shifts_on``."""

    def __init__(self, provider: ProviderIn, options: Options):
        self.shifts: dict[int, list[ShiftIn]] = {}
        for shift in provider.shifts:
            self.shifts.setdefault(shift.window.day_of_week, []).append(shift)
        self.default: dict[int, list[ShiftIn]] = {}
        if options.fallback_to_default_hours:
            for window in options.default_hours:
                self.default.setdefault(window.day_of_week, []).append(ShiftIn(window=window))


def _valid_on(shifts: list[ShiftIn], day: date) -> list[ShiftIn]:
    return [s for s in shifts if _always_applies(s.window) or weekly_window_applies(s.window, day)]


def shifts_on(provider: ProviderIn, day: date, options: Options, week: _Week | None = None) -> list[ShiftIn]:
    """"The provider's shifts valid that date (weekday, validity dates, every-N-weeks). None, and
    ``fallback_to_default_hours=true``: the organization's default hours. None otherwise: no
    availability." Then: "``facility_scoped_scheduling=true``: only shifts that name a facility
    produce windows"; "``location_ids`` keeps only windows whose facility is listed (windows
    without a facility are dropped)"."""
    week = week or _Week(provider, options)
    weekday = weekday_of(day)
    found = _valid_on(week.shifts.get(weekday, ()), day)
    if not found and options.fallback_to_default_hours:
        found = _valid_on(week.default.get(weekday, ()), day)
    if options.facility_scoped:
        found = [s for s in found if s.facility_id]
    if options.location_ids is not None:
        found = [s for s in found if s.facility_id in options.location_ids]
    return found


def counted_spans(provider: ProviderIn, options: Options) -> _Day:
    """"``buffer`` minutes are added after each appointment whose visit type matches
    ``visit_type`` (``all``: every appointment)." Also counts, per local date and visit type,
    what the daily limit reads. Prepares what the method reads: ``gaps`` all of them merged,
    ``slots`` and ``equal_slots`` those of each visit type (and facility, ``_rule_visits``)."""
    buffer = options.buffer * MINUTE
    chosen = None if options.visit_type == ALL else (options.visit_type or "").casefold()  # None: every type
    per_type = options.method != GAPS
    prepared = _Day(spans=[])
    raw = []
    by_type: dict[tuple[str, str | None], list[tuple[int, int]]] = {}
    for visit in provider.visits:
        start, end = _whole_seconds(visit.start), _whole_seconds(visit.end)
        key = (visit.visit_type or "").casefold()
        of_chosen_type = chosen is None or key == chosen
        if buffer and of_chosen_type:
            end += buffer
        if not per_type:
            raw.append((start, end))
        elif of_chosen_type:  # only the rules of the chosen type give windows (``_rules_on``)
            by_type.setdefault((key, visit.facility_id if options.facility_scoped else None), []).append((start, end))
        if options.daily_limit is not None:
            day_key = (local_date(start, provider.zone), key)
            prepared.per_date_type[day_key] = prepared.per_date_type.get(day_key, 0) + 1
    prepared.spans = merge(raw)
    prepared.ends = [end for _, end in prepared.spans]
    prepared.by_type = {key: _taken(visits) for key, visits in by_type.items()}
    return prepared


def _whole_seconds(moment: Moment) -> int:
    """``wallclock.epoch``, the epoch seconds the database answers floored without a detour."""
    return floor(moment) if type(moment) is float else epoch(moment)


def _taken(visits: list[tuple[int, int]]) -> _Taken:
    return _Taken(starts=sorted(start for start, _ in visits), spans=merge(visits))


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
    zone, length = provider.zone, options.max_slot_duration
    for shift in shifts:
        frame = window_on(zone, day, shift.window.start, shift.window.end)
        if frame[1] <= frame[0]:
            continue
        busy = _spans_within(counted, frame)
        for free_start, free_end in subtract([frame], busy) if busy else (frame,):
            for start, end in _pieces(free_start, free_end, length) if length else ((free_start, free_end),):
                out.append(Window(provider.id, zone, day, start, end, shift.facility_id, shift.facility_name))
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


def _rule_visits(counted: _Day, rule: RuleIn, shift: ShiftIn, options: Options) -> _Taken:
    """The counted appointments of the rule's visit type; with ``facility_scoped_scheduling``,
    only those at the shift's facility consume its capacity."""
    facility = shift.facility_id if options.facility_scoped else None
    return counted.by_type.get((rule.visit_type.casefold(), facility), _NOTHING_TAKEN)


def _remaining(rule_range: Interval, visits: _Taken, total: int) -> int:
    """``max_visits`` minus the counted appointments of that visit type that START inside the range."""
    return total - visits.starting_within(*rule_range)


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
        for start, end in equal_sub_slots(rule_range, rule.total_visits, options.max_slot_duration):
            if not overlaps(visits.spans, start, end):
                out.append(
                    Window(provider.id, provider.zone, day, start, end, shift.facility_id, shift.facility_name,
                           rule.visit_type, 1, rule.total_visits)
                )
                left -= 1
                if not left:
                    break
    return out


METHOD_FUNCTIONS = {GAPS: gaps_windows, SLOTS: slots_windows, EQUAL_SLOTS: equal_slots_windows}

_by_range = attrgetter("start", "end")


def availability_windows(
    providers: Iterable[ProviderIn], options: Options, *, first: date, last: date, clip: Interval | None = None
) -> list[Window]:
    """Every provider's windows on each of its local dates ``first`` … ``last``, "sorted by
    provider, then ``range_start``". ``clip`` (epoch seconds, from date-time bounds) keeps the
    parts of gaps inside it and the slots starting inside it."""
    method = METHOD_FUNCTIONS[options.method]
    days = list(dates_between(first, last))
    out: list[Window] = []
    for provider in sorted(providers, key=lambda p: p.id):
        counted = counted_spans(provider, options)
        week = _Week(provider, options)
        found: list[Window] = []
        for day in days:
            shifts = shifts_on(provider, day, options, week)
            if shifts:
                found.extend(method(provider, day, shifts, counted, options))
        if clip is not None:
            found = _clipped(found, clip, options.method)
        found.sort(key=_by_range)
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


@lru_cache(maxsize=1024)
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


def windows_render(windows: Iterable[Window]) -> list[dict]:
    """"``day_of_week`` (ISO 1–7, Monday = 1), ``date``, ``duration_string``, ``range_start``,
    ``range_end`` (...), ``provider_id`` (EHR id), plus ``facility_id``, ``facility_name`` when
    known, plus ``visit_type``, ``available_appointments``, ``max_visits`` for ``slots`` and
    ``equal_slots``." """
    days: dict[date, tuple[int, str]] = {}
    out = []
    for provider_id, zone, day, start, end, facility_id, facility_name, visit_type, available, max_visits in windows:
        weekday_date = days.get(day)
        if weekday_date is None:
            weekday_date = days[day] = (day.isoweekday(), day.isoformat())
        rendered = {
            "day_of_week": weekday_date[0],
            "date": weekday_date[1],
            "duration_string": duration_string(end - start),
            "range_start": render_local_millis(start, zone),
            "range_end": render_local_millis(end, zone),
            "provider_id": provider_id,
        }
        if facility_id is not None:
            rendered["facility_id"] = facility_id
            rendered["facility_name"] = facility_name
        if visit_type is not None:
            rendered["visit_type"] = visit_type
            rendered["available_appointments"] = available
            rendered["max_visits"] = max_visits
        out.append(rendered)
    return out
