"""``GET /v3/availability`` through the API: parameters, validation, loading, rule 12 caching."""

from __future__ import annotations

import math
import time as wall
from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone as dj_timezone

from booking import models as b
from booking.availability import engine, wallclock
from booking.availability.loader import LOADER_QUERIES, availability_inputs_load
from booking.services.appointments import appointment_book
from tenants.errors import NotFound
from tenants.models import Organization
from tests.booking.conftest import MONDAY, MONDAY_DATE, YEAR, iso_day, utc

UTC = UTC


def get(clinic, **params):
    response = clinic.tenant.v3().get("/v3/availability", clinic.params(**params))
    return response


def ok(clinic, **params) -> dict:
    response = get(clinic, **params)
    assert response.status_code == 200, response.content
    return response.json()


def times(body) -> list[str]:
    return [slot["start_time"] for slot in body["availableTimes"]]


# --- the answer ------------------------------------------------------------------------------


def test_answer_shape_and_values(clinic):
    adams, baker = clinic.resources
    body = ok(clinic, roundRobin="NONE")
    assert list(body) == ["ServiceId", "availableTimes", "availableDays"]
    assert body["ServiceId"] == str(clinic.service.pk)
    assert body["availableTimes"][0] == {
        "start_time": f"{MONDAY}T09:00:00-05:00",
        "end_time": f"{MONDAY}T09:30:00-05:00",
        "LocationId": str(clinic.location.pk),
        "ResourceIds": [str(adams.pk), str(baker.pk)],
    }
    assert len(body["availableTimes"]) == 16 and times(body)[-1] == f"{MONDAY}T16:30:00-05:00"
    assert list(body["availableDays"]) == [MONDAY]
    assert body["availableDays"][MONDAY][0] == {k: v for k, v in body["availableTimes"][0].items() if k != "LocationId"}


def test_default_timezone_is_utc_and_days_are_local(clinic):
    body = ok(clinic, timezone=None, endDate=iso_day(1), roundRobin="NONE")
    assert times(body)[0] == f"{MONDAY}T14:00:00+00:00"
    assert list(body["availableDays"]) == [MONDAY, iso_day(1)]


def test_instant_parameters_and_clipping(clinic):
    body = ok(clinic, startDate=f"{MONDAY}T10:10:00-05:00", endDate=f"{MONDAY}T11:00:00-05:00", roundRobin="NONE")
    assert times(body) == [f"{MONDAY}T10:30:00-05:00", f"{MONDAY}T11:00:00-05:00"]


def test_unencoded_plus_in_an_offset_is_understood(clinic):
    body = ok(clinic, startDate=f"{MONDAY}T15:00:00 00:00", endDate=f"{MONDAY}T15:30:00 00:00", roundRobin="NONE")
    assert times(body) == [f"{MONDAY}T10:00:00-05:00", f"{MONDAY}T10:30:00-05:00"]


def test_empty_days_are_present(clinic):
    body = ok(clinic, startDate=iso_day(-2), endDate=MONDAY)
    assert body["availableDays"][iso_day(-2)] == [] and body["availableDays"][iso_day(-1)] == []
    assert body["availableDays"][MONDAY]


def test_unlinked_and_inactive_resources(clinic):
    clinic.add_resource("Unlinked", link=False)
    clinic.add_resource("Inactive", status="inactive")
    clinic.add_resource("Hidden", hide_in_availability=True)
    body = ok(clinic, roundRobin="NONE")
    assert set(body["availableTimes"][0]["ResourceIds"]) == {str(r.pk) for r in clinic.resources[:2]}
    hidden = clinic.resources[4]
    body = ok(clinic, roundRobin="NONE", ResourceIds=[str(hidden.pk)])
    assert body["availableTimes"][0]["ResourceIds"] == [str(hidden.pk)]  # named explicitly: it can be booked
    inactive = clinic.resources[3]
    assert ok(clinic, ResourceIds=[str(inactive.pk)])["availableTimes"] == []


def test_resource_ids_repeated_parameter(clinic):
    adams, baker = clinic.resources
    body = ok(clinic, roundRobin="NONE", ResourceIds=[str(baker.pk)])
    assert {tuple(s["ResourceIds"]) for s in body["availableTimes"]} == {(str(baker.pk),)}


def test_round_robin_random_and_balanced_give_one_resource(clinic):
    for mode in ("RANDOM", "BALANCED"):
        body = ok(clinic, roundRobin=mode)
        assert all(len(s["ResourceIds"]) == 1 for s in body["availableTimes"])
        assert len({s["ResourceIds"][0] for s in body["availableTimes"]}) == 2


def test_balanced_prefers_the_resource_with_fewer_appointments(clinic):
    adams, baker = clinic.resources
    for hour in (9, 10):
        b.AppointmentResource.objects.create(
            appointment=b.Appointment.objects.create(
                organization=clinic.organization, start=utc(hour + 5),
                end=utc(hour + 5, 30), service=clinic.service, location=clinic.location,
            ),
            resource=adams,
        )
    body = ok(clinic, roundRobin="BALANCED")
    assert {s["ResourceIds"][0] for s in body["availableTimes"]} == {str(baker.pk)}


