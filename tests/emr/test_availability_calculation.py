"""The EMR availability calculation (``booking.availability.calculation``) answers exactly what its
direct reading of the rules answers (``tests/emr/availability_oracle.py``: each rule scanning every
appointment), on generated providers, shifts, rules, appointments and options (hypothesis).

The generated data leans on what the restructured code does differently: several rules of one
visit type on a date (each counts the appointments starting inside it), appointments of a type
across facilities (facility-scoped capacity), codes in either case, buffers only after the
matching visit type, daily limits, shifts with validity dates and every-N-weeks recurrence,
default hours, date-time bounds, and zones on their DST change days.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from booking.availability import calculation as calc
from booking.availability.wallclock import MIDNIGHT, WeeklyWindow, zone_get
from tests.emr import availability_oracle as oracle

ZONES = ["UTC", "America/New_York", "America/Denver", "Europe/London", "Australia/Lord_Howe"]
# Days with DST changes in the zones above (both directions), and a quiet one.
BASES = [date(2025, 3, 8), date(2025, 3, 29), date(2025, 4, 5), date(2025, 10, 25), date(2025, 11, 1), date(2025, 6, 9)]
CODES = ["FU", "fu", "NP", "TH", ""]
FACILITIES = [None, "F1", "F2"]
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def _wall(minutes: int) -> time:
    return MIDNIGHT if minutes == 1440 else time(minutes // 60, minutes % 60)


@st.composite
def wall_range(draw, lo: int = 0, hi: int = 1440) -> tuple[int, int]:
    """Minutes of the day, ``lo <= start < end <= hi`` (1440: midnight at the end of the day);
    often on the hours a DST change moves (01:00-03:00)."""
    around_change = (max(lo, 60), min(hi - 1, 180))
    if around_change[0] <= around_change[1] and draw(st.booleans()):
        start = draw(st.integers(*around_change))
    else:
        start = draw(st.integers(lo, hi - 1))
    end = draw(st.integers(start + 1, hi))
    return start, end


@st.composite
def rules(draw, start: int, end: int) -> tuple[calc.RuleIn, ...]:
    out = []
    for _ in range(draw(st.integers(0, 3))):
        r_start, r_end = draw(wall_range(start, end))
        out.append(calc.RuleIn(_wall(r_start), _wall(r_end), draw(st.integers(1, 6)), draw(st.sampled_from(CODES[:4]))))
    return tuple(out)


@st.composite
def shifts(draw, base: date) -> tuple[calc.ShiftIn, ...]:
    out = []
    for index in range(draw(st.integers(1, 6))):
        start, end = draw(wall_range())
        valid_from = draw(st.sampled_from([None, None, None, *(base + timedelta(days=d) for d in (-20, -3, 2, 5))]))
        valid_until = draw(st.sampled_from([None, None, None, *(base + timedelta(days=d) for d in (0, 3, 6, 10))]))
        if valid_from is not None and valid_until is not None and valid_until < valid_from:
            valid_from, valid_until = valid_until, valid_from
        facility = draw(st.sampled_from(FACILITIES))
        near_base = [(base.weekday() + 1 + d) % 7 for d in (-1, 0, 1)]  # 0 = Sunday; the dates every range holds
        window = WeeklyWindow(
            draw(st.sampled_from([*near_base, *near_base, *range(7)])), _wall(start), _wall(end), valid_from, valid_until,
            draw(st.sampled_from([1, 1, 2, 3])), f"s{index}",
        )
        out.append(calc.ShiftIn(window, facility, f"Site {facility}" if facility else None, draw(rules(start, end))))
    return tuple(out)


@st.composite
def visits(draw, base: date, zone: str) -> tuple[calc.VisitIn, ...]:
    out = []
    for _ in range(draw(st.integers(0, 14))):
        start = datetime.combine(base + timedelta(days=draw(st.integers(-1, 9))), time(0), zone_get(zone)).timestamp()
        start += draw(st.integers(0, 24 * 12 - 1)) * 300 + draw(st.sampled_from([0, 0, 0, 0.25, 59.9995]))
        minutes = draw(st.sampled_from([5, 10, 20, 30, 45, 60, 120]))
        out.append(
            calc.VisitIn(start, start + minutes * 60, draw(st.sampled_from(CODES)), draw(st.sampled_from(FACILITIES)))
        )
    return tuple(out)


@st.composite
def visits_in_rules(draw, base: date, zone: str, shifts: tuple[calc.ShiftIn, ...]) -> tuple[calc.VisitIn, ...]:
    """Appointments of a rule's visit type (in any case) starting inside it on one of its dates
    (the ones that consume capacity), or where it ends."""
    out = []
    ruled = [(shift, rule) for shift in shifts for rule in shift.rules]
    for _ in range(draw(st.integers(0, 4)) if ruled else 0):
        shift, rule = draw(st.sampled_from(ruled))
        day = base - timedelta(days=1) + timedelta(days=(shift.window.day_of_week - (base.weekday() + 1) + 1) % 7)
        day += timedelta(days=draw(st.sampled_from([0, 7])))
        if draw(st.booleans()):  # inside the rule
            start = datetime.combine(day, rule.start, zone_get(zone)).timestamp() + draw(st.integers(0, 12)) * 300
        else:  # on its end: the next rule's, not this one's
            start = datetime.combine(day, rule.end, zone_get(zone)).timestamp()
        code = draw(st.sampled_from([rule.visit_type, rule.visit_type.lower()]))
        facility = draw(st.sampled_from([shift.facility_id, *FACILITIES]))
        out.append(calc.VisitIn(start, start + draw(st.sampled_from([10, 20, 60])) * 60, code, facility))
    return tuple(out)


@st.composite
def scenarios(draw):
    base = draw(st.sampled_from(BASES))
    providers = []
    for index in range(draw(st.integers(1, 3))):
        zone = draw(st.sampled_from(ZONES))
        worked = draw(shifts(base))
        booked = draw(visits(base, zone)) + draw(visits_in_rules(base, zone, worked))
        providers.append(calc.ProviderIn(f"PRV-{index}", zone, worked, booked))
    limit = draw(st.sampled_from([None, None, 1, 2, 3]))
    default_hours = tuple(
        WeeklyWindow(weekday, _wall(start), _wall(end))
        for weekday in draw(st.sets(st.integers(0, 6), max_size=7))
        for start, end in [draw(wall_range())]
    )
    options = calc.Options(
        method=draw(st.sampled_from(calc.METHODS)),
        buffer=draw(st.sampled_from([0, 0, 5, 15, 59])),
        visit_type=draw(st.sampled_from([calc.ALL, calc.ALL, "FU", "np", "TH"])),
        daily_limit=limit,
        daily_limit_type=draw(st.sampled_from(["FU", "NP", "th"])) if limit is not None else None,
        max_slot_duration=draw(st.sampled_from([None, None, 5, 15, 30, 60])),
        facility_scoped=draw(st.sampled_from([False, False, True])),
        location_ids=draw(st.sampled_from([None] * 6 + [frozenset(), frozenset({"F1"}), frozenset({"F1", "F2", "F3"})])),
        fallback_to_default_hours=draw(st.booleans()),
        default_hours=default_hours,
    )
    first = base + timedelta(days=draw(st.integers(-1, 1)))
    last = first + timedelta(days=draw(st.sampled_from([0, 1, 3, 6, 8])))
    clip = None
    if draw(st.sampled_from([False, False, False, True])):
        lo = int(datetime.combine(first, time(0), zone_get("UTC")).timestamp()) + draw(st.integers(0, 2 * 86400))
        clip = (lo, lo + draw(st.integers(3600, 6 * 86400)))
    return providers, options, first, last, clip


def _fields(window) -> tuple:
    return (
        window.provider_id, window.zone, window.day, window.start, window.end, window.facility_id,
        window.facility_name, window.visit_type, window.available, window.max_visits,
    )


@SETTINGS
@given(scenarios())
def test_the_calculation_answers_what_the_direct_reading_of_the_rules_answers(scenario):
    providers, options, first, last, clip = scenario
    expected = oracle.availability_windows(providers, options, first=first, last=last, clip=clip)
    found = calc.availability_windows(providers, options, first=first, last=last, clip=clip)
    assert [_fields(w) for w in found] == [_fields(w) for w in expected]
    assert calc.windows_render(found) == [oracle.window_render(w) for w in expected]


def test_the_generated_scenarios_reach_every_kind_of_window():
    """The comparison above is only as good as what it compares: the generated scenarios give
    windows of every method, with and without a facility, cut by appointments and by the daily
    limit, and rules whose capacity appointments consume."""
    seen: set[str] = set()

    @settings(SETTINGS, max_examples=600)
    @given(scenarios())
    def collect(scenario):
        providers, options, first, last, clip = scenario
        windows = calc.availability_windows(providers, options, first=first, last=last, clip=clip)
        for w in windows:
            seen.add(options.method)
            seen.add("facility" if w.facility_id else "no facility")
        as_slots = calc.availability_windows(providers, replace(options, method=calc.SLOTS), first=first, last=last, clip=clip)
        if any(w.available < w.max_visits for w in as_slots):
            seen.add("capacity consumed")
        if options.method == calc.GAPS and any(p.visits for p in providers) and windows:
            seen.add("gaps with appointments")
        if options.daily_limit is not None and windows:
            days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
            for provider in providers:
                counted = calc.counted_spans(provider, options)
                if any(calc.daily_limit_reached(counted, day, options) for day in days):
                    seen.add("daily limit reached")

    collect()
    assert seen >= {
        calc.GAPS, calc.SLOTS, calc.EQUAL_SLOTS, "facility", "no facility", "capacity consumed", "gaps with appointments",
        "daily limit reached",
    }
