"""The availability engine, rule by rule (``shared/spec/v3-api.md``, "Semantics" 1 to 11).

Pure: no database. Each test names the rule it pins and fails when that rule breaks.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from booking.availability import engine as e
from booking.availability import wallclock as wc
from tests.booking.engine_helpers import (
    NOW,
    at,
    booked,
    compute,
    day,
    days,
    inputs,
    output,
    resource,
    starts,
    t,
    weekly,
    with_query,
)

MON = "2025-03-10"  # a Monday


# --- rule 1: request window ------------------------------------------------------------------


def test_rule_1_start_in_window_inclusive_and_slots_may_end_after_it():
    inp = inputs(start=at(f"{MON} 09:00"), end=at(f"{MON} 10:00"))
    assert starts(inp) == ["09:00", "09:30", "10:00"]  # 10:00 starts AT endDate: kept; it ends at 10:30
    assert compute(inp)[-1][0] == "2025-03-10T10:00:00+00:00"


def test_rule_1_past_slots_are_gone_without_moving_the_grid():
    inp = inputs(start=at(f"{MON} 00:00"), end=at(f"{MON} 23:59:59"), now=at(f"{MON} 09:10"))
    assert starts(inp)[:2] == ["09:30", "10:00"]  # not 09:10, 09:40: "now" only filters
    inp = with_query(inp, now=at(f"{MON} 09:30"))
    assert starts(inp)[0] == "09:30"  # a slot starting right now is not in the past


def test_rule_1_date_only_window_is_the_local_day_of_the_timezone():
    # 2025-03-10 in Asia/Kolkata is 2025-03-09T18:30Z .. 2025-03-10T18:29:59Z
    window = day(MON, "Asia/Kolkata")
    assert window["start"] == at("2025-03-09 18:30") and window["end"] == at("2025-03-10 18:29:59")
    inp = inputs([resource(zone="Asia/Kolkata", hours=("00:00", "24:00"))], duration=60, **window, interval=60)
    got = compute(inp)
    assert got[0][0] == "2025-03-10T00:00:00+05:30" and got[-1][0] == "2025-03-10T23:00:00+05:30"
    assert len(got) == 24


# --- rule 2: candidate resources ---------------------------------------------------------------


def test_rule_2_default_candidates_are_the_active_linked_ones():
    people = [
        resource("active"),
        resource("inactive", active=False),
        resource("hidden", hidden=True),
        resource("unlinked", linked=False),
    ]
    inp = inputs(people, **day(MON))
    assert {rid for _, ids in compute(inp) for rid in ids} == {"active"}


def test_rule_2_resource_ids_restrict_the_candidates():
    inp = inputs([resource("a"), resource("b"), resource("c")], **day(MON), resource_ids=("c", "a"))
    assert compute(inp)[0][1] == ("a", "c")  # answer order is the inputs' order, not the request's


# --- rule 3: hard windows ----------------------------------------------------------------------


def test_rule_3_shifts_intersected_with_location_hours():
    inp = inputs([resource(hours=("07:00", "12:00"))], location_weekly=weekly("08:00", "11:00"), **day(MON), duration=60, interval=60)
    assert starts(inp) == ["08:00", "09:00", "10:00"]


def test_rule_3_location_hours_are_read_in_the_location_zone():
    # Location open 08:00-11:00 New York (12:00-15:00Z on 2025-03-10, EDT); resource works all day UTC.
    inp = inputs(
        [resource(hours=("00:00", "24:00"))], location_zone="America/New_York", location_weekly=weekly("08:00", "11:00"),
        **day(MON), duration=60, interval=60,
    )
    assert starts(inp) == ["12:00", "13:00", "14:00"]


def test_rule_3_shift_weekday_and_validity_dates():
    shifts = weekly("09:00", "10:00", days=[1], valid_from=date(2025, 3, 17))
    inp = inputs([resource(weekly=shifts)], **days("2025-03-09", "2025-03-18"), duration=60)
    assert [s for s, _ in compute(inp)] == ["2025-03-17T09:00:00+00:00"]  # Mondays only, from the 17th on


def test_rule_3_every_n_weeks_counts_from_the_validity_start():
    shifts = weekly("09:00", "10:00", days=[1], valid_from=date(2025, 3, 3), every_weeks=2)
    inp = inputs([resource(weekly=shifts)], **days("2025-03-01", "2025-03-31"), duration=60)
    assert starts(inp) == ["03-03 09:00", "03-17 09:00", "03-31 09:00"]


def test_rule_3_allocations_add_windows():
    extra = (e.Span(at(f"{MON} 18:00"), at(f"{MON} 19:00"), "alloc"),)
    inp = inputs([resource(hours=("09:00", "10:00"), allocations=extra)], **day(MON), duration=60)
    assert starts(inp) == ["09:00", "18:00"]


def test_rule_3_blocks_of_resource_location_and_service_are_taken_away():
    own = (e.Span(at(f"{MON} 09:00"), at(f"{MON} 10:00"), "own"),)
    shared = [e.Span(at(f"{MON} 11:00"), at(f"{MON} 12:00"), "loc"), e.Span(at(f"{MON} 13:00"), at(f"{MON} 14:00"), "svc")]
    inp = inputs([resource(hours=("09:00", "15:00"), blocks=own)], blocks=shared, **day(MON), duration=60)
    assert starts(inp) == ["10:00", "12:00", "14:00"]


def test_rule_3_hard_windows_kept_between_requests_follow_every_change_of_their_inputs():
    """The engine keeps a resource's hard windows by everything they are computed from
    (``engine.state.hard_windows``): equal inputs are answered from what it kept, and a change to
    any of them (a block, a busy time, the hours of the resource or the location, the zone, the
    horizon) is worked out anew, so the answer is always that of a fresh computation."""
    from booking.availability.engine import state

    state._hard_kept.clear()
    base = dict(**day(MON), duration=60)
    plain = inputs([resource(hours=("09:00", "13:00"))], **base)
    assert starts(plain) == ["09:00", "10:00", "11:00", "12:00"]
    assert len(state._hard_kept) == 1
    assert starts(plain) == ["09:00", "10:00", "11:00", "12:00"] and len(state._hard_kept) == 1  # kept
    block = (e.Span(at(f"{MON} 10:00"), at(f"{MON} 11:00"), "b"),)
    assert starts(inputs([resource(hours=("09:00", "13:00"), blocks=block)], **base)) == ["09:00", "11:00", "12:00"]
    busy = (e.Span(at(f"{MON} 11:00"), at(f"{MON} 12:00"), "cal"),)
    assert starts(inputs([resource(hours=("09:00", "13:00"), external_busy=busy)], **base)) == ["09:00", "10:00", "12:00"]
    assert starts(inputs([resource(hours=("09:00", "11:00"))], **base)) == ["09:00", "10:00"]
    assert starts(inputs([resource(hours=("09:00", "13:00"))], location_weekly=weekly("10:00", "12:00"), **base)) == [
        "10:00", "11:00"
    ]
    assert starts(inputs([resource(hours=("09:00", "13:00"), zone="Europe/London")], **base)) == [
        "09:00", "10:00", "11:00", "12:00"
    ]  # London is UTC in March: the same instants, from another key
    assert starts(inputs([resource(hours=("09:00", "13:00"), zone="Europe/Paris")], **base)) == [
        "08:00", "09:00", "10:00", "11:00"
    ]
    assert starts(inputs([resource(hours=("09:00", "13:00"))], **day("2025-03-11"), duration=60)) == [
        "09:00", "10:00", "11:00", "12:00"
    ]
    assert starts(plain) == ["09:00", "10:00", "11:00", "12:00"]  # and the first inputs again
    listed = inputs([resource(hours=("09:00", "13:00"), blocks=list(block))], **base)  # unhashable: not kept
    assert starts(listed) == ["09:00", "11:00", "12:00"]


def test_rule_3_kept_hard_windows_stay_within_their_bound(monkeypatch):
    """What the engine keeps is bounded by the intervals it holds: past the bound everything is
    emptied, and the answers stay those of a fresh computation."""
    from booking.availability.engine import state

    monkeypatch.setattr(state, "_KEPT_INTERVALS", 40)
    state._hard_kept.clear()
    for offset in range(12):  # twelve horizons, each kept apart
        first = date(2025, 3, 10) + timedelta(days=offset)
        inp = inputs([resource(hours=("09:00", "11:00"))], **day(first.isoformat()), duration=60)
        assert starts(inp) == ["09:00", "10:00"]
        assert state._kept_intervals <= 40 and len(state._hard_kept) <= 40


def test_rule_3_hard_windows_of_a_window_that_has_begun_are_not_kept():
    """A window that has begun starts at "now", which moves every second: what its horizon gives
    would never be asked for again, so none of it is kept."""
    from booking.availability.engine import state

    state.hard_windows_forget()
    begun = inputs([resource(hours=("09:00", "13:00"))], **day(MON), duration=60, now=at(f"{MON} 10:30"))
    assert starts(begun) == ["11:00", "12:00"]
    assert not state._hard_kept and not state._shared_tokens
    later = inputs([resource(hours=("09:00", "13:00"))], **day(MON), duration=60)
    assert starts(later) == ["09:00", "10:00", "11:00", "12:00"] and len(state._hard_kept) == 1


def test_rule_3_external_busy_is_taken_away():
    busy = (e.Span(at(f"{MON} 09:30"), at(f"{MON} 10:15"), "cal"),)
    inp = inputs([resource(hours=("09:00", "11:00"), external_busy=busy)], **day(MON), duration=30)
    assert starts(inp) == ["09:00", "10:15"]  # 09:30 no longer fits; the window restarts at 10:15


def test_rule_3_recurring_block_in_its_own_zone():
    lunch = wc.RecurringRule("DAILY", date(2025, 1, 1), t("12:00"), t("13:00"), "America/New_York", ref="lunch")
    inp = inputs([resource(hours=("14:00", "19:00"))], recurring_blocks=[lunch], **day(MON), duration=60, interval=60)
    assert starts(inp) == ["14:00", "15:00", "17:00", "18:00"]  # 12:00-13:00 EDT = 16:00-17:00Z


def test_rule_3_windows_touching_across_midnight_merge():
    overnight = weekly("22:00", "24:00", days=[1]) + weekly("00:00", "02:00", days=[2])
    inp = inputs([resource(weekly=overnight)], **days(MON, "2025-03-11"), duration=90, interval=30)
    # A 90-minute visit from 23:30 to 01:00 only fits if the two windows are one.
    assert starts(inp) == ["03-10 22:00", "03-10 22:30", "03-10 23:00", "03-10 23:30", "03-11 00:00", "03-11 00:30"]


# --- rule 4: duration, padding, capacity --------------------------------------------------------


def test_rule_4_override_duration_replaces_the_service_duration():
    inp = inputs([resource(hours=("09:00", "11:00"))], **day(MON), duration=30, override_duration=60)
    got = output(inp)["availableTimes"]
    assert [(s["start_time"][11:16], s["end_time"][11:16]) for s in got] == [("09:00", "10:00"), ("10:00", "11:00")]


def test_rule_4_padding_is_added_after_only():
    inp = inputs([resource(hours=("09:00", "10:00"))], **day(MON), duration=30, padding=15, interval=15)
    assert starts(inp) == ["09:00", "09:15"]  # 09:15 + 30 + 15 = 10:00; nothing before 09:00 needed
    assert output(inp)["availableTimes"][0]["end_time"].endswith("09:30:00+00:00")  # end = start + D, not + P


@pytest.mark.parametrize(
    "service_capacity,resource_capacity,expected",
    [(None, None, 1), (3, None, 3), (None, 2, 2), (3, 2, 2), (2, 5, 2)],
)
def test_rule_4_capacity_is_the_smaller_of_those_set(service_capacity, resource_capacity, expected):
    svc = e.ServiceIn("S", 30, capacity=service_capacity)
    res = resource(capacity=resource_capacity)
    assert e.rule_4_capacity(svc, res) == expected
    existing = tuple(booked(f"a{i}", at(f"{MON} 09:00"), at(f"{MON} 09:30")) for i in range(expected - 1))
    inp = inputs([resource(hours=("09:00", "09:30"), capacity=resource_capacity, appointments=existing)],
                 **day(MON), capacity=service_capacity)
    assert starts(inp) == ["09:00"]  # C - 1 bookings: one place left
    full = existing + (booked("last", at(f"{MON} 09:00"), at(f"{MON} 09:30")),)
    inp = inputs([resource(hours=("09:00", "09:30"), capacity=resource_capacity, appointments=full)],
                 **day(MON), capacity=service_capacity)
    assert starts(inp) == []


# --- rule 5: load --------------------------------------------------------------------------------


def test_rule_5_active_statuses_occupy_expired_holds_and_cancellations_do_not():
    now = at(f"{MON} 08:00")
    appts = (
        booked("bk", at(f"{MON} 09:00"), at(f"{MON} 09:30"), status="BK"),
        booked("rs", at(f"{MON} 10:00"), at(f"{MON} 10:30"), status="RS"),
        booked("in", at(f"{MON} 11:00"), at(f"{MON} 11:30"), status="IN", expires_at=at(f"{MON} 08:05")),
        booked("in-expired", at(f"{MON} 12:00"), at(f"{MON} 12:30"), status="IN", expires_at=at(f"{MON} 07:59")),
        booked("cn", at(f"{MON} 13:00"), at(f"{MON} 13:30"), status="CN"),
    )
    inp = inputs([resource(hours=("09:00", "14:00"), appointments=appts)], **day(MON), now=now)
    assert starts(inp) == ["09:30", "10:30", "11:30", "12:00", "12:30", "13:00", "13:30"]


def test_rule_5_an_appointment_of_another_service_carries_its_own_padding():
    other = (booked("x", at(f"{MON} 09:00"), at(f"{MON} 09:30"), padding=20),)
    inp = inputs([resource(hours=("09:00", "11:00"), appointments=other)], **day(MON), duration=30, padding=0)
    assert starts(inp) == ["09:50", "10:20"]  # occupied until 09:50 by ITS padding


def test_rule_5_emr_appointment_without_service_has_no_padding():
    emr = (booked("emr", at(f"{MON} 09:00"), at(f"{MON} 09:30"), padding=0),)
    inp = inputs([resource(hours=("09:00", "10:30"), appointments=emr)], **day(MON), duration=30, padding=0)
    assert starts(inp) == ["09:30", "10:00"]


def test_an_answer_is_stale_from_the_next_hold_expiry_rounded_down():
    lapse = at(f"{MON} 08:00") + timedelta(milliseconds=600)
    appts = (
        booked("in", at(f"{MON} 09:00"), at(f"{MON} 09:30"), status="IN", expires_at=lapse),
        booked("later", at(f"{MON} 10:00"), at(f"{MON} 10:30"), status="IN", expires_at=lapse + timedelta(hours=1)),
        booked("lapsed", at(f"{MON} 11:00"), at(f"{MON} 11:30"), status="IN", expires_at=at(f"{MON} 07:00")),
    )
    result = e.availability_compute(inputs([resource(appointments=appts)], **day(MON), now=at(f"{MON} 07:30")))
    assert result.next_hold_expiry == wc.epoch(at(f"{MON} 08:00"))  # not 08:00:01: stale once the hold lapses


# --- rule 6: open windows (capacity sweep) --------------------------------------------------------


def test_rule_6_capacity_two_with_staggered_overlapping_bookings():
    appts = (
        booked("a", at(f"{MON} 09:00"), at(f"{MON} 10:00")),
        booked("b", at(f"{MON} 09:30"), at(f"{MON} 10:30")),
        booked("c", at(f"{MON} 10:15"), at(f"{MON} 11:00")),
    )
    inp = inputs([resource(hours=("09:00", "12:00"), capacity=2, appointments=appts)], **day(MON), duration=15, interval=15)
    # load: 09:00-09:30 1, 09:30-10:00 2 (full), 10:00-10:15 1, 10:15-10:30 2 (full), 10:30-11:00 1, then 0
    assert starts(inp) == ["09:00", "09:15", "10:00", "10:30", "10:45", "11:00", "11:15", "11:30", "11:45"]


# --- rule 7: grid ----------------------------------------------------------------------------------


def test_rule_7_step_is_interval_else_booking_interval_else_duration():
    base = dict(start=at(f"{MON} 00:00"), end=at(f"{MON} 23:59:59"))
    res = [resource(hours=("09:00", "10:30"))]
    assert starts(inputs(res, **base, duration=30)) == ["09:00", "09:30", "10:00"]
    assert starts(inputs(res, **base, duration=30, booking_interval=20)) == ["09:00", "09:20", "09:40", "10:00"]
    assert starts(inputs(res, **base, duration=30, booking_interval=20, interval=45)) == ["09:00", "09:45"]


def test_rule_7_grid_restarts_at_every_open_window():
    appts = (booked("a", at(f"{MON} 09:00"), at(f"{MON} 09:20")),)
    inp = inputs([resource(hours=("09:00", "11:00"), appointments=appts)], **day(MON), duration=30)
    assert starts(inp) == ["09:20", "09:50", "10:20"]


def test_rule_7_request_window_does_not_move_the_grid():
    inp = inputs([resource(hours=("09:00", "12:00"))], start=at(f"{MON} 09:10"), end=at(f"{MON} 23:00"), duration=30)
    assert starts(inp) == ["09:30", "10:00", "10:30", "11:00", "11:30"]


def _around_the_clock(**kwargs):
    """New York, open 00:00-24:00 every day: the windows touch across every midnight (rule 3)."""
    return resource(zone="America/New_York", hours=("00:00", "24:00"), **kwargs)


def _local_slots(res, first: str, last: str, on: str | None = None, **query) -> list[str]:
    window = days(first, last, "America/New_York")
    got = [s for s, _ in compute(inputs([res], **window, duration=45, location_zone="America/New_York", **query))]
    return [s for s in got if on is None or s.startswith(on)]


def test_rule_7_a_window_open_for_days_has_one_grid_whatever_the_request_or_now():
    res = _around_the_clock()
    alone = _local_slots(res, "2025-03-11", "2025-03-11")
    assert _local_slots(res, "2025-03-10", "2025-03-11", on="2025-03-11") == alone
    assert _local_slots(res, "2025-03-07", "2025-03-11", on="2025-03-11") == alone  # across spring-forward
    assert _local_slots(res, "2025-03-11", "2025-03-11", now=at("2025-03-10 07:00")) == alone
    assert _local_slots(res, "2025-03-10", "2025-03-11", on="2025-03-11", now=at("2025-03-10 15:10")) == alone
    # No gap at all, ever: the grid follows the fixed origin, local midnight of 2000-01-01 in the
    # resource's zone, every 45 minutes (a 23-hour DST day is not a multiple of 45 minutes).
    assert [s[11:16] for s in alone[:3]] == ["00:15", "01:00", "01:45"]


def test_rule_7_grid_looks_back_across_midnights_to_where_the_open_window_began():
    # A block ending at 10:20 on the 8th opens the window the 11th still belongs to: its grid is
    # 10:20 + k·45 minutes (across the DST change on the 9th), not the local midnight before the request.
    blocked = (e.Span(at("2025-03-08 10:00", "America/New_York"), at("2025-03-08 10:20", "America/New_York"), "b"),)
    res = _around_the_clock(blocks=blocked)
    alone = _local_slots(res, "2025-03-11", "2025-03-11")
    assert alone[:3] == ["2025-03-11T00:05:00-04:00", "2025-03-11T00:50:00-04:00", "2025-03-11T01:35:00-04:00"]
    assert _local_slots(res, "2025-03-08", "2025-03-11", on="2025-03-11") == alone


def test_rule_7_past_the_reach_the_grid_follows_the_fixed_origin():
    # The window opens at 10:20 on 03-01; 7 days later (GRID_REACH) the grid switches from
    # 10:20 + k·45 to the origin's (UTC midnight + k·45 here), whatever the request.
    blocked = (e.Span(at("2025-03-01 10:00"), at("2025-03-01 10:20"), "b"),)
    res = resource(hours=("00:00", "24:00"), blocks=blocked)
    on_the_8th = starts(inputs([res], **day("2025-03-08"), duration=45))
    assert on_the_8th[:3] == ["00:35", "01:20", "02:05"]
    assert on_the_8th[11:15] == ["08:50", "09:35", "10:30", "11:15"]  # switch at 10:20
    whole = compute(inputs([res], **days("2025-03-01", "2025-03-08"), duration=45))
    assert [s[11:16] for s, _ in whole if s.startswith("2025-03-08")] == on_the_8th


# --- rule 8: fit -----------------------------------------------------------------------------------


def test_rule_8_padding_must_fit_before_closing_unless_overflow_allowed():
    res = [resource(hours=("09:00", "10:00"))]
    strict = inputs(res, **day(MON), duration=30, padding=15)
    assert starts(strict) == ["09:00"]  # 09:30 + 30 + 15 = 10:15 > 10:00
    relaxed = with_query(strict, allow_padding_overflow=True)
    assert starts(relaxed) == ["09:00", "09:30"]


def test_rule_8_overflowing_padding_never_runs_over_another_appointment():
    appts = (booked("next", at(f"{MON} 10:00"), at(f"{MON} 10:30")),)
    res = [resource(hours=("09:00", "10:00"), appointments=appts)]
    relaxed = inputs(res, **day(MON), duration=30, padding=15, allow_padding_overflow=True)
    assert starts(relaxed) == ["09:00"]  # 09:30's padding would cover 10:00-10:15, which is taken


@pytest.mark.parametrize("overflow", [False, True])
@pytest.mark.parametrize("capacity,taken,expected", [
    (1, 1, ["09:00", "10:30", "11:00", "11:30"]),  # the padding may not run over the appointment
    (2, 1, ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]),  # one place left under it: allowed
    (2, 2, ["09:00", "10:30", "11:00", "11:30"]),  # both places taken under it: refused
])
def test_rule_8_padding_against_appointments_follows_capacity_with_or_without_overflow(overflow, capacity, taken, expected):
    # 09:30 + 30 minutes + 15 minutes of padding reaches into the appointment(s) at 10:00-10:30.
    # (Closing at 12:15, every padding fits before it: overflow changes nothing here.)
    appts = tuple(booked(f"a{i}", at(f"{MON} 10:00"), at(f"{MON} 10:30")) for i in range(taken))
    res = [resource(hours=("09:00", "12:15"), capacity=capacity, appointments=appts)]
    inp = inputs(res, **day(MON), duration=30, padding=15, allow_padding_overflow=overflow)
    assert starts(inp) == expected


@pytest.mark.parametrize("capacity,taken,expected", [
    (1, 1, ["09:00"]),
    (2, 1, ["09:00", "09:30"]),
    (2, 2, ["09:00"]),
])
def test_rule_8_overflow_past_closing_still_keeps_the_load_below_capacity(capacity, taken, expected):
    # Closing at 10:00; the 09:30 slot's padding (10:00-10:15) runs past it, onto the appointment(s)
    # at 10:00-10:30: overflow lifts the closing time only, never the capacity.
    appts = tuple(booked(f"a{i}", at(f"{MON} 10:00"), at(f"{MON} 10:30")) for i in range(taken))
    res = [resource(hours=("09:00", "10:00"), capacity=capacity, appointments=appts)]
    inp = inputs(res, **day(MON), duration=30, padding=15, allow_padding_overflow=True)
    assert starts(inp) == expected
    for when in ("09:00", "09:30"):
        valid = e.candidate_is_valid(inp, ["r1"], at(f"{MON} {when}"))
        assert valid == (when in expected) == e.candidate_explain(inp, "r1", at(f"{MON} {when}")).available


def test_rule_8_valid_starts_off_the_grid_are_bookable():
    inp = inputs([resource(hours=("09:00", "10:00"))], **day(MON), duration=30)
    assert e.candidate_is_valid(inp, ["r1"], at(f"{MON} 09:13"))
    assert not e.candidate_is_valid(inp, ["r1"], at(f"{MON} 09:31"))


# --- rule 9: round robin ---------------------------------------------------------------------------


def _two_staggered():
    # a: open from 09:00; b: busy until 09:15, so b's grid is 09:15, 09:45, ...
    a = resource("a", hours=("09:00", "11:00"))
    b = resource("b", hours=("09:00", "11:00"), appointments=(booked("x", at(f"{MON} 09:00"), at(f"{MON} 09:15")),))
    return [a, b]


def test_rule_9_none_lists_every_valid_resource_on_the_union_of_grids():
    got = dict(compute(inputs(_two_staggered(), **day(MON), duration=30, round_robin="NONE")))
    assert got["2025-03-10T09:00:00+00:00"] == ("a",)
    assert got["2025-03-10T09:15:00+00:00"] == ("a", "b")  # b's grid; a is valid there too
    assert got["2025-03-10T09:30:00+00:00"] == ("a", "b")  # a's grid; b is valid there too
    assert len(got) == 7  # 09:00 .. 10:30 every 15 minutes


def test_rule_9_random_picks_one_valid_resource_reproducibly_from_the_seed():
    res = [resource("a"), resource("b"), resource("c")]
    inp = inputs(res, **days(MON, "2025-03-16"), round_robin="RANDOM", seed="query-1")
    first = compute(inp)
    assert all(len(ids) == 1 for _, ids in first)
    assert compute(inp) == first  # same query, same data: same answer
    assert {ids[0] for _, ids in first} == {"a", "b", "c"}  # random, not always the first
    other = compute(with_query(inp, seed="query-2"))
    assert [s for s, _ in other] == [s for s, _ in first] and other != first


def test_rule_9_random_only_picks_among_valid_resources():
    busy = tuple(booked(f"x{h}", at(f"{MON} {h:02d}:00"), at(f"{MON} {h:02d}:30")) for h in range(9, 17))
    res = [resource("a"), resource("b", appointments=busy)]
    got = compute(inputs(res, **day(MON), round_robin="RANDOM", seed="s"))
    assert all(ids == ("a",) for s, ids in got if s[14:16] == "00")


def test_rule_9_balanced_picks_the_least_booked_resource():
    # a has 2 appointments in the window, b has 1, c has 3: b is chosen wherever it is valid.
    def appts(name, hours):
        return tuple(booked(f"{name}{h}", at(f"{MON} {h:02d}:00"), at(f"{MON} {h:02d}:30")) for h in hours)

    res = [
        resource("a", appointments=appts("a", [9, 10])),
        resource("b", appointments=appts("b", [11])),
        resource("c", appointments=appts("c", [12, 13, 14])),
    ]
    got = dict(compute(inputs(res, **day(MON), round_robin="BALANCED", seed="s")))
    assert got["2025-03-10T09:00:00+00:00"] == ("b",)
    assert got["2025-03-10T11:00:00+00:00"] == ("a",)  # b is busy: next fewest
    assert got["2025-03-10T12:00:00+00:00"] == ("b",)


def test_rule_9_balanced_counts_only_active_appointments_starting_in_the_request_window():
    # a: one appointment in the window. b: none that counts: one the day before, one the day
    # after, a cancelled one and an expired hold in the window. b has the fewest: b everywhere.
    now = at(f"{MON} 08:00")
    a = resource("a", appointments=(booked("a1", at(f"{MON} 12:00"), at(f"{MON} 12:30")),))
    b = resource("b", appointments=(
        booked("before", at("2025-03-09 10:00"), at("2025-03-09 10:30")),
        booked("after", at("2025-03-11 10:00"), at("2025-03-11 10:30")),
        booked("cancelled", at(f"{MON} 10:00"), at(f"{MON} 10:30"), status="CN"),
        booked("lapsed", at(f"{MON} 11:00"), at(f"{MON} 11:30"), status="IN", expires_at=at(f"{MON} 07:00")),
    ))
    got = compute(inputs([a, b], **day(MON), now=now, round_robin="BALANCED", seed="s"))
    assert len(got) == 16 and {ids for _, ids in got} == {("b",)}
    assert e.rule_9_balanced_counts([a, b], e.Query(**day(MON), now=now)) == {"a": 1, "b": 0}


def test_rule_9_balanced_breaks_ties_at_random():
    got = compute(inputs([resource("a"), resource("b")], **days(MON, "2025-03-12"), round_robin="BALANCED", seed="t"))
    assert {ids[0] for _, ids in got} == {"a", "b"}


def test_rule_9_combined_needs_every_resource_on_the_intersection_grid():
    doctor = resource("doctor", hours=("09:00", "12:00"))
    room = resource("room", hours=("09:30", "17:00"), appointments=(booked("x", at(f"{MON} 10:30"), at(f"{MON} 11:00")),))
    got = compute(inputs([doctor, room], **day(MON), duration=30, round_robin="COMBINED", resource_ids=("doctor", "room")))
    assert got == [
        ("2025-03-10T09:30:00+00:00", ("doctor", "room")),
        ("2025-03-10T10:00:00+00:00", ("doctor", "room")),
        ("2025-03-10T11:00:00+00:00", ("doctor", "room")),
        ("2025-03-10T11:30:00+00:00", ("doctor", "room")),
    ]


def test_rule_9_combined_grid_starts_where_all_of_them_are_open():
    # The doctor opens at 09:00, the room at 09:10: the shared window, and its grid, start at 09:10.
    doctor = resource("doctor", hours=("09:00", "12:00"))
    room = resource("room", hours=("09:10", "12:00"))
    got = starts(inputs([doctor, room], **day(MON), duration=30, round_robin="COMBINED", resource_ids=("doctor", "room")))
    assert got == ["09:10", "09:40", "10:10", "10:40", "11:10"]  # never 09:30 (the doctor's own grid)


def test_rule_9_mode_defaults_to_the_service_then_random():
    svc = e.ServiceIn("S", 30, round_robin="BALANCED")
    assert e.rule_9_mode(svc, e.Query(NOW, NOW, NOW)) == "BALANCED"
    assert e.rule_9_mode(e.ServiceIn("S", 30), e.Query(NOW, NOW, NOW)) == "RANDOM"
    assert e.rule_9_mode(svc, e.Query(NOW, NOW, NOW, round_robin="NONE")) == "NONE"


# --- rule 10: output -------------------------------------------------------------------------------


def test_rule_10_shape_offsets_sorting_and_empty_days():
    inp = inputs([resource(hours=("09:00", "10:00"), days=[1])], **days("2025-03-09", "2025-03-11", "America/New_York"))
    body = output(inp)
    assert list(body) == ["ServiceId", "availableTimes", "availableDays"]
    assert list(body["availableDays"]) == ["2025-03-09", "2025-03-10", "2025-03-11"]
    assert body["availableDays"]["2025-03-09"] == [] and body["availableDays"]["2025-03-11"] == []
    first = body["availableTimes"][0]
    assert first == {
        "start_time": "2025-03-10T05:00:00-04:00",  # 09:00 UTC shown in New York
        "end_time": "2025-03-10T05:30:00-04:00",
        "LocationId": "L",
        "ResourceIds": ["r1"],
    }
    assert body["availableDays"]["2025-03-10"][0] == {k: v for k, v in first.items() if k != "LocationId"}
    assert [s["start_time"] for s in body["availableTimes"]] == sorted(s["start_time"] for s in body["availableTimes"])


def test_rule_10_days_are_the_local_dates_of_the_answer_zone():
    # 02:00 in Kolkata on the 10th is 20:30 UTC on the 9th: the slot belongs to the 10th.
    inp = inputs([resource(zone="Asia/Kolkata", hours=("02:00", "03:00"))], **day(MON, "Asia/Kolkata"), duration=60)
    body = output(inp)
    assert [s["start_time"] for s in body["availableTimes"]] == ["2025-03-10T02:00:00+05:30"]
    assert list(body["availableDays"]) == [MON]
    assert [s["start_time"] for s in body["availableDays"][MON]] == ["2025-03-10T02:00:00+05:30"]


def test_rule_10_utc_is_plus_zero_never_z():
    body = output(inputs(**day(MON)))
    assert body["availableTimes"][0]["start_time"] == "2025-03-10T09:00:00+00:00"


# --- rule 11: firstAvailable -----------------------------------------------------------------------


def test_rule_11_first_available_is_the_first_slot_of_the_full_answer():
    res = [resource("a", days=[3]), resource("b", days=[3])]
    full = inputs(res, **days(MON, "2025-03-16"), round_robin="RANDOM", seed="fa")
    first = output(with_query(full, first_available=True))
    assert first["availableTimes"] == output(full)["availableTimes"][:1]
    assert first["availableTimes"][0]["start_time"] == "2025-03-12T09:00:00+00:00"
    assert list(first["availableDays"]) == [f"2025-03-{d}" for d in range(10, 17)]
    assert sum(len(v) for v in first["availableDays"].values()) == 1


def test_rule_11_first_available_with_nothing_free():
    body = output(inputs([resource(hours=None)], **days(MON, "2025-03-12"), first_available=True))
    assert body["availableTimes"] == [] and all(v == [] for v in body["availableDays"].values())


# --- time zones (overview.md "Time") -----------------------------------------------------------------


def _local_starts(zone: str, first: str, last: str, hours=(("09:00", "10:00"), ("13:00", "14:00"))):
    shifts = tuple(w for start, end in hours for w in weekly(start, end))
    inp = inputs([resource(zone=zone, weekly=shifts)], **days(first, last, zone), duration=60)
    return [s for s, _ in compute(inp)]


def test_new_york_spring_forward_week_keeps_local_hours():
    got = _local_starts("America/New_York", "2025-03-08", "2025-03-10")
    assert got == [
        "2025-03-08T09:00:00-05:00", "2025-03-08T13:00:00-05:00",
        "2025-03-09T09:00:00-04:00", "2025-03-09T13:00:00-04:00",
        "2025-03-10T09:00:00-04:00", "2025-03-10T13:00:00-04:00",
    ]


def test_new_york_fall_back_week_keeps_local_hours():
    got = _local_starts("America/New_York", "2025-11-01", "2025-11-03")
    assert got == [
        "2025-11-01T09:00:00-04:00", "2025-11-01T13:00:00-04:00",
        "2025-11-02T09:00:00-05:00", "2025-11-02T13:00:00-05:00",
        "2025-11-03T09:00:00-05:00", "2025-11-03T13:00:00-05:00",
    ]


def test_spring_forward_gap_moves_to_the_first_valid_instant():
    # 2025-03-09 02:00-03:00 does not exist in New York: a 02:00-04:00 shift is 03:00-04:00 EDT.
    inp = inputs([resource(zone="America/New_York", hours=("02:00", "04:00"))], **day("2025-03-09", "America/New_York"), duration=30)
    assert [s for s, _ in compute(inp)] == ["2025-03-09T03:00:00-04:00", "2025-03-09T03:30:00-04:00"]
    assert wc.wall_to_epoch("America/New_York", date(2025, 3, 9), t("02:30"), False) == wc.epoch(at("2025-03-09 07:00"))


def test_fall_back_repeated_hour_starts_first_and_ends_second():
    # 01:00-02:00 on 2025-11-02: starts at 01:00 EDT (05:00Z), ends at 02:00 EST (07:00Z): two real hours.
    inp = inputs([resource(zone="America/New_York", hours=("01:00", "02:00"))], **day("2025-11-02", "America/New_York"), duration=60)
    assert [s for s, _ in compute(inp)] == ["2025-11-02T01:00:00-04:00", "2025-11-02T01:00:00-05:00"]
    assert wc.wall_to_epoch("America/New_York", date(2025, 11, 2), t("01:30"), False) == wc.epoch(at("2025-11-02 05:30"))
    assert wc.wall_to_epoch("America/New_York", date(2025, 11, 2), t("01:30"), True) == wc.epoch(at("2025-11-02 06:30"))


def test_europe_london_across_bst_start():
    got = _local_starts("Europe/London", "2025-03-29", "2025-03-31", hours=(("09:00", "10:00"),))
    assert got == ["2025-03-29T09:00:00+00:00", "2025-03-30T09:00:00+01:00", "2025-03-31T09:00:00+01:00"]


@pytest.mark.parametrize("zone,offset,utc", [("Asia/Kolkata", "+05:30", "03:30"), ("Asia/Kathmandu", "+05:45", "03:15")])
def test_half_and_quarter_hour_offsets(zone, offset, utc):
    got = _local_starts(zone, MON, MON, hours=(("09:00", "10:00"),))
    assert got == [f"2025-03-10T09:00:00{offset}"]
    inp = inputs([resource(zone=zone, hours=("09:00", "10:00"))], **day(MON, zone), duration=60)
    assert wc.instant(e.availability_compute(inp).slots[0].start).strftime("%H:%M") == utc


def test_lord_howe_half_hour_dst():
    # Lord Howe moves from +10:30 to +11:00 at 02:00 on 2025-10-05 (02:00-02:30 does not exist).
    got = _local_starts("Australia/Lord_Howe", "2025-10-04", "2025-10-05", hours=(("09:00", "10:00"),))
    assert got == ["2025-10-04T09:00:00+10:30", "2025-10-05T09:00:00+11:00"]
    inp = inputs([resource(zone="Australia/Lord_Howe", hours=("01:30", "03:00"))], **day("2025-10-05", "Australia/Lord_Howe"), duration=30)
    # 01:30-02:00 (+10:30), then the clock jumps to 02:30 (+11:00): one real hour of work.
    assert [s for s, _ in compute(inp)] == [
        "2025-10-05T01:30:00+10:30", "2025-10-05T02:30:00+11:00",
    ]


def test_resource_zone_differs_from_location_zone():
    # Chicago 09:00-17:00 = 10:00-18:00 New York; the New York location opens 08:00-17:00.
    inp = inputs(
        [resource(zone="America/Chicago", hours=("09:00", "17:00"))],
        location_zone="America/New_York", location_weekly=weekly("08:00", "17:00"),
        **day(MON, "America/New_York"), duration=60,
    )
    got = [s for s, _ in compute(inp)]
    assert got[0] == "2025-03-10T10:00:00-04:00" and got[-1] == "2025-03-10T16:00:00-04:00" and len(got) == 7


# --- recurring blocks ----------------------------------------------------------------------------------


def _rule(frequency, start_date, **kwargs):
    return wc.RecurringRule(frequency, date.fromisoformat(start_date), t("09:00"), t("10:00"), "UTC", **kwargs)


def _occurrences(rule, first="2025-01-01", last="2025-12-31"):
    d, out = date.fromisoformat(first), []
    while d <= date.fromisoformat(last):
        if wc.recurring_rule_occurs(rule, d):
            out.append(d.isoformat())
        d += timedelta(days=1)
    return out


def test_recurring_daily_with_interval_and_end():
    assert _occurrences(_rule("DAILY", "2025-03-01", interval=3, end_date=date(2025, 3, 10))) == [
        "2025-03-01", "2025-03-04", "2025-03-07", "2025-03-10",
    ]


def test_recurring_weekly_weekdays_zero_is_sunday():
    got = _occurrences(_rule("WEEKLY", "2025-03-02", weekdays=(0, 3)), last="2025-03-16")
    assert got == ["2025-03-02", "2025-03-05", "2025-03-09", "2025-03-12", "2025-03-16"]


def test_recurring_biweekly_every_other_week():
    got = _occurrences(_rule("BIWEEKLY", "2025-03-03", weekdays=(1,)), last="2025-04-01")
    assert got == ["2025-03-03", "2025-03-17", "2025-03-31"]


def test_recurring_monthly_skips_months_without_the_day():
    got = _occurrences(_rule("MONTHLY", "2025-01-31", month_day=31))
    assert got == ["2025-01-31", "2025-03-31", "2025-05-31", "2025-07-31", "2025-08-31", "2025-10-31", "2025-12-31"]


def test_recurring_yearly_on_leap_day_only_in_leap_years():
    got = _occurrences(_rule("YEARLY", "2024-02-29"), first="2024-01-01", last="2029-12-31")
    assert got == ["2024-02-29", "2028-02-29"]


def test_recurring_block_follows_local_time_across_dst():
    rule = wc.RecurringRule("DAILY", date(2025, 3, 1), t("12:00"), t("13:00"), "America/New_York")
    got = wc.recurring_rules_expand([rule], wc.epoch(at("2025-03-08 00:00")), wc.epoch(at("2025-03-10 23:00")))
    assert [wc.instant(s).strftime("%d %H:%M") for s, _, _ in got] == ["07 17:00", "08 17:00", "09 16:00", "10 16:00"]


# --- one candidate: booking validation and explanations ------------------------------------------------


def test_explain_names_every_reason_and_agrees_with_the_validator():
    appts = (booked("appt-1", at(f"{MON} 09:00"), at(f"{MON} 09:30"), padding=15),)
    blocks = (e.Span(at(f"{MON} 11:00"), at(f"{MON} 12:00"), "block-1"),)
    busy = (e.Span(at(f"{MON} 13:00"), at(f"{MON} 14:00"), "cal-1"),)
    res = resource(hours=("09:00", "15:00"), appointments=appts, blocks=blocks, external_busy=busy)
    inp = inputs([res], **day(MON), now=at(f"{MON} 08:00"), location_weekly=weekly("08:00", "14:30"))

    def codes(when):
        got = e.candidate_explain(inp, "r1", at(when))
        assert got.available == e.candidate_is_valid(inp, ["r1"], at(when))
        return [(r.code, r.ref) for r in got.reasons]

    assert codes(f"{MON} 09:00") == [("appointment", "appt-1")]
    assert codes(f"{MON} 09:30") == [("padding", "appt-1")]
    assert codes(f"{MON} 11:15") == [("blocked", "block-1")]
    assert codes(f"{MON} 13:00") == [("external_busy", "cal-1")]
    assert codes(f"{MON} 14:30") == [("location_closed", "L")]
    assert codes(f"{MON} 15:00") == [("outside_working_hours", "r1"), ("location_closed", "L")]
    assert codes(f"{MON} 07:00") == [("in_past", ""), ("outside_working_hours", "r1"), ("location_closed", "L")]
    assert codes(f"{MON} 10:00") == []
    assert e.candidate_explain(inp, "nobody", at(f"{MON} 10:00")).reasons[0].code == "not_linked"


def test_explain_capacity_full():
    appts = tuple(booked(f"a{i}", at(f"{MON} 09:00"), at(f"{MON} 09:30")) for i in range(2))
    inp = inputs([resource(capacity=2, appointments=appts)], **day(MON))
    got = e.candidate_explain(inp, "r1", at(f"{MON} 09:00"))
    assert not got.available
    assert [r.code for r in got.reasons] == ["capacity_full", "appointment", "appointment"]


def test_booking_choice_without_resources_follows_round_robin():
    busy = (booked("x", at(f"{MON} 09:00"), at(f"{MON} 09:30")),)
    inp = inputs([resource("a", appointments=busy), resource("b")], **day(MON), round_robin="NONE")
    assert e.candidate_resources_choose(inp, at(f"{MON} 09:00")) == ("b",)
    assert e.candidate_resources_choose(inp, at(f"{MON} 09:30")) == ("a",)
    assert e.candidate_resources_choose(inp, at(f"{MON} 18:00")) is None


def test_override_duration_rules():
    svc = e.ServiceIn("S", 30, duration_select=True, duration_min=30, duration_max=90, duration_interval=15)
    assert e.override_duration_error(svc, 45) is None
    assert "multiple" in e.override_duration_error(svc, 40)
    assert "between" in e.override_duration_error(svc, 105)
    assert "between" in e.override_duration_error(svc, 15)
    assert "durationSelect" in e.override_duration_error(e.ServiceIn("S", 30), 30)



def test_engine_is_pure():
    """No Django, no ORM, no settings: importing the engine loads none of them."""
    import subprocess
    import sys

    code = (
        "import sys; import booking.availability.engine; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework', 'tenants')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[2])})
    assert out.stdout.strip() == "[]"


def test_engine_package_modules_stay_small_and_do_not_reexport_wallclock():
    """Issue 9: no engine module over 400 lines; wall-clock helpers are imported from
    ``wallclock`` by whoever needs them, not through the engine."""
    from pathlib import Path

    package = Path(e.__file__).parent
    sizes = {p.name: len(p.read_text().splitlines()) for p in package.glob("*.py")}
    assert "rules.py" in sizes and max(sizes.values()) <= 400, sizes
    clock_names = {n for n in vars(wc) if not n.startswith("_")} - {"annotations"}
    assert clock_names & set(e.__all__) == set()
    assert not any(hasattr(e, n) for n in ("epoch", "instant", "wall_to_epoch", "zone_get", "WeeklyWindow"))


@pytest.mark.parametrize(
    "build",
    [
        lambda: inputs([resource(), resource("r2", hours=("10:00", "12:00"))], **days(MON, "2025-03-12"), round_robin="NONE"),
        lambda: inputs([resource(), resource("r2")], **days(MON, "2025-03-11"), round_robin="RANDOM", seed="s"),
        lambda: inputs([resource(), resource("r2")], **day(MON), round_robin="COMBINED", resource_ids=("r1", "r2")),
        lambda: inputs([resource(zone="America/New_York")], **days("2025-03-08", "2025-03-10", "America/New_York")),
        lambda: inputs([resource(zone="Asia/Kolkata", hours=("22:00", "24:00"))], **days(MON, "2025-03-11", "Asia/Kolkata")),
        lambda: inputs([resource(hours=None)], **days(MON, "2025-03-11")),  # no slot: every day empty
    ],
)
def test_rule_10_answer_written_directly_is_byte_for_byte_the_dict_rendering(build):
    """``render.answer_render`` writes the JSON itself; it must be exactly what serializing
    ``rule_10_output`` gives (ids and key order included), across zones, DST and empty days."""
    from booking.availability.cache import answer_bytes
    from booking.availability.render import answer_render

    inp = build()
    result = e.availability_compute(inp)
    expected = answer_bytes(e.rule_10_output(result, service_id="svc-1", location_id="loc-\u00e9", zone=inp.query.zone))
    assert answer_render(result, service_id="svc-1", location_id="loc-\u00e9", zone=inp.query.zone) == expected
    assert b"availableDays" in expected