def test_balanced_counts_only_active_appointments_starting_in_the_request_window(clinic):
    adams, baker = clinic.resources

    def appointment(resource, start, **fields):
        made = b.Appointment.objects.create(organization=clinic.organization, start=start, end=start + timedelta(minutes=30),
                                            service=clinic.service, location=clinic.location, **fields)
        b.AppointmentResource.objects.create(appointment=made, resource=resource)

    appointment(adams, utc(15))  # Adams: one that counts
    # Baker: none that counts. The day before and the day after, a cancelled one, an expired hold.
    appointment(baker, utc(15, days=-1))
    appointment(baker, utc(15, days=1))
    appointment(baker, utc(16), status="CN")
    appointment(baker, utc(17), status="IN", expires_at=dj_timezone.now() - timedelta(minutes=1))
    body = ok(clinic, roundRobin="BALANCED")
    assert len(body["availableTimes"]) == 16
    assert {s["ResourceIds"][0] for s in body["availableTimes"]} == {str(baker.pk)}


def test_same_query_same_answer(clinic):
    first = get(clinic, roundRobin="RANDOM").content
    Organization.objects.filter(pk=clinic.organization.pk).update(availability_version=99)
    again = get(clinic, roundRobin="RANDOM")
    assert again["X-Cache"] == "MISS" and again.content == first  # recomputed, same random choices


def test_combined_lists_the_whole_set(clinic):
    adams, baker = clinic.resources
    b.Block.objects.create(
        organization=clinic.organization, resource=baker,
        start=utc(14), end=utc(20),
    )
    body = ok(clinic, roundRobin="COMBINED", ResourceIds=[str(adams.pk), str(baker.pk)])
    assert times(body) == [f"{MONDAY}T15:00:00-05:00", f"{MONDAY}T15:30:00-05:00", f"{MONDAY}T16:00:00-05:00", f"{MONDAY}T16:30:00-05:00"]
    assert body["availableTimes"][0]["ResourceIds"] == [str(adams.pk), str(baker.pk)]


def test_combined_grid_starts_where_all_of_them_are_open(clinic):
    doctor = clinic.add_resource("Doctor", hours=((1,), "09:00", "12:00"))
    room = clinic.add_resource("Room", hours=((1,), "09:10", "12:00"))
    body = ok(clinic, roundRobin="COMBINED", ResourceIds=[str(room.pk), str(doctor.pk)])
    assert times(body) == [f"{MONDAY}T{hm}:00-05:00" for hm in ("09:10", "09:40", "10:10", "10:40", "11:10")]
    assert all(s["ResourceIds"] == [str(doctor.pk), str(room.pk)] for s in body["availableTimes"])


def test_first_available(clinic):
    body = ok(clinic, startDate=iso_day(-2), endDate=iso_day(2), firstAvailable="true")
    assert times(body) == [f"{MONDAY}T09:00:00-05:00"]
    assert list(body["availableDays"]) == [iso_day(-2), iso_day(-1), MONDAY, iso_day(1), iso_day(2)]
    assert sum(len(v) for v in body["availableDays"].values()) == 1


def test_override_duration_and_interval(clinic):
    clinic.service.duration_select, clinic.service.duration_interval = True, 15
    clinic.service.duration_min, clinic.service.duration_max = 15, 90
    clinic.service.save()
    body = ok(clinic, overrideDuration="90", interval="120", roundRobin="NONE")
    assert times(body) == [f"{MONDAY}T{h:02d}:00:00-05:00" for h in (9, 11, 13, 15)]
    assert body["availableTimes"][0]["end_time"] == f"{MONDAY}T10:30:00-05:00"


def test_service_booking_interval_and_padding(clinic):
    clinic.service.booking_interval, clinic.service.padding = 60, 15
    clinic.service.save()
    body = ok(clinic, roundRobin="NONE")
    assert times(body)[-1] == f"{MONDAY}T16:00:00-05:00" and len(body["availableTimes"]) == 8


def test_allow_padding_overflow(clinic):
    clinic.service.padding = 15
    clinic.service.save()
    assert times(ok(clinic, roundRobin="NONE"))[-1] == f"{MONDAY}T16:00:00-05:00"
    assert times(ok(clinic, roundRobin="NONE", allowPaddingOverflow="true"))[-1] == f"{MONDAY}T16:30:00-05:00"


def test_past_slots_are_not_listed(clinic):
    today = dj_timezone.now().astimezone(wallclock.zone_get("America/New_York")).date()
    resource = clinic.resources[0]
    b.Allocation.objects.create(
        organization=clinic.organization, resource=resource,
        start=dj_timezone.now() - timedelta(hours=3), end=dj_timezone.now() + timedelta(hours=3),
    )
    clinic.location.weekly_availability = []
    clinic.location.save()
    body = ok(clinic, startDate=(today - timedelta(days=1)).isoformat(), endDate=(today + timedelta(days=1)).isoformat(),
              ResourceIds=[str(resource.pk)])
    now = dj_timezone.now()
    assert body["availableTimes"]
    assert all(datetime.fromisoformat(s) >= now - timedelta(seconds=1) for s in times(body))


# --- data-model details reaching the engine ------------------------------------------------------


