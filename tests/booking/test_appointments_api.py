"""``/v3/appointments``: booking, holds, reservations, confirm, cancel, reschedule, listing, events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone as dj_timezone

from booking import models as b
from booking.availability import engine, wallclock
from booking.services.appointments import appointment_choice_seed
from tenants.models import Event, Organization
from tests.booking.conftest import MONDAY, iso_day, utc

UTC = UTC
NINE = f"{MONDAY}T09:00:00-05:00"


def body(clinic, **extra) -> dict:
    out = {"ServiceId": str(clinic.service.pk), "LocationId": str(clinic.location.pk), "startTime": NINE}
    out.update(extra)
    return {k: v for k, v in out.items() if v is not None}


def post(clinic, path: str = "/v3/appointments", **extra):
    return clinic.tenant.v3().post(path, body(clinic, **extra), format="json")


def put(clinic, appointment_id: str, action: str, data=None):
    return clinic.tenant.v3().put(f"/v3/appointments/{appointment_id}/{action}", data or {}, format="json")


def availability(clinic, **params) -> list[tuple[str, list[str]]]:
    response = clinic.tenant.v3().get("/v3/availability", clinic.params(roundRobin="NONE", **params))
    assert response.status_code == 200
    return [(s["start_time"], s["ResourceIds"]) for s in response.json()["availableTimes"]]


def events(clinic, type_: str) -> list[dict]:
    return [e.payload for e in Event.objects.filter(organization=clinic.organization, type=type_).order_by("created_at")]


# --- creating ----------------------------------------------------------------------------------


def test_book_answers_the_appointment_and_emits_created(clinic):
    adams, baker = clinic.resources
    version = Organization.objects.get(pk=clinic.organization.pk).availability_version
    response = post(clinic, ResourceIds=[str(adams.pk)], customer={"name": "Ada", "email": "ada@example.com", "phone": "+1 555"},
                    patientMrn="MRN-1", notes="first visit")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["status"] == "BK" and data["source"] == "api"
    assert data["startTime"] == NINE and data["endTime"] == f"{MONDAY}T09:30:00-05:00" and data["duration"] == 30
    assert data["ServiceId"] == str(clinic.service.pk) and data["LocationId"] == str(clinic.location.pk)
    assert data["ResourceIds"] == [str(adams.pk)]
    assert data["customer"] == {"name": "Ada", "email": "ada@example.com", "phone": "+1 555"}
    assert data["patientMrn"] == "MRN-1" and data["notes"] == "first visit" and data["expiresAt"] is None
    stored = b.Appointment.objects.get(pk=data["id"])
    assert stored.start == utc(14) and stored.created_by_client == clinic.tenant.api_client
    [created] = events(clinic, "appointment.created")
    assert created["object"] == "event" and created["type"] == "appointment.created" and created["data"] == data
    assert Organization.objects.get(pk=clinic.organization.pk).availability_version > version


def test_book_without_resources_picks_a_free_one(clinic):
    adams, baker = clinic.resources
    first = post(clinic).json()["ResourceIds"]
    second = post(clinic).json()["ResourceIds"]
    assert sorted(first + second) == sorted([str(adams.pk), str(baker.pk)])
    third = post(clinic)
    assert third.status_code == 409 and third.json()["name"] == "ConflictError"


def test_book_without_resources_balanced_picks_the_least_booked(clinic):
    adams, baker = clinic.resources
    clinic.service.round_robin = "BALANCED"
    clinic.service.save()
    for hour in (10, 11):
        assert post(clinic, ResourceIds=[str(adams.pk)], startTime=f"{MONDAY}T{hour}:00:00-05:00").status_code == 201
    response = post(clinic)  # 09:00: both free, Adams has two appointments that day, Baker none
    assert response.status_code == 201 and response.json()["ResourceIds"] == [str(baker.pk)]


def test_book_without_resources_random_follows_the_seeded_choice(clinic):
    # RANDOM (the service's default): at each start, the seeded draw among the free resources in
    # answer order (Adams, Baker), not always the first of them. Each booking leaves the next
    # start free for both.
    adams, baker = clinic.resources
    for k in range(16):
        start = utc(14) + timedelta(minutes=30 * k)
        seed = appointment_choice_seed(organization=clinic.organization, location=clinic.location,
                                       service=clinic.service, start=start, duration=30, resource_ids=None)
        expected = (adams, baker)[engine.seeded_choice(engine.seed_number(seed), wallclock.epoch(start), 2)]
        response = post(clinic, startTime=start.isoformat())
        assert response.status_code == 201 and response.json()["ResourceIds"] == [str(expected.pk)], start


def test_booked_time_disappears_and_a_second_booking_conflicts(clinic):
    adams = clinic.resources[0]
    assert post(clinic, ResourceIds=[str(adams.pk)]).status_code == 201
    listed = dict(availability(clinic))
    assert str(adams.pk) not in listed.get(NINE, [])
    again = post(clinic, ResourceIds=[str(adams.pk)])
    assert again.status_code == 409 and again.json()["errors"] == []
    overlapping = post(clinic, ResourceIds=[str(adams.pk)], startTime=f"{MONDAY}T09:15:00-05:00")
    assert overlapping.status_code == 409


def test_off_grid_start_can_be_booked(clinic):
    response = post(clinic, startTime=f"{MONDAY}T09:10:00-05:00")
    assert response.status_code == 201 and response.json()["endTime"] == f"{MONDAY}T09:40:00-05:00"


@pytest.mark.parametrize(
    "start",
    [f"{MONDAY}T08:00:00-05:00", f"{MONDAY}T16:45:00-05:00", f"{iso_day(-1)}T10:00:00-05:00", "2020-01-06T10:00:00-05:00"],
    ids=["before-hours", "runs-past-closing", "sunday", "past"],
)
def test_not_bookable_is_409_and_writes_nothing(clinic, start):
    response = post(clinic, startTime=start)
    assert response.status_code == 409
    assert not b.Appointment.objects.filter(organization=clinic.organization).exists()
    assert not events(clinic, "appointment.created")


def test_padding_is_checked_when_booking(clinic):
    clinic.service.padding = 15
    clinic.service.save()
    assert post(clinic, startTime=f"{MONDAY}T16:30:00-05:00").status_code == 409
    assert post(clinic, startTime=f"{MONDAY}T16:30:00-05:00", allowPaddingOverflow=True).status_code == 201


def test_capacity_two_takes_two_bookings(clinic):
    adams = clinic.resources[0]
    adams.bookings_per_slot = 2
    adams.save()
    clinic.service.bookings_per_slot = 3
    clinic.service.save()
    statuses = [post(clinic, ResourceIds=[str(adams.pk)]).status_code for _ in range(3)]
    assert statuses == [201, 201, 409]


def test_several_resources_are_booked_together(clinic):
    adams, baker = clinic.resources
    response = post(clinic, ResourceIds=[str(adams.pk), str(baker.pk)])
    assert response.status_code == 201 and response.json()["ResourceIds"] == [str(adams.pk), str(baker.pk)]
    assert NINE not in dict(availability(clinic))
    assert post(clinic, ResourceIds=[str(baker.pk)]).status_code == 409  # each of them is taken
    assert post(clinic, ResourceIds=[str(adams.pk), str(baker.pk)], startTime=f"{MONDAY}T10:00:00-05:00").status_code == 201


def test_duration_follows_override_rules(clinic):
    response = post(clinic, duration=60)
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "duration"
    clinic.service.duration_select, clinic.service.duration_interval, clinic.service.duration_max = True, 15, 90
    clinic.service.save()
    assert post(clinic, duration=50).json()["errors"][0]["field"] == "duration"
    response = post(clinic, duration=90)
    assert response.status_code == 201 and response.json()["endTime"] == f"{MONDAY}T10:30:00-05:00"


def test_hold_expires_after_the_location_setting(clinic):
    clinic.location.hold_expiration_minutes = 7
    clinic.location.save()
    before = dj_timezone.now()
    response = post(clinic, "/v3/appointments/hold")
    assert response.status_code == 201 and response.json()["status"] == "IN"
    expires = datetime.fromisoformat(response.json()["expiresAt"])
    assert before + timedelta(minutes=7) - timedelta(seconds=1) <= expires <= dj_timezone.now() + timedelta(minutes=7)


def test_reserve(clinic):
    response = post(clinic, "/v3/appointments/reserve")
    assert response.status_code == 201 and response.json()["status"] == "RS" and response.json()["expiresAt"] is None


# --- body validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change,field",
    [
        ({"ServiceId": None}, "ServiceId"),
        ({"LocationId": None}, "LocationId"),
        ({"startTime": None}, "startTime"),
        ({"startTime": f"{MONDAY}T09:00:00"}, "startTime"),
        ({"startTime": 12}, "startTime"),
        ({"ServiceId": 42}, "ServiceId"),
        ({"ServiceId": "nope"}, "ServiceId"),
        ({"ResourceIds": "abc"}, "ResourceIds"),
        ({"ResourceIds": ["nope"]}, "ResourceIds[0]"),
        ({"ResourceIds": ["00000000-0000-0000-0000-000000000001"]}, "ResourceIds"),
        ({"duration": "30"}, "duration"),
        ({"duration": 0}, "duration"),
        ({"customer": {"email": "not an email"}}, "customer.email"),
        ({"customer": "Ada"}, "customer"),
        ({"allowPaddingOverflow": "yes"}, "allowPaddingOverflow"),
        ({"notes": "x" * 5001}, "notes"),
    ],
)
def test_booking_body_validation(clinic, change, field):
    response = post(clinic, **change)
    assert response.status_code == 400, response.content
    assert field in {e["field"] for e in response.json()["errors"]}
    assert not b.Appointment.objects.exists()


def test_combined_service_needs_resource_ids(clinic):
    clinic.service.round_robin = "COMBINED"
    clinic.service.save()
    response = post(clinic)
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "ResourceIds"


def test_unknown_or_other_tenant_service_and_location_are_404(clinic, other_clinic):
    for change in ({"ServiceId": str(other_clinic.service.pk)}, {"LocationId": str(other_clinic.location.pk)},
                   {"ServiceId": "00000000-0000-0000-0000-000000000000"}):
        response = post(clinic, **change)
        assert response.status_code == 404 and response.json()["name"] == "NotFoundError"
    assert not b.Appointment.objects.exists()


def test_other_tenant_resource_is_400_not_booked(clinic, other_clinic):
    response = post(clinic, ResourceIds=[str(other_clinic.resources[0].pk)])
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "ResourceIds"
    assert not b.Appointment.objects.exists()


# --- actions -----------------------------------------------------------------------------------


def test_confirm_a_hold_and_a_reservation(clinic):
    hold = post(clinic, "/v3/appointments/hold").json()
    booked = put(clinic, hold["id"], "book")
    assert booked.status_code == 200 and booked.json()["status"] == "BK" and booked.json()["expiresAt"] is None
    reservation = post(clinic, "/v3/appointments/reserve").json()
    assert put(clinic, reservation["id"], "book").json()["status"] == "BK"
    assert [e["data"]["status"] for e in events(clinic, "appointment.updated")] == ["BK", "BK"]
    again = put(clinic, hold["id"], "book")
    assert again.status_code == 200 and len(events(clinic, "appointment.updated")) == 2  # no change, no event


def test_an_expired_hold_frees_its_time_and_cannot_be_booked(clinic):
    adams = clinic.resources[0]
    hold = post(clinic, "/v3/appointments/hold", ResourceIds=[str(adams.pk)]).json()
    assert str(adams.pk) not in dict(availability(clinic)).get(NINE, [])
    b.Appointment.objects.filter(pk=hold["id"]).update(expires_at=dj_timezone.now() - timedelta(seconds=1))
    Organization.objects.filter(pk=clinic.organization.pk).update(availability_version=1000)  # skip the cached answer
    assert str(adams.pk) in dict(availability(clinic))[NINE]
    response = put(clinic, hold["id"], "book")
    assert response.status_code == 409
    # Reading marks it cancelled and says so once.
    read = clinic.tenant.v3().get(f"/v3/appointments/{hold['id']}").json()
    assert read["status"] == "CN" and read["cancelledAt"] == read["expiresAt"]
    assert [e["data"]["id"] for e in events(clinic, "appointment.cancelled")] == [hold["id"]]


def test_cancel_frees_the_time_at_once(clinic):
    adams = clinic.resources[0]
    appointment = post(clinic, ResourceIds=[str(adams.pk)]).json()
    assert post(clinic, ResourceIds=[str(adams.pk)]).status_code == 409
    cancelled = put(clinic, appointment["id"], "cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CN" and cancelled.json()["cancelledAt"]
    assert str(adams.pk) in dict(availability(clinic))[NINE]
    assert post(clinic, ResourceIds=[str(adams.pk)]).status_code == 201
    assert [e["data"]["status"] for e in events(clinic, "appointment.cancelled")] == ["CN"]
    assert put(clinic, appointment["id"], "cancel").status_code == 200  # idempotent
    assert put(clinic, appointment["id"], "book").status_code == 409
    assert put(clinic, appointment["id"], "reschedule", {"startTime": NINE}).status_code == 409


def test_reschedule_moves_and_frees_the_old_time(clinic):
    adams = clinic.resources[0]
    appointment = post(clinic, ResourceIds=[str(adams.pk)]).json()
    # Overlapping its own old time is fine: the old time is freed in the same transaction.
    moved = put(clinic, appointment["id"], "reschedule", {"startTime": f"{MONDAY}T09:15:00-05:00"})
    assert moved.status_code == 200, moved.content
    assert moved.json()["startTime"] == f"{MONDAY}T09:15:00-05:00" and moved.json()["endTime"] == f"{MONDAY}T09:45:00-05:00"
    assert moved.json()["ResourceIds"] == [str(adams.pk)]
    assert events(clinic, "appointment.updated")[-1]["data"]["startTime"] == f"{MONDAY}T09:15:00-05:00"


def _cached_twice(clinic, resource) -> list[str]:
    """The resource's listed starts, asked twice: computed (MISS), then from the cache (HIT)."""
    params = clinic.params(roundRobin="NONE", ResourceIds=[str(resource.pk)])
    first = clinic.tenant.v3().get("/v3/availability", params)
    second = clinic.tenant.v3().get("/v3/availability", params)
    assert (first["X-Cache"], second["X-Cache"]) == ("MISS", "HIT") and second.content == first.content
    return [s["start_time"] for s in first.json()["availableTimes"]]


