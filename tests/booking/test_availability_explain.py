"""The explainer: every reason names its object (kind, id, interval), and the day view agrees with
the listing and with the one-start explanation, over examples and generated schedules."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from booking.availability import engine as e
from booking.availability import wallclock as wc
from tests.booking.engine_helpers import at, booked, day, inputs, resource, t
from tests.booking.test_availability_properties import PROPERTY_SETTINGS, scenarios

MON = "2025-03-10"


def _reasons(inp, when, rid="r1"):
    return [(r.code, r.kind, r.ref, r.start, r.end) for r in e.candidate_explain(inp, rid, at(when)).reasons]


def ep(text: str) -> int:
    return wc.epoch(at(text))


def test_each_reason_names_its_object_and_the_interval_in_the_way():
    appts = (booked("appt-1", at(f"{MON} 09:00"), at(f"{MON} 09:30"), padding=15),)
    blocks = (e.Span(at(f"{MON} 11:00"), at(f"{MON} 12:00"), "block-1"),)
    busy = (e.Span(at(f"{MON} 13:00"), at(f"{MON} 14:00"), "cal-1"),)
    weekly = (wc.WeeklyWindow(1, t("09:00"), t("15:00"), ref="shift-1"),)
    res = resource(weekly=weekly, appointments=appts, blocks=blocks, external_busy=busy,
                   allocations=(e.Span(at(f"{MON} 18:00"), at(f"{MON} 18:20"), "alloc-1"),),
                   recurring_blocks=(wc.RecurringRule("DAILY", date(2025, 3, 1), t("12:30"), t("12:45"), "UTC", ref="rb-1"),))
    inp = inputs([res], **day(MON), now=at(f"{MON} 08:00"))

    assert _reasons(inp, f"{MON} 08:45") == [
        ("outside_working_hours", "hours", "r1", ep(f"{MON} 08:45"), ep(f"{MON} 09:00")),
        ("appointment", "appointment", "appt-1", ep(f"{MON} 09:00"), ep(f"{MON} 09:30")),
    ]
    assert _reasons(inp, f"{MON} 09:30") == [("padding", "appointment", "appt-1", ep(f"{MON} 09:30"), ep(f"{MON} 09:45"))]
    assert _reasons(inp, f"{MON} 11:15") == [("blocked", "block", "block-1", ep(f"{MON} 11:00"), ep(f"{MON} 12:00"))]
    assert _reasons(inp, f"{MON} 12:15") == [
        ("blocked", "recurring_block", "rb-1", ep(f"{MON} 12:30"), ep(f"{MON} 12:45"))
    ]
    assert _reasons(inp, f"{MON} 13:00") == [
        ("external_busy", "external_busy", "cal-1", ep(f"{MON} 13:00"), ep(f"{MON} 14:00"))
    ]
    # A start inside the shift that the shift ends under names the shift; inside the allocation, the allocation.
    assert _reasons(inp, f"{MON} 14:45") == [
        ("outside_working_hours", "shift", "shift-1", ep(f"{MON} 15:00"), ep(f"{MON} 15:15"))
    ]
    assert _reasons(inp, f"{MON} 18:00") == [
        ("outside_working_hours", "allocation", "alloc-1", ep(f"{MON} 18:20"), ep(f"{MON} 18:30"))
    ]
    assert _reasons(inp, f"{MON} 07:00")[0] == ("in_past", "now", "", ep(f"{MON} 07:00"), ep(f"{MON} 08:00"))


def test_location_hours_and_capacity_name_the_part_in_the_way():
    appts = tuple(booked(f"a{i}", at(f"{MON} 10:00"), at(f"{MON} 10:30")) for i in range(2))
    inp = inputs([resource(capacity=2, appointments=appts)], **day(MON),
                 location_weekly=tuple(wc.WeeklyWindow(d, t("08:00"), t("16:40")) for d in range(7)))
    assert _reasons(inp, f"{MON} 09:45") == [
        ("capacity_full", "capacity", "r1", ep(f"{MON} 10:00"), ep(f"{MON} 10:15")),
        ("appointment", "appointment", "a0", ep(f"{MON} 10:00"), ep(f"{MON} 10:30")),
        ("appointment", "appointment", "a1", ep(f"{MON} 10:00"), ep(f"{MON} 10:30")),
    ]
    assert _reasons(inp, f"{MON} 16:30") == [
        ("location_closed", "location_hours", "L", ep(f"{MON} 16:40"), ep(f"{MON} 17:00"))
    ]


def test_day_view_lists_the_grid_and_the_days_steps_each_explained():
    appts = (booked("appt-1", at(f"{MON} 10:00"), at(f"{MON} 10:30")),)
    res = resource(hours=("09:10", "12:00"), appointments=appts)
    inp = inputs([res], **day(MON), duration=30)
    got = {wc.instant(s.start).strftime("%H:%M"): s.explanation for s in e.day_explain(inp, "r1", date(2025, 3, 10), "UTC")}
    assert len([k for k in got if k.endswith(("00", "30"))]) == 48  # every step of S from local midnight
    listed = {wc.instant(s.start).strftime("%H:%M") for s in e.availability_compute(inp).slots}
    assert listed == {"09:10", "10:30", "11:00", "11:30"}
    assert {k for k, x in got.items() if x.available and x.on_grid} == listed
    assert got["09:30"].available and not got["09:30"].on_grid  # bookable, off the grid: says so
    assert [(r.code, r.ref) for r in got["10:00"].reasons] == [("appointment", "appt-1")]
    assert got["09:40"].on_grid and [(r.code, r.ref) for r in got["09:40"].reasons] == [("appointment", "appt-1")]
    assert [r.code for r in got["08:00"].reasons] == ["outside_working_hours"]


def test_day_view_across_a_dst_change_has_the_days_local_steps():
    zone = "America/New_York"
    res = resource(zone=zone, hours=("00:00", "24:00"))
    inp = inputs([res], **day("2025-03-09", zone), duration=60, location_zone=zone)
    got = e.day_explain(inp, "r1", date(2025, 3, 9), zone)
    assert len(got) == 23  # the spring-forward day has 23 hours
    assert all(s.explanation.available for s in got)


def test_day_view_of_a_resource_that_is_not_there():
    inp = inputs([resource()], **day(MON), duration=60)
    got = e.day_explain(inp, "nobody", date(2025, 3, 10), "UTC")
    assert len(got) == 24 and all([r.code for r in s.explanation.reasons] == ["not_linked"] for s in got)


@PROPERTY_SETTINGS
@given(scenarios(), st.data())
def test_day_view_agrees_with_the_listing_and_with_each_start_explained(inputs_, data):
    resource_ = data.draw(st.sampled_from(inputs_.resources))
    zone = inputs_.query.zone
    local = datetime.fromtimestamp(wc.epoch(inputs_.query.start), wc.zone_get(zone)).date()
    start = wc.instant(wc.wall_to_epoch(zone, local, t("00:00"), False))
    end = wc.instant(wc.wall_to_epoch(zone, local + timedelta(days=1), t("00:00"), False) - 1)
    one = replace(inputs_, query=replace(inputs_.query, start=start, end=end, resource_ids=(resource_.id,)))
    listed = {s.start for s in e.availability_compute(one).slots}
    explained = e.day_explain(one, resource_.id, local, zone)
    assert {s.start for s in explained if s.explanation.available and s.explanation.on_grid} == listed
    for s in explained[:: max(1, len(explained) // 12)]:
        assert s.explanation == e.candidate_explain(one, resource_.id, wc.instant(s.start))
    for s in explained:
        assert s.explanation.available or s.explanation.reasons  # no start is refused without a reason
        assert s.explanation.available == e.candidate_is_valid(one, [resource_.id], wc.instant(s.start))