def test_resource_zone_defaults_to_its_first_linked_location(clinic):
    resource = clinic.resources[0]
    chicago = b.Location.objects.create(organization=clinic.organization, name="Chicago", timezone="America/Chicago")
    # A later link elsewhere does not change it: the first link (New York) decides.
    b.ResourceService.objects.create(organization=clinic.organization, resource=resource, service=clinic.service, location=chicago)
    body = ok(clinic, ResourceIds=[str(resource.pk)], roundRobin="NONE")
    assert times(body)[0] == f"{MONDAY}T09:00:00-05:00"
    # At the Chicago location the same New York hours read 08:00-16:00 Chicago time.
    response = clinic.tenant.v3().get(
        "/v3/availability",
        clinic.params(LocationId=str(chicago.pk), ResourceIds=[str(resource.pk)], timezone="America/Chicago", roundRobin="NONE"),
    )
    assert times(response.json())[0] == f"{MONDAY}T08:00:00-06:00"
    resource.timezone = "America/Chicago"  # its own zone wins
    resource.save()
    Organization.objects.filter(pk=clinic.organization.pk).update(availability_version=7)
    assert times(ok(clinic, ResourceIds=[str(resource.pk)], roundRobin="NONE"))[0] == f"{MONDAY}T10:00:00-05:00"


def test_shift_scoped_to_another_location_does_not_apply(clinic):
    elsewhere = b.Location.objects.create(organization=clinic.organization, name="Elsewhere", timezone="UTC")
    resource = clinic.add_resource("Dr. Cole", hours=((), "09:00", "17:00"))
    b.Shift.objects.create(organization=clinic.organization, resource=resource, location=elsewhere, day_of_week=1,
                           start_time=time(9), end_time=time(12))
    b.Shift.objects.create(organization=clinic.organization, resource=resource, location=clinic.location, day_of_week=1,
                           start_time=time(14), end_time=time(15))
    assert times(ok(clinic, ResourceIds=[str(resource.pk)], roundRobin="NONE")) == [
        f"{MONDAY}T14:00:00-05:00", f"{MONDAY}T14:30:00-05:00",
    ]


@pytest.mark.parametrize("opened_by", ["shifts", "allocation"])
@pytest.mark.parametrize("ended_by", ["block", "appointment"])
def test_grid_of_a_window_open_for_days_starts_where_it_began(clinic, opened_by, ended_by):
    # Open for days on end (weekly hours touching across every midnight, or one long allocation);
    # a block or an appointment five days earlier ends at 10:20, and the open window running from
    # there through Monday is gridded from 10:20 (rule 7), whichever days are asked for.
    clinic.location.weekly_availability = []
    clinic.location.save()
    new_york = wallclock.zone_get("America/New_York")
    wednesday = MONDAY_DATE - timedelta(days=5)
    if opened_by == "shifts":
        room = clinic.add_resource("Room", hours=(range(7), "00:00", "24:00"))
    else:
        room = clinic.add_resource("Room", hours=((), "00:00", "24:00"))
        b.Allocation.objects.create(organization=clinic.organization, resource=room,
                                    start=datetime.combine(wednesday, time(0), new_york), end=utc(days=2))
    start, end = datetime.combine(wednesday, time(10), new_york), datetime.combine(wednesday, time(10, 20), new_york)
    if ended_by == "block":
        b.Block.objects.create(organization=clinic.organization, resource=room, start=start, end=end)
    else:
        appointment = b.Appointment.objects.create(organization=clinic.organization, start=start, end=end,
                                                   service=clinic.service, location=clinic.location)
        b.AppointmentResource.objects.create(appointment=appointment, resource=room)
    params = dict(ResourceIds=[str(room.pk)], roundRobin="NONE")
    alone = times(ok(clinic, **params))
    assert alone[:3] == [f"{MONDAY}T00:20:00-05:00", f"{MONDAY}T00:50:00-05:00", f"{MONDAY}T01:20:00-05:00"]
    assert [s for s in times(ok(clinic, startDate=iso_day(-1), **params)) if s.startswith(MONDAY)] == alone


def test_allocation_at_another_location_does_not_open_this_one(clinic):
    elsewhere = b.Location.objects.create(organization=clinic.organization, name="Elsewhere", timezone="America/New_York")
    cole = clinic.add_resource("Dr. Cole", hours=((), "09:00", "17:00"))
    for location, hour in ((elsewhere, 15), (clinic.location, 17), (None, 19)):  # 10:00, 12:00, 14:00 in New York
        b.Allocation.objects.create(organization=clinic.organization, resource=cole, location=location,
                                    start=utc(hour), end=utc(hour + 1))
    assert times(ok(clinic, ResourceIds=[str(cole.pk)], roundRobin="NONE")) == [
        f"{MONDAY}T12:00:00-05:00", f"{MONDAY}T12:30:00-05:00", f"{MONDAY}T14:00:00-05:00", f"{MONDAY}T14:30:00-05:00",
    ]