def _after_write(clinic, resource) -> list[str]:
    response = clinic.tenant.v3().get("/v3/availability", clinic.params(roundRobin="NONE", ResourceIds=[str(resource.pk)]))
    assert response["X-Cache"] == "MISS"  # the write invalidated the cached answer (rule 12)
    return [s["start_time"] for s in response.json()["availableTimes"]]


def test_cancel_invalidates_cached_availability(clinic):
    adams = clinic.resources[0]
    appointment = post(clinic, ResourceIds=[str(adams.pk)]).json()
    assert NINE not in _cached_twice(clinic, adams)
    assert put(clinic, appointment["id"], "cancel").status_code == 200
    assert NINE in _after_write(clinic, adams)  # the freed time is offered again


def test_reschedule_invalidates_cached_availability(clinic):
    adams = clinic.resources[0]
    eleven = f"{MONDAY}T11:00:00-05:00"
    appointment = post(clinic, ResourceIds=[str(adams.pk)]).json()
    before = _cached_twice(clinic, adams)
    assert NINE not in before and eleven in before
    assert put(clinic, appointment["id"], "reschedule", {"startTime": eleven}).status_code == 200
    after = _after_write(clinic, adams)
    assert NINE in after and eleven not in after  # the old time is back, the new one gone


def test_reschedule_onto_a_taken_time_is_409_and_changes_nothing(clinic):
    adams = clinic.resources[0]
    first = post(clinic, ResourceIds=[str(adams.pk)]).json()
    post(clinic, ResourceIds=[str(adams.pk)], startTime=f"{MONDAY}T11:00:00-05:00")
    response = put(clinic, first["id"], "reschedule", {"startTime": f"{MONDAY}T11:15:00-05:00"})
    assert response.status_code == 409
    assert b.Appointment.objects.get(pk=first["id"]).start == utc(14)
    bad = put(clinic, first["id"], "reschedule", {"startTime": "soon"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "startTime"


def test_emr_appointments_are_not_changed_through_v3(clinic):
    emr = b.Appointment.objects.create(organization=clinic.organization, start=utc(14),
                                       end=utc(15), source="emr")
    for action in ("book", "cancel"):
        assert put(clinic, str(emr.pk), action).status_code == 409
    assert b.Appointment.objects.get(pk=emr.pk).status == "BK"


# --- reading -----------------------------------------------------------------------------------


def test_list_filters_and_pages(clinic):
    adams, baker = clinic.resources
    a = post(clinic, ResourceIds=[str(adams.pk)]).json()
    bb = post(clinic, ResourceIds=[str(baker.pk)], startTime=f"{iso_day(1)}T10:00:00-05:00").json()
    c = post(clinic, "/v3/appointments/hold", ResourceIds=[str(adams.pk)], startTime=f"{iso_day(2)}T10:00:00-05:00").json()
    api = clinic.tenant.v3()

    def ids(**params):
        response = api.get("/v3/appointments", params)
        assert response.status_code == 200, response.content
        return [item["id"] for item in response.json()["data"]]

    assert ids() == [a["id"], bb["id"], c["id"]]
    assert ids(ResourceId=str(adams.pk)) == [a["id"], c["id"]]
    assert ids(status="IN") == [c["id"]] and ids(status="BK,IN") == [a["id"], bb["id"], c["id"]]
    assert ids(startDate=iso_day(1), endDate=iso_day(1), timezone="America/New_York") == [bb["id"]]
    assert ids(startDate=f"{iso_day(1)}T15:00:00Z") == [bb["id"], c["id"]]
    page = api.get("/v3/appointments", {"limit": 2, "page": 2}).json()
    assert page["count"] == 3 and page["page"] == 2 and [i["id"] for i in page["data"]] == [c["id"]]
    for params, field in (({"status": "XX"}, "status"), ({"startDate": "bad"}, "startDate"), ({"ResourceId": "1"}, "ResourceId"),
                          ({"startDate": iso_day(2), "endDate": iso_day(1)}, "endDate"), ({"limit": "0"}, "limit")):
        response = api.get("/v3/appointments", params)
        assert response.status_code == 400 and response.json()["errors"][0]["field"] == field


def test_get_one(clinic):
    created = post(clinic).json()
    response = clinic.tenant.v3().get(f"/v3/appointments/{created['id']}")
    assert response.status_code == 200 and response.json() == created
