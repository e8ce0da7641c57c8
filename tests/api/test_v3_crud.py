"""Create → read → list → update → delete round trips of every plain ``/v3/`` collection."""

from __future__ import annotations

import pytest

from booking.models import Appointment, AppointmentResource, Location, Resource, Shift
from tests.api.v3_fixtures import World, create, location_body, resource_body, service_body

BLOCK = {"startDate": "2030-01-07T12:00:00-05:00", "endDate": "2030-01-07T13:30:00-05:00", "reason": "Lunch"}
RECURRING = {"frequency": "MONTHLY", "monthDay": 15, "interval": 2, "startDate": "2030-01-01", "startTime": "08:00:00", "endTime": "24:00:00"}


def _scoped(world_getter, body):
    return lambda world: {**body, "LocationId": world.location["id"]}


CASES = [
    ("locations", lambda w: location_body(name="Denver", timezone="America/Denver"), {"name": "Denver LoDo"}),
    ("services", lambda w: service_body(name="New patient", duration=60), {"duration": 45}),
    ("resources", lambda w: resource_body(name="Exam Room 3", type="room"), {"bookingsPerSlot": 2}),
    ("blocks", lambda w: {**BLOCK, "ResourceId": w.resource["id"]}, {"reason": "Training"}),
    ("recurringBlocks", lambda w: {**RECURRING, "LocationId": w.location["id"]}, {"interval": 3}),
]


@pytest.mark.parametrize("collection,body,change", CASES, ids=[c[0] for c in CASES])
def test_collection_round_trip(api, collection, body, change):
    world = World(api)
    created = create(api, collection, body(world))
    item_url = f"/v3/{collection}/{created['id']}"

    fetched = api.get(item_url).json()
    assert fetched == created

    listed = api.get(f"/v3/{collection}").json()
    assert created["id"] in [item["id"] for item in listed["data"]]

    patched = api.patch(item_url, change, format="json")
    assert patched.status_code == 200, patched.content
    for key, value in change.items():
        assert patched.json()[key] == value
    assert api.get(item_url).json() == patched.json()

    full = {**body(world), **change}
    put = api.put(item_url, full, format="json")
    assert put.status_code == 200, put.content
    assert put.json()["id"] == created["id"]

    assert api.delete(item_url).status_code == 204
    gone = api.get(item_url)
    assert gone.status_code == 404
    assert gone.json()["name"] == "NotFoundError"


def test_location_defaults_and_midnight_end(api):
    created = create(api, "locations", {"name": "Clinic", "timezone": "Europe/London", "weeklyAvailability": [
        {"dayOfWeek": 5, "startTime": "22:00:00", "endTime": "00:00:00"}]})
    assert created["holdExpirationMinutes"] == 10
    assert created["ehrId"] is None
    assert created["status"] == "active"
    assert created["weeklyAvailability"] == [{"dayOfWeek": 5, "startTime": "22:00:00", "endTime": "24:00:00"}]
    assert created["createdAt"].endswith("+00:00")


def test_service_defaults(api):
    created = create(api, "services", {"name": "Consult", "duration": 15})
    assert created["padding"] == 0
    assert created["durationSelect"] is False
    for key in ("durationMin", "durationMax", "durationInterval", "bookingInterval", "bookingsPerSlot", "roundRobin", "visitType"):
        assert created[key] is None


def test_resource_defaults_and_normalization(api):
    created = create(api, "resources", resource_body())
    assert created["type"] == "provider"
    assert created["timezone"] is None
    assert created["status"] == "active"
    assert created["hideInAvailability"] is False
    assert created["email"] == "maya@example.com"
    assert created["licensedStates"] == ["MA", "NY"]
    assert create(api, "resources", {"name": "Nurse"})["type"] == "staff"


def test_block_instants_are_rendered_in_utc_with_offset(api):
    world = World(api)
    block = create(api, "blocks", {**BLOCK, "ServiceId": world.service["id"]})
    assert block["startDate"] == "2030-01-07T17:00:00+00:00"
    assert block["endDate"] == "2030-01-07T18:30:00+00:00"
    assert block["ServiceId"] == world.service["id"] and block["ResourceId"] is None


def test_recurring_block_round_trips_wall_clock_fields(api):
    world = World(api)
    block = create(api, "recurringBlocks", {**RECURRING, "ResourceId": world.resource["id"], "timezone": "Asia/Kolkata"})
    assert (block["startTime"], block["endTime"], block["timezone"], block["monthDay"]) == ("08:00:00", "24:00:00", "Asia/Kolkata", 15)
    assert block["endDate"] is None and block["weekdays"] == []


def test_put_replaces_the_whole_item_omitted_fields_return_to_defaults(api):
    created = create(api, "services", service_body(bookingInterval=10))
    put = api.put(f"/v3/services/{created['id']}", {"name": "Renamed", "duration": 40}, format="json")
    assert put.status_code == 200
    assert put.json()["bookingInterval"] is None and put.json()["padding"] == 0 and put.json()["name"] == "Renamed"


