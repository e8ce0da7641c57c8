"""``GET /v1/availability``: one test per rule of emr-api.md, "Availability from cached data"."""

from __future__ import annotations

from datetime import date

import pytest

from booking.models import Appointment, Location, ResourceService, Service
from tests.conftest import make_tenant
from tests.emr.availability_factories import World, spans

MON = date(2025, 5, 5)  # a Monday (EDT, -04:00)
DAY = {"start_date": "2025-05-05", "end_date": "2025-05-05"}


@pytest.fixture
def world(db) -> World:
    return World(make_tenant("Clinic", timezone_name="America/New_York"))


# --- shifts ----------------------------------------------------------------------------------


def test_gaps_window_fields_and_subtracted_appointment(world):
    ada = world.provider("P-1")
    world.shift(ada, 1, "09:00", "17:00")
    world.appointment(ada, MON, "10:00", 30)
    assert world.windows(**DAY) == [
        {
            "day_of_week": 1,
            "date": "2025-05-05",
            "duration_string": "1h",
            "range_start": "2025-05-05T09:00:00.000-04:00",
            "range_end": "2025-05-05T10:00:00.000-04:00",
            "provider_id": "P-1",
        },
        {
            "day_of_week": 1,
            "date": "2025-05-05",
            "duration_string": "6h 30m",
            "range_start": "2025-05-05T10:30:00.000-04:00",
            "range_end": "2025-05-05T17:00:00.000-04:00",
            "provider_id": "P-1",
        },
    ]


def test_answer_shape_and_order_by_provider_then_start(world):
    for ehr_id in ("P-2", "P-1"):
        p = world.provider(ehr_id)
        world.shift(p, 1, "13:00", "14:00")
        world.shift(p, 1, "09:00", "10:00")
    body = world.get(**DAY).json()
    assert list(body) == ["success", "results"] and list(body["results"]) == ["availability"]
    order = [(w["provider_id"], w["range_start"][11:16]) for w in body["results"]["availability"]]
    assert order == [("P-1", "09:00"), ("P-1", "13:00"), ("P-2", "09:00"), ("P-2", "13:00")]


def test_shift_validity_dates_and_every_two_weeks(world):
    ada = world.provider("P-1")
    world.shift(ada, 1, "09:00", "12:00", valid_from=date(2025, 5, 5), valid_until=date(2025, 5, 26), recur_every_weeks=2)
    world.shift(ada, 3, "09:00", "10:00", valid_from=date(2025, 5, 14), valid_until=date(2025, 5, 14))
    days = [w["date"] for w in world.windows(start_date="2025-05-01", end_date="2025-05-31")]
    assert days == ["2025-05-05", "2025-05-14", "2025-05-19"]


def test_dates_are_the_providers_local_dates_in_its_own_zone(world):
    denver = world.provider("P-DEN", zone="America/Denver")
    world.shift(denver, 1, "08:00", "17:10")
    (window,) = world.windows(**DAY)
    assert (window["range_start"], window["range_end"]) == ("2025-05-05T08:00:00.000-06:00", "2025-05-05T17:10:00.000-06:00")
    assert window["duration_string"] == "9h 10m"


def test_a_provider_without_its_own_zone_follows_its_first_location(world):
    lodo = world.location("LOC-DEN", "LoDo", zone="America/Denver")
    p = world.provider("P-1", zone=None)
    service = Service.objects.create(organization=world.org, name="Visit", duration=30)
    ResourceService.objects.create(organization=world.org, resource=p, service=service, location=lodo)
    world.shift(p, 1, "08:00", "09:00")
    assert [w["range_start"] for w in world.windows(**DAY)] == ["2025-05-05T08:00:00.000-06:00"]