def test_date_only_end_date_is_the_last_second_of_that_day(clinic):
    clinic.location.weekly_availability = []
    clinic.location.save()
    night = clinic.add_resource("Night", hours=((), "09:00", "17:00"))
    # 23:00 on Monday to 01:00 on Tuesday, New York.
    b.Allocation.objects.create(organization=clinic.organization, resource=night, start=utc(4, days=1), end=utc(6, days=1))
    body = ok(clinic, ResourceIds=[str(night.pk)], roundRobin="NONE")  # startDate = endDate = Monday
    assert times(body) == [f"{MONDAY}T23:00:00-05:00", f"{MONDAY}T23:30:00-05:00"]  # not Tuesday 00:00


def test_recurring_blocks_are_read_in_their_scope_zone(clinic):
    # A Chicago resource working 08:00-16:00 Chicago = 09:00-17:00 New York.
    resource = clinic.add_resource("Dr. Chicago", hours=((1,), "08:00", "16:00"), timezone="America/Chicago")
    # Resource-scoped, no zone: Chicago 08:00-09:00 = 09:00-10:00 New York.
    b.RecurringBlock.objects.create(organization=clinic.organization, resource=resource, frequency="DAILY",
                                    start_date=MONDAY_DATE - timedelta(days=5), start_time=time(8), end_time=time(9))
    # Service-scoped: the requested location's zone (New York) 12:00-13:00.
    b.RecurringBlock.objects.create(organization=clinic.organization, service=clinic.service, frequency="DAILY",
                                    start_date=MONDAY_DATE - timedelta(days=5), start_time=time(12), end_time=time(13))
    # Its own zone: UTC 21:00-22:00 = 16:00-17:00 New York.
    b.RecurringBlock.objects.create(organization=clinic.organization, location=clinic.location, frequency="WEEKLY",
                                    weekdays=[1], timezone="UTC", start_date=MONDAY_DATE - timedelta(days=5), start_time=time(21), end_time=time(22))
    body = ok(clinic, ResourceIds=[str(resource.pk)], roundRobin="NONE")
    hours = {s[11:16] for s in times(body)}
    assert {"09:00", "09:30", "12:00", "12:30", "16:00", "16:30"}.isdisjoint(hours)
    assert {"10:00", "11:30", "13:00", "15:30"} <= hours


def test_appointments_of_other_services_and_emr_block_the_resource(clinic):
    adams = clinic.resources[0]
    other = b.Service.objects.create(organization=clinic.organization, name="Long", duration=60, padding=30)
    appt = b.Appointment.objects.create(organization=clinic.organization, start=utc(14),
                                        end=utc(15), service=other)
    b.AppointmentResource.objects.create(appointment=appt, resource=adams)
    emr = b.Appointment.objects.create(organization=clinic.organization, start=utc(17),
                                       end=utc(17, 30), source="emr")
    b.AppointmentResource.objects.create(appointment=emr, resource=adams)
    body = ok(clinic, ResourceIds=[str(adams.pk)], roundRobin="NONE")
    hours = [s[11:16] for s in times(body)]
    assert hours[:6] == ["10:30", "11:00", "11:30", "12:30", "13:00", "13:30"]  # free from 10:30 (padding), 12:00 EMR


def test_emr_appointment_without_service_has_no_padding_even_when_the_asked_service_has(clinic):
    adams = clinic.resources[0]
    clinic.service.padding = 15
    clinic.service.save()
    emr = b.Appointment.objects.create(organization=clinic.organization, start=utc(14), end=utc(14, 30), source="emr")
    b.AppointmentResource.objects.create(appointment=emr, resource=adams)
    body = ok(clinic, ResourceIds=[str(adams.pk)], roundRobin="NONE")
    assert times(body)[0] == f"{MONDAY}T09:30:00-05:00"  # right at its end, not 15 minutes later


def test_loader_query_count_is_fixed(clinic, django_assert_num_queries):
    org = clinic.organization

    def load(resources: int, span_days: int):
        while len(clinic.resources) < resources:
            r = clinic.add_resource(f"Extra {len(clinic.resources)}")
            b.Block.objects.create(organization=org, resource=r, start=utc(15),
                                   end=utc(16))
            b.RecurringBlock.objects.create(organization=org, resource=r, frequency="DAILY", start_date=MONDAY_DATE - timedelta(days=5),
                                            start_time=time(12), end_time=time(13))
            b.Allocation.objects.create(organization=org, resource=r, start=utc(2, days=1),
                                        end=utc(3, days=1))
            appt = b.Appointment.objects.create(organization=org, start=utc(18),
                                                end=utc(19), service=clinic.service)
            b.AppointmentResource.objects.create(appointment=appt, resource=r)
        query = engine.Query(
            start=utc(), end=utc() + timedelta(days=span_days),
            now=dj_timezone.now(),
        )
        with django_assert_num_queries(LOADER_QUERIES):
            inputs = availability_inputs_load(organization=org, location=clinic.location, service=clinic.service, query=query)
        return inputs

    small = load(2, 1)
    large = load(12, 28)
    assert len(small.resources) == 2 and len(large.resources) == 12
    assert all(r.appointments and r.blocks and r.recurring_blocks and r.allocations for r in large.resources[2:])