def test_patch_keeps_omitted_fields(api):
    created = create(api, "services", service_body(bookingInterval=10))
    patched = api.patch(f"/v3/services/{created['id']}", {"name": "Renamed"}, format="json")
    assert patched.json()["bookingInterval"] == 10 and patched.json()["padding"] == 5


def test_put_requires_required_fields(api):
    created = create(api, "services", service_body())
    put = api.put(f"/v3/services/{created['id']}", {"name": "Only a name"}, format="json")
    assert put.status_code == 400
    assert [e["field"] for e in put.json()["errors"]] == ["duration"]


class TestResourceServices:
    def test_link_list_and_idempotent_relink(self, api):
        world = World(api)
        url = f"/v3/resources/{world.resource['id']}/services"
        listed = api.get(url).json()
        assert listed["count"] == 1
        assert listed["data"][0]["ServiceId"] == world.service["id"]
        assert listed["data"][0]["LocationId"] == world.location["id"]
        again = api.post(url, {"ServiceId": world.service["id"], "LocationId": world.location["id"]}, format="json")
        assert again.status_code == 200
        assert api.get(url).json()["count"] == 1

    def test_unlink_at_one_location(self, api):
        world = World(api)
        other = create(api, "locations", location_body(name="Second"))
        url = f"/v3/resources/{world.resource['id']}/services"
        api.post(url, {"ServiceId": world.service["id"], "LocationId": other["id"]}, format="json")
        assert api.get(url).json()["count"] == 2
        response = api.delete(f"{url}/{world.service['id']}?LocationId={other['id']}")
        assert response.status_code == 204
        remaining = api.get(url).json()["data"]
        assert [link["LocationId"] for link in remaining] == [world.location["id"]]

    def test_unlink_everywhere_then_404(self, api):
        world = World(api)
        url = f"/v3/resources/{world.resource['id']}/services/{world.service['id']}"
        assert api.delete(url).status_code == 204
        second = api.delete(url)
        assert second.status_code == 404 and second.json()["name"] == "NotFoundError"


class TestSchedule:
    def test_replace_all_and_read_back(self, api):
        world = World(api)
        url = f"/v3/resources/{world.resource['id']}/schedule"
        body = {
            "weeklyAvailability": [
                {"dayOfWeek": 2, "startTime": "13:00:00", "endTime": "17:00:00", "LocationId": world.location["id"]},
                {"dayOfWeek": 2, "startTime": "08:00:00", "endTime": "12:00:00"},
                {"dayOfWeek": 5, "startTime": "22:00:00", "endTime": "24:00:00"},
            ]
        }
        response = api.put(url, body, format="json")
        assert response.status_code == 200
        assert response.json()["weeklyAvailability"] == [
            {"dayOfWeek": 2, "startTime": "08:00:00", "endTime": "12:00:00", "LocationId": None},
            {"dayOfWeek": 2, "startTime": "13:00:00", "endTime": "17:00:00", "LocationId": world.location["id"]},
            {"dayOfWeek": 5, "startTime": "22:00:00", "endTime": "24:00:00", "LocationId": None},
        ]
        assert api.get(url).json() == response.json()
        assert Shift.objects.filter(resource_id=world.resource["id"]).count() == 3

    def test_empty_schedule_clears_hours(self, api):
        world = World(api)
        url = f"/v3/resources/{world.resource['id']}/schedule"
        assert api.put(url, {"weeklyAvailability": []}, format="json").status_code == 200
        assert api.get(url).json()["weeklyAvailability"] == []


class TestAllocations:
    def test_create_list_get_delete(self, api):
        world = World(api)
        url = f"/v3/resources/{world.resource['id']}/allocations"
        listed = api.get(url).json()
        assert listed["count"] == 1
        assert listed["data"][0]["startDate"] == "2030-01-05T14:00:00+00:00"
        item = f"{url}/{world.allocation['id']}"
        assert api.get(item).json()["ResourceId"] == world.resource["id"]
        assert api.delete(item).status_code == 204
        assert api.get(item).status_code == 404
        assert api.get(url).json()["count"] == 0

    def test_allocation_of_another_resource_is_not_found_through_this_one(self, api):
        world = World(api)
        other = create(api, "resources", resource_body(name="Other"))
        url = f"/v3/resources/{other['id']}/allocations/{world.allocation['id']}"
        assert api.get(url).status_code == 404
        assert api.delete(url).status_code == 404