@pytest.mark.parametrize(
    "day,expected",
    [
        # spring forward: 02:00 does not exist, the 01:00-05:00 shift lasts 3 hours
        ("2025-03-09", [("2025-03-09T01:00:00.000-05:00", "2025-03-09T05:00:00.000-04:00", "3h"),
                        ("2025-03-09T08:00:00.000-04:00", "2025-03-09T17:00:00.000-04:00", "9h")]),
        # fall back: 01:00-02:00 happens twice, the 01:00-05:00 shift lasts 5 hours
        ("2025-11-02", [("2025-11-02T01:00:00.000-04:00", "2025-11-02T05:00:00.000-05:00", "5h"),
                        ("2025-11-02T08:00:00.000-05:00", "2025-11-02T17:00:00.000-05:00", "9h")]),
    ],
)
def test_shifts_on_the_dst_change_day_keep_their_wall_times(world, day, expected):
    night = world.provider("P-1")
    world.shift(night, 0, "01:00", "05:00")  # Sunday
    world.shift(night, 0, "08:00", "17:00")
    windows = world.windows(start_date=day, end_date=day)
    assert [(w["range_start"], w["range_end"], w["duration_string"]) for w in windows] == expected
    assert {w["day_of_week"] for w in windows} == {7}


def test_equal_slots_on_the_fall_back_day_split_real_time(world):
    night = world.provider("P-1")
    world.shift(night, 0, "00:00", "04:00", rules=[("00:00", "04:00", 5, "FU")])  # 5 real hours
    windows = world.windows(start_date="2025-11-02", end_date="2025-11-02", calculation_method="equal_slots")
    assert [w["duration_string"] for w in windows] == ["1h"] * 5
    assert windows[1]["range_start"] == "2025-11-02T01:00:00.000-04:00" and windows[2]["range_start"] == "2025-11-02T01:00:00.000-05:00"


def test_no_shift_no_availability_unless_default_hours(world):
    world.provider("P-1")
    assert world.windows(**DAY) == []
    assert spans(world.windows(**DAY, fallback_to_default_hours="true")) == [("09:00", "17:00")]
    saturday = {"start_date": "2025-05-10", "end_date": "2025-05-10"}
    assert world.windows(**saturday, fallback_to_default_hours="true") == []


