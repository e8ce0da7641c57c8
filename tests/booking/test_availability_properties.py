"""Properties of the engine over generated schedules (hypothesis).

- Every listed slot can be booked, and once booked up to capacity it is no longer listed.
- No listed slot overlaps a block or lies outside working (and opening) hours, checked against
  the wall clock directly rather than through the engine's own expansion.
- The answer for a range is the union of the answers for its single days, also when windows
  chain across several midnights (around the clock) and across DST changes.
- A later "now" only drops the starts that have passed (what the cache's trimming relies on).
- ``firstAvailable`` answers the first slot of the full answer.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from booking.availability import engine as e
from booking.availability import wallclock as wc
from tests.booking.engine_helpers import at, day, days, t

ZONES = ["UTC", "America/New_York", "Europe/London", "Asia/Kolkata", "Australia/Lord_Howe"]
# Weeks with DST changes in the zones above, and a quiet one.
BASES = [date(2025, 3, 7), date(2025, 3, 28), date(2025, 10, 3), date(2025, 10, 31), date(2025, 6, 9)]
PROPERTY_SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def _minutes_text(minutes: int) -> str:
    return "24:00" if minutes == 1440 else f"{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def weekly_windows(draw, max_length_quarters: int = 80):
    """At most one window per weekday: part of the day, the whole day (00:00-24:00), or none; or
    around the clock on every day. Whole days touch across midnight (rule 3), so windows chain
    across several midnights and the grid must look back to where they began (rule 7)."""
    if draw(st.sampled_from([False, False, False, True])):
        return tuple(wc.WeeklyWindow(weekday, t("00:00"), t("24:00")) for weekday in range(7))
    windows = []
    for weekday in range(7):
        kind = draw(st.sampled_from(["part", "part", "none", "whole"]))
        if kind == "whole":
            windows.append(wc.WeeklyWindow(weekday, t("00:00"), t("24:00")))
        elif kind == "part":
            start = draw(st.integers(0, 92)) * 15
            end = min(1440, start + draw(st.integers(1, max_length_quarters)) * 15)
            windows.append(wc.WeeklyWindow(weekday, t(_minutes_text(start)), t(_minutes_text(end))))
    return tuple(windows)


@st.composite
def spans(draw, base: date, zone: str, ref: str, count: int, max_minutes: int = 180):
    out = []
    for i in range(count):
        start = datetime.combine(base + timedelta(days=draw(st.integers(-1, 5))), t("00:00")).replace(
            tzinfo=wc.zone_get(zone)
        ) + timedelta(minutes=draw(st.integers(0, 287)) * 5)
        out.append((start, start + timedelta(minutes=draw(st.integers(1, max_minutes // 5)) * 5), f"{ref}{i}"))
    return out


@st.composite
def scenarios(draw):
    base = draw(st.sampled_from(BASES))
    query_zone = draw(st.sampled_from(ZONES))
    resources = []
    for index in range(draw(st.integers(1, 3))):
        zone = draw(st.sampled_from(ZONES))
        appointments = tuple(
            e.Booked(ref, s, end, status=draw(st.sampled_from(["BK", "RS", "IN", "CN"])),
                     padding=draw(st.sampled_from([0, 10])), expires_at=None)
            for s, end, ref in draw(spans(base, zone, f"appt{index}-", draw(st.integers(0, 5))))
        )
        blocks = tuple(e.Span(s, end, ref) for s, end, ref in draw(spans(base, zone, f"block{index}-", draw(st.integers(0, 2)))))
        resources.append(
            e.ResourceIn(
                id=f"r{index}",
                zone=zone,
                capacity=draw(st.sampled_from([None, 1, 2])),
                weekly=draw(weekly_windows()),
                blocks=blocks,
                appointments=appointments,
            )
        )
    location_zone = draw(st.sampled_from(ZONES))
    restricted = draw(st.sampled_from([False, False, True]))
    location_weekly = draw(weekly_windows(max_length_quarters=96)) if restricted else ()
    service = e.ServiceIn(
        "S",
        duration=draw(st.sampled_from([15, 30, 45, 60, 90])),
        padding=draw(st.sampled_from([0, 5, 15])),
        capacity=draw(st.sampled_from([None, 1, 2])),
        booking_interval=draw(st.sampled_from([None, 10, 20])),
    )
    window = days(base.isoformat(), (base + timedelta(days=draw(st.integers(0, 3)))).isoformat(), query_zone)
    now = draw(st.sampled_from([at("2020-01-01 00:00"), window["start"] + timedelta(hours=20)]))
    query = e.Query(
        start=window["start"],
        end=window["end"],
        now=now,
        zone=query_zone,
        round_robin="NONE",
        interval=draw(st.sampled_from([None, 15, 30])),
        allow_padding_overflow=draw(st.booleans()),
        seed="property",
    )
    return e.Inputs(
        location=e.LocationIn("L", location_zone, location_weekly),
        service=service,
        resources=tuple(resources),
        query=query,
    )


def _in_weekly(windows, zone: str, instant: int) -> bool:
    """Whether the wall clock at ``instant`` falls inside one of the weekly windows (read directly,
    not through the engine's expansion)."""
    local = datetime.fromtimestamp(instant, wc.zone_get(zone))
    weekday = (local.weekday() + 1) % 7
    minute = local.hour * 60 + local.minute
    for w in windows:
        end = 1440 if w.end == wc.MIDNIGHT else w.end.hour * 60 + w.end.minute
        if w.day_of_week == weekday and w.start.hour * 60 + w.start.minute <= minute < end:
            return True
    return False


def _samples(start: int, end: int) -> list[int]:
    return list(range(start, end, 300)) + [end - 1]


@PROPERTY_SETTINGS
@given(scenarios())
def test_listed_slots_respect_hours_and_blocks(inputs):
    result = e.availability_compute(inputs)
    by_id = {r.id: r for r in inputs.resources}
    duration, padding = result.duration * 60, inputs.service.padding * 60
    hard = duration if inputs.query.allow_padding_overflow else duration + padding
    lo, hi = e.rule_1_request_window(inputs.query)
    for slot in result.slots:
        assert lo <= slot.start <= hi and slot.end == slot.start + duration
        for rid in slot.resource_ids:
            resource = by_id[rid]
            for moment in _samples(slot.start, slot.start + hard):
                assert _in_weekly(resource.weekly, resource.zone, moment), (rid, wc.instant(moment))
                if inputs.location.weekly:
                    assert _in_weekly(inputs.location.weekly, inputs.location.zone, moment)
            for block in resource.blocks:
                assert not (wc.epoch(block.start) < slot.start + hard and slot.start < wc.epoch(block.end)), block.ref


@PROPERTY_SETTINGS
@given(scenarios(), st.data())
def test_every_listed_slot_can_be_booked_and_then_is_gone(inputs, data):
    result = e.availability_compute(inputs)
    if not result.slots:
        return
    slot = data.draw(st.sampled_from(result.slots))
    for rid in slot.resource_ids:
        start = wc.instant(slot.start)
        assert e.candidate_is_valid(inputs, [rid], start)
        assert e.candidate_explain(inputs, rid, start).available
    rid = data.draw(st.sampled_from(slot.resource_ids))
    resource = next(r for r in inputs.resources if r.id == rid)
    capacity = e.rule_4_capacity(inputs.service, resource)
    bookings = tuple(
        e.Booked(f"new{i}", wc.instant(slot.start), wc.instant(slot.end), padding=inputs.service.padding)
        for i in range(capacity)
    )
    booked = replace(resource, appointments=resource.appointments + bookings)
    after = replace(inputs, resources=tuple(booked if r.id == rid else r for r in inputs.resources))
    assert not e.candidate_is_valid(after, [rid], wc.instant(slot.start))
    listed = {s.start: s.resource_ids for s in e.availability_compute(after).slots}
    assert rid not in listed.get(slot.start, ())


@PROPERTY_SETTINGS
@given(scenarios())
def test_a_range_is_the_union_of_its_days(inputs):
    whole = e.availability_compute(inputs).slots
    query = inputs.query
    zone = query.zone
    first, last = wc.local_date(wc.epoch(query.start), zone), wc.local_date(wc.epoch(query.end), zone)
    pieces = []
    current = first
    while current <= last:
        single = day(current.isoformat(), zone)
        pieces.extend(
            e.availability_compute(replace(inputs, query=replace(query, start=single["start"], end=single["end"]))).slots
        )
        current += timedelta(days=1)
    assert pieces == whole


@PROPERTY_SETTINGS
@given(scenarios())
def test_first_available_is_the_first_slot(inputs):
    randomized = replace(inputs, query=replace(inputs.query, round_robin="RANDOM"))
    full = e.availability_compute(randomized).slots
    first = e.availability_compute(replace(randomized, query=replace(randomized.query, first_available=True))).slots
    assert first == full[:1]


@PROPERTY_SETTINGS
@given(scenarios(), st.integers(0, 4 * 24 * 12))
def test_now_only_filters_the_answer(inputs, five_minutes):
    """What the cache relies on when it drops past slots from a stored answer (rule 12): "now"
    never moves the grid (rule 7), so the answer at a later "now" is the earlier answer without
    the starts that have passed. (The generated holds never expire; a lapsing hold changes the
    data, and a cached answer lives no longer than the next one.)"""
    earlier = replace(inputs, query=replace(inputs.query, now=at("2020-01-01 00:00")))
    later_now = inputs.query.start + timedelta(minutes=5 * five_minutes, seconds=17)
    later = replace(inputs, query=replace(inputs.query, now=later_now))
    cutoff = wc.epoch_ceil(later_now)
    assert e.availability_compute(later).slots == [s for s in e.availability_compute(earlier).slots if s.start >= cutoff]