class TestDeletionGuards:
    @pytest.fixture
    def booked(self, api, tenant):
        from datetime import timedelta

        from django.utils import timezone

        world = World(api)
        start = timezone.now() + timedelta(days=1)
        appointment = Appointment.objects.create(
            organization=tenant.organization,
            start=start,
            end=start + timedelta(minutes=30),
            service_id=world.service["id"],
            location_id=world.location["id"],
        )
        AppointmentResource.objects.create(appointment=appointment, resource_id=world.resource["id"])
        return world

    @pytest.mark.parametrize("collection,key", [("resources", "resource"), ("services", "service"), ("locations", "location")])
    def test_delete_with_upcoming_appointments_is_409_and_keeps_the_object(self, api, booked, collection, key):
        response = api.delete(f"/v3/{collection}/{getattr(booked, key)['id']}")
        assert response.status_code == 409
        assert response.json()["name"] == "ConflictError"
        assert "1 upcoming appointment" in response.json()["message"]
        assert api.get(f"/v3/{collection}/{getattr(booked, key)['id']}").status_code == 200

    def test_cancelled_appointments_do_not_block_deletion(self, api, booked):
        Appointment.objects.update(status=Appointment.Status.CANCELLED)
        assert api.delete(f"/v3/resources/{booked.resource['id']}").status_code == 204
        assert not Resource.objects.filter(pk=booked.resource["id"]).exists()
        assert Location.objects.filter(pk=booked.location["id"]).exists()


def test_writes_bump_the_availability_version(api, tenant):
    tenant.organization.refresh_from_db()
    before = tenant.organization.availability_version
    world = World(api)
    tenant.organization.refresh_from_db()
    after_setup = tenant.organization.availability_version
    assert after_setup > before
    api.patch(f"/v3/services/{world.service['id']}", {"padding": 15}, format="json")
    tenant.organization.refresh_from_db()
    assert tenant.organization.availability_version == after_setup + 1


# PUT replaces the item: every optional field left out goes back to its default.
PUT_MINIMAL = [
    ("locations", lambda w: location_body(weeklyAvailability=[{"dayOfWeek": 2, "startTime": "09:00:00", "endTime": "12:00:00"}],
                                          holdExpirationMinutes=30, ehrId="L-1", address="1 Main St", status="inactive"),
     lambda w: {"name": "Bare", "timezone": "UTC"},
     {"weeklyAvailability": [], "holdExpirationMinutes": 10, "ehrId": None, "address": "", "status": "active"}),
    ("services", lambda w: service_body(padding=5, bookingInterval=10, bookingsPerSlot=2, roundRobin="RANDOM", visitType="FU",
                                        durationSelect=True, durationMin=15, durationMax=60, durationInterval=15),
     lambda w: {"name": "Bare", "duration": 20},
     {"padding": 0, "bookingInterval": None, "bookingsPerSlot": None, "roundRobin": None, "visitType": None,
      "durationSelect": False, "durationMin": None, "durationMax": None, "durationInterval": None}),
    ("resources", lambda w: resource_body(timezone="America/Denver", bookingsPerSlot=3, ehrId="P-7", npi="1234567893",
                                          status="inactive", hideInAvailability=True),
     lambda w: {"name": "Bare"},
     {"type": "staff", "timezone": None, "bookingsPerSlot": None, "email": "", "ehrId": None, "npi": "", "status": "active",
      "hideInAvailability": False, "licensedStates": []}),
    ("blocks", lambda w: {**BLOCK, "ResourceId": w.resource["id"]},
     lambda w: {"ResourceId": w.resource["id"], "startDate": BLOCK["startDate"], "endDate": BLOCK["endDate"]},
     {"reason": ""}),
    ("recurringBlocks", lambda w: {**RECURRING, "LocationId": w.location["id"], "endDate": "2031-01-01", "timezone": "Asia/Kolkata",
                                   "reason": "Inventory"},
     lambda w: {"LocationId": w.location["id"], "frequency": "WEEKLY", "startDate": "2030-01-01", "startTime": "08:00:00",
                "endTime": "09:00:00"},
     {"interval": 1, "endDate": None, "timezone": None, "weekdays": [], "monthDay": None, "reason": ""}),
]


@pytest.mark.parametrize("collection,full,minimal,defaults", PUT_MINIMAL, ids=[c[0] for c in PUT_MINIMAL])
def test_put_without_optional_fields_resets_them_to_their_defaults(api, collection, full, minimal, defaults):
    world = World(api)
    created = create(api, collection, full(world))
    put = api.put(f"/v3/{collection}/{created['id']}", minimal(world), format="json")
    assert put.status_code == 200, put.content
    assert {key: put.json()[key] for key in defaults} == defaults
    assert api.get(f"/v3/{collection}/{created['id']}").json() == put.json()


@pytest.mark.parametrize("collection,body", [
    ("blocks", lambda w: {"startDate": BLOCK["startDate"], "endDate": BLOCK["endDate"]}),
    ("recurringBlocks", lambda w: {"frequency": "DAILY", "startDate": "2030-01-01", "startTime": "08:00:00", "endTime": "09:00:00"}),
])
def test_put_without_a_scope_is_400_and_keeps_the_item(api, collection, body):
    world = World(api)
    item = world.block if collection == "blocks" else world.recurring_block
    put = api.put(f"/v3/{collection}/{item['id']}", body(world), format="json")
    assert put.status_code == 400, put.content
    assert {e["field"] for e in put.json()["errors"]} == {"ResourceId", "LocationId", "ServiceId"}
    assert api.get(f"/v3/{collection}/{item['id']}").json() == item