def test_default_hours_are_the_organizations_and_editable_through_the_api(world):
    p = world.provider("P-1")
    world.shift(p, 2, "09:00", "10:00")  # a Tuesday shift: Monday falls back, Tuesday keeps its own
    response = world.tenant.v1().patch(
        "/v1/settings",
        {"default_hours": [{"day": "Monday", "shifts": [{"start": "T07:00:00", "end": "T11:30:00"}]}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["default_hours"] == [{"day": "Monday", "shifts": [{"start": "T07:00:00", "end": "T11:30:00"}]}]
    world.org.refresh_from_db()
    assert world.org.default_hours == [{"dayOfWeek": 1, "startTime": "07:00:00", "endTime": "11:30:00"}]
    windows = world.windows(start_date="2025-05-05", end_date="2025-05-06", fallback_to_default_hours="true")
    assert [(w["date"], *spans([w])[0]) for w in windows] == [("2025-05-05", "07:00", "11:30"), ("2025-05-06", "09:00", "10:00")]


# --- which appointments count ----------------------------------------------------------------


def test_inactive_hidden_and_cancelled_never_count_or_appear(world):
    ada, hidden, gone = world.provider("P-1"), world.provider("P-2", hide_in_availability=True), world.provider("P-3", status="inactive")
    for p in (ada, hidden, gone):
        world.shift(p, 1, "09:00", "10:00")
    world.appointment(ada, MON, "09:00", 30, status=Appointment.Status.CANCELLED)
    windows = world.windows(**DAY)
    assert [(w["provider_id"], *spans([w])[0]) for w in windows] == [("P-1", "09:00", "10:00")]
    assert world.windows(**DAY, provider_ids="P-2,P-3") == []


def test_provider_ids_narrow(world):
    for ehr_id in ("P-1", "P-2", "P-3"):
        world.shift(world.provider(ehr_id), 1, "09:00", "10:00")
    assert [w["provider_id"] for w in world.windows(**DAY, provider_ids="P-3,P-1")] == ["P-1", "P-3"]
    assert [w["provider_id"] for w in world.windows(start_date="2025-05-05", end_date="2025-05-05", provider_ids=["P-2"])] == ["P-2"]


def test_provider_type_secondary_counts_the_appointments_where_it_is_secondary(world):
    ada, bo = world.provider("P-1"), world.provider("P-2")
    world.shift(ada, 1, "09:00", "12:00")
    world.shift(bo, 1, "09:00", "12:00")
    world.appointment(ada, MON, "09:00", 60, secondary=bo)  # Ada primary, Bo secondary
    primary = {w["provider_id"]: spans([w]) for w in world.windows(**DAY)}
    assert world.windows(**DAY, provider_ids="P-1") and spans(world.windows(**DAY, provider_ids="P-1")) == [("10:00", "12:00")]
    assert spans(world.windows(**DAY, provider_ids="P-2")) == [("09:00", "12:00")]
    assert primary["P-2"] == [("09:00", "12:00")]
    assert spans(world.windows(**DAY, provider_ids="P-2", provider_type="secondary")) == [("10:00", "12:00")]
    assert spans(world.windows(**DAY, provider_ids="P-1", provider_type="secondary")) == [("09:00", "12:00")]


def test_bookings_through_v3_block_the_same_way(world):
    """The same appointment rows as /v3/: a booking made there (a service, no EMR roles, the
    resource linked) occupies the provider here, and a lapsed hold does not."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    ny = ZoneInfo("America/New_York")
    site = world.location("LOC-1", "Main")
    ada = world.provider("P-1")
    world.shift(ada, 1, "09:00", "12:00", rules=[("09:00", "12:00", 2, "FU")])
    service = Service.objects.create(organization=world.org, name="Visit", duration=30, visit_type="FU")
    for hour, status, expires in ((10, Appointment.Status.BOOKED, None), (11, Appointment.Status.HOLD, datetime(2025, 1, 1, tzinfo=ny))):
        booked = Appointment.objects.create(
            organization=world.org, start=datetime(2025, 5, 5, hour, tzinfo=ny), end=datetime(2025, 5, 5, hour, tzinfo=ny) + timedelta(minutes=30),
            service=service, location=site, status=status, expires_at=expires,
        )
        booked.resources.add(ada)
    assert spans(world.windows(**DAY)) == [("09:00", "10:00"), ("10:30", "12:00")]
    (slot,) = world.windows(**DAY, calculation_method="slots")
    assert slot["available_appointments"] == 1  # the booked service's visit type is FU


# --- buffer ----------------------------------------------------------------------------------


def test_buffer_follows_every_appointment_by_default(world):
    ada = world.provider("P-1")
    world.shift(ada, 1, "09:00", "12:00")
    world.appointment(ada, MON, "09:30", 30, code="FU")
    world.appointment(ada, MON, "11:00", 30, code="NP")
    assert spans(world.windows(**DAY, buffer="15")) == [("09:00", "09:30"), ("10:15", "11:00"), ("11:45", "12:00")]


def test_buffer_only_after_the_matching_visit_type(world):
    ada = world.provider("P-1")
    world.shift(ada, 1, "09:00", "12:00")
    world.appointment(ada, MON, "09:30", 30, code="FU")
    world.appointment(ada, MON, "11:00", 30, code="NP")
    assert spans(world.windows(**DAY, buffer="15", visit_type="fu")) == [("09:00", "09:30"), ("10:15", "11:00"), ("11:30", "12:00")]


# --- slots and equal slots -------------------------------------------------------------------


def test_slots_capacity_three_less_the_visits_of_that_type_starting_inside(world):
    ada = world.provider("P-1")
    world.shift(ada, 1, "09:00", "13:00", rules=[("09:00", "12:00", 3, "FU"), ("12:00", "13:00", 1, "NP")])
    world.appointment(ada, MON, "09:00", 20, code="FU")
    world.appointment(ada, MON, "10:00", 20, code="NP")  # another visit type inside the FU rule: not counted
    world.appointment(ada, MON, "11:50", 30, code="FU")  # starts inside: counted
    windows = world.windows(**DAY, calculation_method="slots")
    assert [(w["visit_type"], *spans([w])[0], w["available_appointments"], w["max_visits"]) for w in windows] == [
        ("FU", "09:00", "12:00", 1, 3),
        ("NP", "12:00", "13:00", 1, 1),
    ]
    assert windows[0]["duration_string"] == "3h"


def test_slots_capacity_one_taken_is_dropped_and_visit_type_restricts(world):
    ada = world.provider("P-1")
    world.shift(ada, 1, "09:00", "11:00", rules=[("09:00", "10:00", 1, "NP"), ("10:00", "11:00", 2, "FU")])
    world.appointment(ada, MON, "09:15", 30, code="NP")
    assert [w["visit_type"] for w in world.windows(**DAY, calculation_method="slots")] == ["FU"]
    assert world.windows(**DAY, calculation_method="slots", visit_type="NP") == []
    assert [w["visit_type"] for w in world.windows(**DAY, calculation_method="slots", visit_type="fu")] == ["FU"]


def test_equal_slots_split_drop_the_overlapped_keep_the_earliest(world):
    ada = world.provider("P-1")
    world.shift(ada, 1, "09:00", "11:00", rules=[("09:00", "10:00", 3, "FU"), ("10:00", "11:10", 3, "NP")])
    world.appointment(ada, MON, "09:25", 10, code="FU")  # overlaps the second FU sub-slot
    world.appointment(ada, MON, "10:00", 10, code="FU")  # another visit type for the NP rule
    windows = world.windows(**DAY, calculation_method="equal_slots")
    assert [(w["visit_type"], *spans([w])[0], w["available_appointments"], w["max_visits"]) for w in windows] == [
        ("FU", "09:00", "09:20", 1, 3),
        ("FU", "09:40", "10:00", 1, 3),  # capacity left 2: the two free ones
        ("NP", "10:00", "10:23", 1, 3),
        ("NP", "10:23", "10:46", 1, 3),
        ("NP", "10:46", "11:10", 1, 3),  # the remainder goes to the last
    ]


def test_equal_slots_capacity_one(world):
    ada = world.provider("P-1")
    world.shift(ada, 1, "09:00", "10:00", rules=[("09:00", "10:00", 1, "FU")])
    assert spans(world.windows(**DAY, calculation_method="equal_slots")) == [("09:00", "10:00")]
    world.appointment(ada, MON, "09:40", 20, code="FU")
    assert world.windows(**DAY, calculation_method="equal_slots") == []


def test_max_slot_duration_cuts_gaps_keeping_a_shorter_last_piece(world):
    ada = world.provider("P-1")
    world.shift(ada, 1, "09:00", "10:10")
    assert spans(world.windows(**DAY, max_slot_duration="30")) == [("09:00", "09:30"), ("09:30", "10:00"), ("10:00", "10:10")]


def test_max_slot_duration_bounds_equal_slots(world):
    ada = world.provider("P-1")
    world.shift(ada, 1, "09:00", "11:00", rules=[("09:00", "11:00", 2, "FU")])
    assert spans(world.windows(**DAY, calculation_method="equal_slots")) == [("09:00", "10:00"), ("10:00", "11:00")]
    assert spans(world.windows(**DAY, calculation_method="equal_slots", max_slot_duration="25")) == [
        ("09:00", "09:25"), ("09:25", "09:50"),  # 4 fit; the rule's capacity (2) keeps the earliest
    ]


# --- daily limit -----------------------------------------------------------------------------


def test_daily_limit_per_visit_type_for_slots(world):
    ada = world.provider("P-1")
    for dow in (1, 2):
        world.shift(ada, dow, "09:00", "12:00", rules=[("09:00", "10:00", 3, "FU"), ("10:00", "12:00", 2, "NP")])
    world.appointment(ada, MON, "09:00", 20, code="FU")
    world.appointment(ada, MON, "09:20", 20, code="FU")
    two_days = {"start_date": "2025-05-05", "end_date": "2025-05-06", "calculation_method": "slots"}
    limited = world.windows(**two_days, daily_appointment_limit="2", daily_limit_type="fu")
    assert [(w["date"], w["visit_type"]) for w in limited] == [("2025-05-05", "NP"), ("2025-05-06", "FU"), ("2025-05-06", "NP")]
    not_reached = world.windows(**two_days, daily_appointment_limit="3", daily_limit_type="FU")
    assert [(w["date"], w["visit_type"]) for w in not_reached][:2] == [("2025-05-05", "FU"), ("2025-05-05", "NP")]


def test_daily_limit_with_gaps_closes_the_whole_date(world):
    ada = world.provider("P-1")
    world.shift(ada, 1, "09:00", "12:00")
    world.shift(ada, 2, "09:00", "12:00")
    world.appointment(ada, MON, "09:00", 20, code="NP")
    two_days = {"start_date": "2025-05-05", "end_date": "2025-05-06"}
    assert [w["date"] for w in world.windows(**two_days, daily_appointment_limit="1", daily_limit_type="NP")] == ["2025-05-06"]
    assert [w["date"] for w in world.windows(**two_days, daily_appointment_limit="1", daily_limit_type="FU")] == [
        "2025-05-05", "2025-05-06"
    ]


# --- facilities ------------------------------------------------------------------------------


def test_facility_fields_and_location_filter(world):
    main, annex = world.location("LOC-1", "Main"), world.location("LOC-2", "Annex")
    ada = world.provider("P-1")
    world.shift(ada, 1, "08:00", "09:00")  # no facility
    world.shift(ada, 1, "09:00", "10:00", location=main)
    world.shift(ada, 1, "10:00", "11:00", location=annex)
    windows = world.windows(**DAY)
    assert [(w.get("facility_id"), w.get("facility_name")) for w in windows] == [(None, None), ("LOC-1", "Main"), ("LOC-2", "Annex")]
    assert "facility_id" not in windows[0]
    assert [w["facility_id"] for w in world.windows(**DAY, location_ids="LOC-2")] == ["LOC-2"]
    assert [w["facility_id"] for w in world.windows(**DAY, location_ids="LOC-1,LOC-2")] == ["LOC-1", "LOC-2"]


def test_facility_scoped_scheduling(world):
    main, annex = world.location("LOC-1", "Main"), world.location("LOC-2", "Annex")
    ada = world.provider("P-1")
    world.shift(ada, 1, "08:00", "09:00", rules=[("08:00", "09:00", 2, "FU")])  # no facility
    world.shift(ada, 1, "09:00", "10:00", location=main, rules=[("09:00", "10:00", 1, "FU")])
    world.appointment(ada, MON, "09:10", 20, code="FU", location=annex)  # at another facility
    # unscoped: the annex visit takes the Main rule's only place; the rule without facility stays
    assert [w.get("facility_id") for w in world.windows(**DAY, calculation_method="slots")] == [None]
    scoped = world.windows(**DAY, calculation_method="slots", facility_scoped_scheduling="true")
    assert [(w["facility_id"], w["available_appointments"]) for w in scoped] == [("LOC-1", 1)]
    # gaps still subtract every appointment: nobody is in two places at once
    assert spans(world.windows(**DAY, facility_scoped_scheduling="true")) == [("09:00", "09:10"), ("09:30", "10:00")]


# --- bounds ----------------------------------------------------------------------------------


def test_date_time_bounds_cut_the_windows(world):
    ada = world.provider("P-1")
    world.shift(ada, 1, "09:00", "17:00")
    windows = world.windows(start_date="2025-05-05T10:00:00-04:00", end_date="2025-05-05T12:00:00")  # no offset: the EMR's zone
    assert spans(windows) == [("10:00", "12:00")]


def test_thirty_one_days_are_allowed(world):
    ada = world.provider("P-1")
    world.shift(ada, 1, "09:00", "10:00")
    assert len(world.windows(start_date="2025-05-01", end_date="2025-05-31")) == 4
    response = world.get(start_date="2025-05-01", end_date="2025-06-01")
    assert response.status_code == 400 and response.json()["message"] == "Date range cannot exceed 31 days."


def test_other_organizations_providers_are_invisible(world):
    other = World(make_tenant("Other", timezone_name="America/New_York"))
    theirs = other.provider("P-X")
    other.shift(theirs, 1, "09:00", "17:00")
    ours = world.provider("P-1")
    world.shift(ours, 1, "09:00", "10:00")
    assert [w["provider_id"] for w in world.windows(**DAY)] == ["P-1"]
    assert world.windows(**DAY, provider_ids="P-X") == []
    assert world.windows(**DAY, provider_ids="P-X", fallback_to_default_hours="true") == []
    assert [w["provider_id"] for w in other.windows(**DAY)] == ["P-X"]


def test_location_id_must_be_an_ehr_id_of_a_facility_not_our_uuid(world):
    """Windows name facilities by EHR id (our id only for locations without one)."""
    site = Location.objects.create(organization=world.org, name="Own site", timezone="America/New_York")
    ada = world.provider("P-1")
    world.shift(ada, 1, "09:00", "10:00", location=site)
    assert [w["facility_id"] for w in world.windows(**DAY)] == [str(site.pk)]
    assert len(world.windows(**DAY, location_ids=str(site.pk))) == 1


# --- validation ------------------------------------------------------------------------------

INVALID = [
    ({"start_date": None}, "Missing required parameters: start_date."),
    ({"start_date": None, "end_date": None}, "Missing required parameters: start_date, end_date."),
    ({"start_date": "2025-13-01"}, "Invalid date format. Use ISO format (YYYY-MM-DD)."),
    ({"end_date": "tomorrow"}, "Invalid date format. Use ISO format (YYYY-MM-DD)."),
    ({"end_date": "2025-05-04"}, "end_date must be after start_date."),
    ({"end_date": "2025-06-30"}, "Date range cannot exceed 31 days."),
    ({"provider_type": "tertiary"}, "Invalid provider_type. Use one of: primary, secondary."),
    ({"fallback_to_default_hours": "yes"}, "Invalid fallback_to_default_hours: must be true or false."),
    ({"calculation_method": "blocks"}, "Invalid calculation_method. Use one of: gaps, slots, equal_slots."),
    ({"buffer": "60"}, "Invalid buffer: must be at most 59 minutes."),
    ({"buffer": "-1"}, "Invalid buffer: must be at least 0 minutes."),
    ({"buffer": "ten"}, "Invalid buffer: must be an integer."),
    ({"visit_type": "XYZ"}, "Invalid visit_type: 'XYZ' is not a visit type (use all or a visit-type code of GET /v1/settings)."),
    ({"daily_appointment_limit": "0", "daily_limit_type": "FU"}, "Invalid daily_appointment_limit: must be at least 1."),
    ({"daily_appointment_limit": "2"}, "Invalid daily_appointment_limit: requires daily_limit_type."),
    ({"daily_limit_type": "FU"}, "Invalid daily_limit_type: requires daily_appointment_limit."),
    ({"daily_appointment_limit": "2", "daily_limit_type": "all"},
     "Invalid daily_limit_type: 'all' is not a visit type (use a visit-type code of GET /v1/settings)."),
    ({"max_slot_duration": "7"}, "Invalid max_slot_duration: must be a multiple of 5 minutes."),
    ({"max_slot_duration": "65"}, "Invalid max_slot_duration: must be at most 60 minutes."),
    ({"max_slot_duration": "0"}, "Invalid max_slot_duration: must be at least 5 minutes."),
    ({"facility_scoped_scheduling": "maybe"}, "Invalid facility_scoped_scheduling: must be true or false."),
    ({"provider_ids": ",".join(f"P{i}" for i in range(101))}, "Invalid provider_ids: at most 100 providers."),
    ({"location_ids": "x" * 129}, "Invalid location_ids: at most 128 characters."),
    ({"provider": "P-1"}, "Unknown parameter: provider."),
    ({"buffer": ["5", "10"]}, "Parameter buffer may be given only once."),
]


@pytest.mark.parametrize("change,message", INVALID, ids=[m for _, m in INVALID])
def test_every_invalid_parameter_is_a_400_naming_it(world, change, message):
    world.provider("P-1")
    response = world.get(**{**DAY, **change})
    assert response.status_code == 400, response.content
    assert response.json() == {"success": False, "message": message}


def test_every_parameter_has_an_invalid_row():
    from emr.api.availability import V1AvailabilityQuery

    named = {name for change, _ in INVALID for name in change}
    assert set(V1AvailabilityQuery().fields) - named == set()