def test_request_query_count_does_not_grow(clinic):
    def count(**params):
        with CaptureQueriesContext(connection) as ctx:
            assert get(clinic, **params).status_code == 200
        return len(ctx.captured_queries)

    get(clinic)  # the credential's last-use stamp is written on the first request
    few = count(roundRobin="NONE")
    for i in range(8):
        clinic.add_resource(f"More {i}")
    assert count(roundRobin="NONE", endDate=iso_day(25)) == few


# --- validation ----------------------------------------------------------------------------------

VALIDATION = [
    ({"startDate": None}, "startDate"),
    ({"endDate": None}, "endDate"),
    ({"LocationId": None}, "LocationId"),
    ({"ServiceId": None}, "ServiceId"),
    ({"startDate": f"{YEAR}-13-01"}, "startDate"),
    ({"startDate": "tomorrow"}, "startDate"),
    ({"startDate": f"{MONDAY}T09:00:00"}, "startDate"),  # no offset
    ({"endDate": f"06/01/{YEAR}"}, "endDate"),
    ({"endDate": "9999-01-01"}, "endDate"),
    ({"startDate": iso_day(1), "endDate": MONDAY}, "endDate"),
    ({"startDate": iso_day(-5), "endDate": iso_day(26)}, "endDate"),  # 32 calendar days
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"interval": "0"}, "interval"),
    ({"interval": "-5"}, "interval"),
    ({"interval": "abc"}, "interval"),
    ({"interval": "99999999999999"}, "interval"),
    ({"overrideDuration": "0"}, "overrideDuration"),
    ({"overrideDuration": "1.5"}, "overrideDuration"),
    ({"interval": "\uff13\uff10"}, "interval"),  # fullwidth digits
    ({"roundRobin": "SOMETIMES"}, "roundRobin"),
    ({"firstAvailable": "maybe"}, "firstAvailable"),
    ({"syncExternal": "yes please"}, "syncExternal"),
    ({"allowPaddingOverflow": "2"}, "allowPaddingOverflow"),
    ({"LocationId": "not-a-uuid"}, "LocationId"),
    ({"ServiceId": "12"}, "ServiceId"),
    ({"ResourceIds": ["nope"]}, "ResourceIds"),
    ({"roundRobin": "COMBINED"}, "ResourceIds"),
    ({"ResourceIds": ["00000000-0000-0000-0000-000000000001"]}, "ResourceIds"),  # not linked (unknown)
    ({"overrideDuration": "45"}, "overrideDuration"),  # durationSelect is false
]


@pytest.mark.parametrize("change,field", VALIDATION, ids=[f"{f}:{c}" for c, f in VALIDATION])
def test_validation(clinic, change, field):
    response = get(clinic, **change)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["statusCode"] == 400 and body["name"] == "BadRequestError"
    assert field in {e["field"] for e in body["errors"]}, body


def test_exactly_31_days_is_allowed(clinic):
    assert len(ok(clinic, startDate=iso_day(-5), endDate=iso_day(25))["availableDays"]) == 31


def test_override_duration_service_rules(clinic):
    clinic.service.duration_select, clinic.service.duration_interval = True, 15
    clinic.service.duration_min, clinic.service.duration_max = 30, 60
    clinic.service.save()
    for value, expected in (("45", 200), ("40", 400), ("75", 400), ("15", 400)):
        response = get(clinic, overrideDuration=value)
        assert response.status_code == expected, (value, response.content)
        if expected == 400:
            assert response.json()["errors"][0]["field"] == "overrideDuration"


def test_combined_from_the_service_default_needs_resource_ids(clinic):
    clinic.service.round_robin = "COMBINED"
    clinic.service.save()
    response = get(clinic)
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "ResourceIds"


def test_resource_of_another_location_is_not_linked(clinic):
    other_location = b.Location.objects.create(organization=clinic.organization, name="B", timezone="UTC")
    stranger = clinic.add_resource("Elsewhere", link=False)
    b.ResourceService.objects.create(organization=clinic.organization, resource=stranger, service=clinic.service, location=other_location)
    response = get(clinic, ResourceIds=[str(stranger.pk)])
    assert response.status_code == 400 and str(stranger.pk) in response.json()["errors"][0]["message"]


def test_unknown_or_other_tenant_location_and_service_are_404(clinic, other_clinic):
    for change in (
        {"LocationId": str(other_clinic.location.pk)},
        {"ServiceId": str(other_clinic.service.pk)},
        {"LocationId": "00000000-0000-0000-0000-000000000000"},
        {"ServiceId": "00000000-0000-0000-0000-000000000000"},
    ):
        response = get(clinic, **change)
        assert response.status_code == 404, change
        body = response.json()
        assert set(body) == {"statusCode", "name", "message", "errors"}, body
        assert body["statusCode"] == 404 and body["name"] == "NotFoundError" and body["message"]
        assert isinstance(body["errors"], list)


def test_other_tenant_resource_is_not_linked(clinic, other_clinic):
    response = get(clinic, ResourceIds=[str(other_clinic.resources[0].pk)])
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "ResourceIds"


# --- rule 12: caching ----------------------------------------------------------------------------


def test_second_identical_query_is_a_hit_with_no_query_beyond_authentication(clinic):
    first = get(clinic, roundRobin="NONE")
    assert first["X-Cache"] == "MISS"
    with CaptureQueriesContext(connection) as ctx:
        second = get(clinic, roundRobin="NONE")
    assert second["X-Cache"] == "HIT" and second.content == first.content
    assert all("booking_" not in q["sql"] for q in ctx.captured_queries)  # only the credential lookup


def test_normalized_query_shares_the_cache(clinic):
    adams, baker = clinic.resources
    get(clinic, roundRobin="NONE", ResourceIds=[str(adams.pk), str(baker.pk)])
    again = get(clinic, roundRobin="none", ResourceIds=[str(baker.pk), str(adams.pk), str(adams.pk)])
    assert again["X-Cache"] == "HIT"
    # The same instants spelled differently are the same query.
    get(clinic, roundRobin="NONE", startDate=f"{MONDAY}T14:00:00Z", endDate=f"{MONDAY}T15:00:00Z")
    assert get(clinic, roundRobin="NONE", startDate=f"{MONDAY}T09:00:00-05:00", endDate=f"{MONDAY}T10:00:00-05:00")["X-Cache"] == "HIT"


def _new_version(clinic) -> None:
    """Make the cached answers unreachable, as a write would (without changing any data)."""
    Organization.objects.filter(pk=clinic.organization.pk).update(availability_version=F("availability_version") + 1)


@pytest.mark.parametrize("service_mode,spelled", [
    (None, {"roundRobin": "RANDOM", "interval": "30"}),  # the service leaves both to the defaults: RANDOM, every D
    ("BALANCED", {"roundRobin": "BALANCED", "interval": "60"}),  # the service's own mode and bookingInterval
])
def test_omitted_parameters_and_their_effective_values_are_one_query(clinic, service_mode, spelled):
    clinic.service.round_robin = service_mode
    clinic.service.booking_interval = 60 if service_mode else None
    clinic.service.save()
    fresh = []
    for params in ({}, spelled):
        _new_version(clinic)
        response = get(clinic, **params)
        assert response["X-Cache"] == "MISS"
        fresh.append(response.content)
    assert fresh[0] == fresh[1]  # the same random choices: the seed is the effective query's
    _new_version(clinic)
    assert get(clinic)["X-Cache"] == "MISS"
    shared = get(clinic, **spelled)
    assert shared["X-Cache"] == "HIT" and shared.content == fresh[0]  # and the same cache entry


def test_an_invalid_override_is_refused_even_when_its_effective_query_is_cached(clinic):
    # durationSelect is false: overrideDuration=30 is refused, though it names the duration the
    # cached plain query has in effect.
    assert get(clinic)["X-Cache"] == "MISS" and get(clinic)["X-Cache"] == "HIT"
    response = get(clinic, overrideDuration="30")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "overrideDuration"


def test_a_service_edit_changes_the_effective_mode_of_the_next_answer(clinic):
    body = ok(clinic)  # RANDOM by default: one resource per slot
    assert all(len(s["ResourceIds"]) == 1 for s in body["availableTimes"])
    response = clinic.tenant.v3().patch(f"/v3/services/{clinic.service.pk}", {"roundRobin": "NONE"}, format="json")
    assert response.status_code == 200, response.content
    after = get(clinic)
    assert after["X-Cache"] == "MISS"
    assert all(len(s["ResourceIds"]) == 2 for s in after.json()["availableTimes"])


def test_a_booking_is_never_offered_again(clinic):
    adams, baker = clinic.resources
    before = ok(clinic, roundRobin="NONE", ResourceIds=[str(adams.pk)])
    assert f"{MONDAY}T09:00:00-05:00" in times(before)
    appointment_book(organization=clinic.organization, service=clinic.service, location=clinic.location,
                     start=utc(14), resource_ids=[str(adams.pk)])
    after = get(clinic, roundRobin="NONE", ResourceIds=[str(adams.pk)])
    assert after["X-Cache"] == "MISS" and f"{MONDAY}T09:00:00-05:00" not in times(after.json())


def test_an_api_write_invalidates(clinic):
    api = clinic.tenant.v3()
    get(clinic, roundRobin="NONE")
    response = api.post("/v3/blocks", {"ResourceId": str(clinic.resources[0].pk), "startDate": f"{MONDAY}T09:00:00-05:00",
                                       "endDate": f"{MONDAY}T10:00:00-05:00"}, format="json")
    assert response.status_code == 201
    after = get(clinic, roundRobin="NONE")
    assert after["X-Cache"] == "MISS"
    assert after.json()["availableTimes"][0]["ResourceIds"] == [str(clinic.resources[1].pk)]


def _each_slot_under_its_local_day(body) -> None:
    listed = [{k: v for k, v in slot.items() if k != "LocationId"} for slot in body["availableTimes"]]
    assert [slot for slots in body["availableDays"].values() for slot in slots] == listed
    for slot in listed:
        assert slot in body["availableDays"][slot["start_time"][:10]]


def test_cached_answer_drops_slots_that_have_passed(clinic):
    resource = clinic.resources[0]
    # Only the allocation below is open: the fixture's weekday hours would add slots whenever the
    # test runs during New York office hours.
    b.Shift.objects.filter(resource=resource).delete()
    clinic.location.weekly_availability = []
    clinic.location.save()
    clinic.service.duration = 2
    clinic.service.save()
    start = math.ceil(wall.time()) + 2
    slots = [start + 120 * k for k in range(5)]  # five 2-minute slots, starting in about 2 seconds
    b.Allocation.objects.create(organization=clinic.organization, resource=resource,
                                start=datetime.fromtimestamp(start, UTC), end=datetime.fromtimestamp(slots[-1] + 120, UTC))
    first_day = datetime.fromtimestamp(start, UTC).date()  # the slots may run into the next UTC day
    params = dict(timezone="UTC", startDate=first_day.isoformat(), endDate=(first_day + timedelta(days=1)).isoformat(),
                  ResourceIds=[str(resource.pk)], roundRobin="NONE")

    def rendered(after: float) -> list[str]:
        return [datetime.fromtimestamp(s, UTC).isoformat() for s in slots if s >= math.ceil(after)]

    asked = wall.time()
    first = get(clinic, **params)
    answered = wall.time()
    assert first["X-Cache"] == "MISS"
    listed = times(first.json())
    # Computed at some moment between asking and the answer: the slots not begun by then (all
    # five unless the request was slow).
    assert listed in (rendered(asked), rendered(answered)) and len(listed) >= 2
    _each_slot_under_its_local_day(first.json())

    # Once the first listed slot has begun (the next one is two minutes later), the cached answer
    # is served without it.
    wall.sleep(max(0.0, datetime.fromisoformat(listed[0]).timestamp() + 0.5 - wall.time()))
    second = get(clinic, **params)
    assert second["X-Cache"] == "HIT"
    assert times(second.json()) == listed[1:]
    _each_slot_under_its_local_day(second.json())


def test_cache_lives_no_longer_than_the_next_hold(clinic):
    adams = clinic.resources[0]
    expires = dj_timezone.now() + timedelta(seconds=4.5)
    hold = b.Appointment.objects.create(
        organization=clinic.organization, status="IN", start=utc(14), end=utc(14, 30), expires_at=expires,
        service=clinic.service, location=clinic.location,
    )
    b.AppointmentResource.objects.create(appointment=hold, resource=adams)
    params = dict(roundRobin="NONE", ResourceIds=[str(adams.pk)])
    first = get(clinic, **params)
    assert first["X-Cache"] == "MISS" and f"{MONDAY}T09:00:00-05:00" not in times(first.json())
    assert get(clinic, **params)["X-Cache"] == "HIT"
    # Right after the hold lapses (not a second later) the answer is recomputed, with the time free.
    wall.sleep(max(0.0, expires.timestamp() + 0.05 - wall.time()))
    after = get(clinic, **params)
    assert after["X-Cache"] == "MISS" and f"{MONDAY}T09:00:00-05:00" in times(after.json())


def test_errors_are_not_cached_and_other_tenants_never_share(clinic, other_clinic):
    for _ in range(2):
        refused = get(clinic, interval="0")
        assert refused.status_code == 400 and "X-Cache" not in refused
    # Refused for what the data says, then asked again once the data allows it. The link is
    # written without invalidating anything, so a cached refusal would still be served.
    cole = clinic.add_resource("Dr. Cole", link=False)
    params = dict(ResourceIds=[str(cole.pk)], roundRobin="NONE")
    for _ in range(2):
        refused = get(clinic, **params)
        assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "ResourceIds"
    b.ResourceService.objects.create(organization=clinic.organization, resource=cole, service=clinic.service,
                                     location=clinic.location)
    allowed = get(clinic, **params)
    assert allowed.status_code == 200 and allowed["X-Cache"] == "MISS"
    assert times(allowed.json())[0] == f"{MONDAY}T09:00:00-05:00"
    mine = get(clinic, roundRobin="NONE")
    theirs = other_clinic.tenant.v3().get(
        "/v3/availability", clinic.params(roundRobin="NONE")
    )
    assert mine["X-Cache"] == "MISS" and theirs.status_code == 404


# --- explain -------------------------------------------------------------------------------------


def explain(clinic, resource, when: str, **extra):
    params = {"LocationId": str(clinic.location.pk), "ServiceId": str(clinic.service.pk), "ResourceId": str(resource.pk),
              "time": when, **extra}
    return clinic.tenant.v3().get("/v3/availability/explain", params)


def test_explain_answers_with_the_objects_behind_each_reason(clinic):
    adams, baker = clinic.resources
    appointment_book(organization=clinic.organization, service=clinic.service, location=clinic.location,
                     start=utc(14), resource_ids=[str(adams.pk)])
    booked = b.Appointment.objects.get()
    block = b.Block.objects.create(organization=clinic.organization, location=clinic.location,
                                   start=utc(16), end=utc(17))
    response = explain(clinic, adams, f"{MONDAY}T09:00:00-05:00", timezone="America/New_York")
    assert response.status_code == 200
    assert response.json() == {
        "ResourceId": str(adams.pk), "ServiceId": str(clinic.service.pk), "LocationId": str(clinic.location.pk),
        "time": f"{MONDAY}T09:00:00-05:00", "available": False, "onGrid": False,
        "reasons": [{"code": "appointment", "id": str(booked.pk), "message": "Another appointment."}],
    }
    blocked = explain(clinic, baker, f"{MONDAY}T16:30:00Z").json()
    assert [(r["code"], r["id"]) for r in blocked["reasons"]] == [("blocked", str(block.pk))]
    closed = explain(clinic, baker, f"{MONDAY}T23:30:00Z").json()
    assert {r["code"] for r in closed["reasons"]} == {"outside_working_hours", "location_closed"}
    free = explain(clinic, baker, f"{MONDAY}T15:00:00Z").json()
    assert free["available"] is True and free["onGrid"] is True and free["reasons"] == []
    off_grid = explain(clinic, baker, f"{MONDAY}T15:10:00Z").json()
    assert off_grid["available"] is True and off_grid["onGrid"] is False
    past = explain(clinic, baker, "2020-01-06T15:00:00Z").json()
    assert "in_past" in {r["code"] for r in past["reasons"]}


def test_explain_agrees_with_the_listing(clinic):
    adams = clinic.resources[0]
    clinic.service.padding = 10
    clinic.service.save()
    appointment_book(organization=clinic.organization, service=clinic.service, location=clinic.location,
                     start=utc(15, 5), resource_ids=[str(adams.pk)])
    listed = set(times(ok(clinic, roundRobin="NONE", ResourceIds=[str(adams.pk)], timezone="UTC")))
    for minutes in range(0, 8 * 60, 15):
        when = utc(14) + timedelta(minutes=minutes)
        answer = explain(clinic, adams, when.isoformat()).json()
        if when.isoformat() in listed:
            assert answer["available"] and answer["onGrid"], when
        if not answer["available"]:
            assert when.isoformat() not in listed and answer["reasons"], when


def test_explain_unlinked_resource_and_errors(clinic, other_clinic):
    stranger = clinic.add_resource("Not linked", link=False)
    answer = explain(clinic, stranger, f"{MONDAY}T15:00:00Z").json()
    assert answer["available"] is False and answer["reasons"][0]["code"] == "not_linked"
    assert explain(clinic, other_clinic.resources[0], f"{MONDAY}T15:00:00Z").status_code == 404
    response = clinic.tenant.v3().get("/v3/availability/explain", {"LocationId": str(clinic.location.pk)})
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"ServiceId", "ResourceId", "time"}
    assert explain(clinic, stranger, MONDAY).json()["errors"][0]["field"] == "time"


def test_explain_day_names_each_object_in_local_time_and_agrees_with_the_listing(clinic, other_clinic):

    from booking.availability.selectors import availability_explain_day

    adams = clinic.resources[0]
    appointment_book(organization=clinic.organization, service=clinic.service, location=clinic.location,
                     start=utc(14), resource_ids=[str(adams.pk)])
    booked = b.Appointment.objects.get()
    block = b.Block.objects.create(organization=clinic.organization, resource=adams, start=utc(16), end=utc(17))
    zone = "America/New_York"
    got = availability_explain_day(organization=clinic.organization, location_id=clinic.location.pk,
                                   service_id=clinic.service.pk, resource_id=adams.pk, day=MONDAY_DATE, zone=zone)
    by_time = {s["time"]: s for s in got["starts"]}
    assert by_time[f"{MONDAY}T09:00:00-05:00"]["reasons"] == [{
        "code": "appointment", "kind": "appointment", "id": str(booked.pk), "message": "Another appointment.",
        "start": f"{MONDAY}T09:00:00-05:00", "end": f"{MONDAY}T09:30:00-05:00",
    }]
    assert [(r["code"], r["kind"], r["id"]) for r in by_time[f"{MONDAY}T11:00:00-05:00"]["reasons"]] == [
        ("blocked", "block", str(block.pk))
    ]
    assert by_time[f"{MONDAY}T03:00:00-05:00"]["reasons"][0]["code"] == "outside_working_hours"
    listed = times(ok(clinic, roundRobin="NONE", ResourceIds=[str(adams.pk)], timezone=zone))
    assert [s["time"] for s in got["starts"] if s["available"] and s["onGrid"]] == listed
    for item in got["starts"][::7]:
        one = explain(clinic, adams, item["time"]).json()
        assert (one["available"], one["onGrid"]) == (item["available"], item["onGrid"])
        assert [(r["code"], r["id"]) for r in one["reasons"]] == [(r["code"], r["id"]) for r in item["reasons"]]
    with pytest.raises(NotFound):
        availability_explain_day(organization=clinic.organization, location_id=clinic.location.pk,
                                 service_id=clinic.service.pk, resource_id=other_clinic.resources[0].pk,
                                 day=MONDAY_DATE)


def test_the_garbage_collector_is_paused_only_while_answers_are_computed(clinic):
    import gc

    from booking.availability.selectors import _collector_paused

    assert gc.isenabled()
    with _collector_paused():
        assert not gc.isenabled()
        with _collector_paused():  # another computation in the same process
            assert not gc.isenabled()
        assert not gc.isenabled()  # the first one still runs
    assert gc.isenabled()
    with pytest.raises(RuntimeError), _collector_paused():
        raise RuntimeError("a failed computation")
    assert gc.isenabled()
    assert get(clinic).status_code == 200
    assert gc.isenabled()
