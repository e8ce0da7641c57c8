"""Bad input on every ``/v3/`` collection: 400 in the ``/v3/`` error shape, naming the field,
and nothing written."""

from __future__ import annotations

import json

import pytest

from booking.models import Allocation, Block, Location, RecurringBlock, Resource, ResourceService, Service, Shift
from tests.api.v3_fixtures import World, location_body, resource_body, service_body

HUGE = 10**40
LONG = "x" * 5000
OTHER_UUID = "00000000-0000-4000-8000-000000000000"


def assert_400(response, field: str):
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["statusCode"] == 400 and body["name"] == "BadRequestError"
    assert field in [e["field"] for e in body["errors"]], body
    assert body["message"]


LOCATION_CASES = [
    ("name", {"name": None}),
    ("name", {"name": LONG}),
    ("name", {"name": 12}),
    ("timezone", {"timezone": "Mars/Olympus_Mons"}),
    ("timezone", {"timezone": ""}),
    # In the tz database's files but not IANA zones: the host's zone, a placeholder, a template.
    ("timezone", {"timezone": "localtime"}),
    ("timezone", {"timezone": "Factory"}),
    ("timezone", {"timezone": "posixrules"}),
    ("weeklyAvailability[0].dayOfWeek", {"weeklyAvailability": [{"dayOfWeek": 7, "startTime": "09:00:00", "endTime": "10:00:00"}]}),
    ("weeklyAvailability[0].dayOfWeek", {"weeklyAvailability": [{"dayOfWeek": "Monday", "startTime": "09:00:00", "endTime": "10:00:00"}]}),
    ("weeklyAvailability[0].startTime", {"weeklyAvailability": [{"dayOfWeek": 1, "startTime": "25:00:00", "endTime": "26:00:00"}]}),
    ("weeklyAvailability[0].startTime", {"weeklyAvailability": [{"dayOfWeek": 1, "startTime": "9:00", "endTime": "10:00:00"}]}),
    ("weeklyAvailability[0].startTime", {"weeklyAvailability": [{"dayOfWeek": 1, "startTime": "24:00:00", "endTime": "10:00:00"}]}),
    ("weeklyAvailability[0].endTime", {"weeklyAvailability": [{"dayOfWeek": 1, "startTime": "10:00:00", "endTime": "09:00:00"}]}),
    ("weeklyAvailability[0].endTime", {"weeklyAvailability": [{"dayOfWeek": 1, "startTime": "10:00:00", "endTime": "10:00:00"}]}),
    ("weeklyAvailability[0].endTime", {"weeklyAvailability": [{"dayOfWeek": 1, "startTime": "10:00:00", "endTime": "10:61:00"}]}),
    # ASCII digits and nothing after the seconds: no fullwidth digits, no trailing newline.
    ("weeklyAvailability[0].startTime", {"weeklyAvailability": [{"dayOfWeek": 1, "startTime": "\uff10\uff19:00:00", "endTime": "10:00:00"}]}),
    ("weeklyAvailability[0].startTime", {"weeklyAvailability": [{"dayOfWeek": 1, "startTime": "09:00:00\n", "endTime": "10:00:00"}]}),
    ("weeklyAvailability[0].endTime", {"weeklyAvailability": [{"dayOfWeek": 1, "startTime": "09:00:00", "endTime": "10:00:00\n"}]}),
    ("weeklyAvailability", {"weeklyAvailability": {"dayOfWeek": 1}}),
    ("weeklyAvailability", {"weeklyAvailability": [{"dayOfWeek": 1, "startTime": "09:00:00", "endTime": "10:00:00"}] * 400}),
    ("holdExpirationMinutes", {"holdExpirationMinutes": 0}),
    ("holdExpirationMinutes", {"holdExpirationMinutes": HUGE}),
    ("holdExpirationMinutes", {"holdExpirationMinutes": "ten"}),
    ("ehrId", {"ehrId": LONG}),
    ("status", {"status": "closed"}),
]

SERVICE_CASES = [
    ("name", {"name": ""}),
    ("duration", {"duration": 0}),
    ("duration", {"duration": -5}),
    ("duration", {"duration": HUGE}),
    ("duration", {"duration": 1.5}),
    ("duration", {"duration": "thirty"}),
    ("duration", {"duration": "30"}),
    ("duration", {"duration": True}),
    ("durationSelect", {"durationSelect": "true"}),
    ("padding", {"padding": -1}),
    ("padding", {"padding": HUGE}),
    ("durationSelect", {"durationSelect": "maybe"}),
    ("durationMin", {"durationMin": 60, "durationMax": 30}),
    ("durationInterval", {"durationInterval": 0}),
    ("bookingInterval", {"bookingInterval": 0}),
    ("bookingsPerSlot", {"bookingsPerSlot": 0}),
    ("bookingsPerSlot", {"bookingsPerSlot": HUGE}),
    ("roundRobin", {"roundRobin": "ROUND"}),
    ("roundRobin", {"roundRobin": "random"}),
    ("visitType", {"visitType": LONG}),
]

RESOURCE_CASES = [
    ("name", {"name": None}),
    ("type", {"type": "robot"}),
    ("timezone", {"timezone": "America/Nowhere"}),
    ("bookingsPerSlot", {"bookingsPerSlot": 0}),
    ("email", {"email": "not-an-email"}),
    ("npi", {"npi": "12345"}),
    ("npi", {"npi": "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19\uff10"}),  # fullwidth digits
    ("npi", {"npi": "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660"}),  # Arabic-Indic digits
    ("status", {"status": "retired"}),
    ("hideInAvailability", {"hideInAvailability": "sometimes"}),
    ("hideInAvailability", {"hideInAvailability": 1}),
    ("type", {"type": 3}),
    ("licensedStates", {"licensedStates": ["CA", "ZZ"]}),
    ("licensedStates", {"licensedStates": "CA"}),
    ("licensedStates[0]", {"licensedStates": ["California"]}),
]


@pytest.mark.parametrize("field,change", LOCATION_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(LOCATION_CASES)])
def test_location_validation(api, field, change):
    assert_400(api.post("/v3/locations", location_body(**change), format="json"), field)
    assert Location.objects.count() == 0


@pytest.mark.parametrize("field,change", SERVICE_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(SERVICE_CASES)])
def test_service_validation(api, field, change):
    assert_400(api.post("/v3/services", service_body(**change), format="json"), field)
    assert Service.objects.count() == 0


@pytest.mark.parametrize("field,change", RESOURCE_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(RESOURCE_CASES)])
def test_resource_validation(api, field, change):
    assert_400(api.post("/v3/resources", resource_body(**change), format="json"), field)
    assert Resource.objects.count() == 0


def test_duplicate_ehr_id_is_400(api):
    assert api.post("/v3/resources", resource_body(ehrId="P-1"), format="json").status_code == 201
    assert_400(api.post("/v3/resources", resource_body(ehrId="P-1"), format="json"), "ehrId")
    assert Resource.objects.count() == 1


def test_ehr_ids_may_repeat_across_tenants(api, other_tenant):
    assert api.post("/v3/resources", resource_body(ehrId="P-1"), format="json").status_code == 201
    assert other_tenant.v3().post("/v3/resources", resource_body(ehrId="P-1"), format="json").status_code == 201


@pytest.fixture
def world(api):
    return World(api)


def _block(world, **change):
    return {"ResourceId": world.resource["id"], "startDate": "2030-01-07T12:00:00-05:00", "endDate": "2030-01-07T13:00:00-05:00", **change}


BLOCK_CASES = [
    ("ResourceId", lambda w: _block(w, ResourceId=None)),
    ("ResourceId", lambda w: _block(w, LocationId=w.location["id"])),
    ("ResourceId", lambda w: _block(w, ResourceId=OTHER_UUID)),
    ("ResourceId", lambda w: _block(w, ResourceId="not-a-uuid")),
    ("ResourceId", lambda w: _block(w, ResourceId=w.location["id"])),
    ("ServiceId", lambda w: _block(w, ResourceId=None, ServiceId=12)),
    ("startDate", lambda w: _block(w, startDate="2030-01-07T12:00:00")),
    ("startDate", lambda w: _block(w, startDate="2030-01-07")),
    ("startDate", lambda w: _block(w, startDate="2030-02-30T12:00:00Z")),
    ("startDate", lambda w: _block(w, startDate="9999-12-31T23:00:00-05:00")),
    ("startDate", lambda w: _block(w, startDate="yesterday")),
    ("startDate", lambda w: _block(w, startDate=1700000000)),
    ("endDate", lambda w: _block(w, endDate="2030-01-07T11:00:00-05:00")),
    ("endDate", lambda w: _block(w, endDate="2030-01-07T12:00:00-05:00")),
    ("reason", lambda w: _block(w, reason=LONG)),
]


@pytest.mark.parametrize("field,body", BLOCK_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(BLOCK_CASES)])
def test_block_validation(api, world, field, body):
    before = Block.objects.count()
    assert_400(api.post("/v3/blocks", body(world), format="json"), field)
    assert Block.objects.count() == before


def _recurring(world, **change):
    return {
        "LocationId": world.location["id"],
        "frequency": "WEEKLY",
        "weekdays": [1],
        "startDate": "2030-01-01",
        "startTime": "12:00:00",
        "endTime": "13:00:00",
        **change,
    }


RECURRING_CASES = [
    ("frequency", lambda w: _recurring(w, frequency="HOURLY")),
    ("frequency", lambda w: _recurring(w, frequency=None)),
    ("interval", lambda w: _recurring(w, interval=0)),
    ("interval", lambda w: _recurring(w, interval=HUGE)),
    ("startDate", lambda w: _recurring(w, startDate="2030-01-01T00:00:00Z")),
    ("startDate", lambda w: _recurring(w, startDate="01/02/2030")),
    ("endDate", lambda w: _recurring(w, endDate="2029-12-31")),
    ("startTime", lambda w: _recurring(w, startTime="12:00")),
    ("startTime", lambda w: _recurring(w, startTime="12:00:00\n")),
    ("startTime", lambda w: _recurring(w, startTime="\uff11\uff12:00:00")),
    ("startDate", lambda w: _recurring(w, startDate="\uff12\uff10\uff13\uff10-01-01")),
    ("endTime", lambda w: _recurring(w, endTime="11:00:00")),
    ("endTime", lambda w: _recurring(w, endTime="25:00:00")),
    ("timezone", lambda w: _recurring(w, timezone="Nowhere/Land")),
    ("weekdays[0]", lambda w: _recurring(w, weekdays=[7])),
    ("weekdays", lambda w: _recurring(w, frequency="DAILY", weekdays=[1])),
    ("monthDay", lambda w: _recurring(w, frequency="MONTHLY", weekdays=[], monthDay=32)),
    ("monthDay", lambda w: _recurring(w, monthDay=3)),
    ("ResourceId", lambda w: _recurring(w, ResourceId=w.resource["id"])),
    ("ResourceId", lambda w: _recurring(w, LocationId=None)),
]


@pytest.mark.parametrize("field,body", RECURRING_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(RECURRING_CASES)])
def test_recurring_block_validation(api, world, field, body):
    before = RecurringBlock.objects.count()
    assert_400(api.post("/v3/recurringBlocks", body(world), format="json"), field)
    assert RecurringBlock.objects.count() == before


def test_patch_cannot_clear_the_only_scope(api, world):
    url = f"/v3/blocks/{world.block['id']}"
    assert_400(api.patch(url, {"ResourceId": None}, format="json"), "ResourceId")
    assert api.get(url).json()["ResourceId"] == world.resource["id"]


def test_patch_can_move_the_scope(api, world):
    url = f"/v3/blocks/{world.block['id']}"
    moved = api.patch(url, {"ResourceId": None, "LocationId": world.location["id"]}, format="json")
    assert moved.status_code == 200
    assert (moved.json()["ResourceId"], moved.json()["LocationId"]) == (None, world.location["id"])


def test_patch_end_before_existing_start_is_rejected(api, world):
    url = f"/v3/blocks/{world.block['id']}"
    assert_400(api.patch(url, {"endDate": "2030-01-07T11:00:00-05:00"}, format="json"), "endDate")


SUB_CASES = [
    ("services", "ServiceId", lambda w: {"ServiceId": OTHER_UUID, "LocationId": w.location["id"]}),
    ("services", "LocationId", lambda w: {"ServiceId": w.service["id"]}),
    ("services", "ServiceId", lambda w: {"ServiceId": [w.service["id"]], "LocationId": w.location["id"]}),
    ("allocations", "endDate", lambda w: {"startDate": "2030-01-05T09:00:00Z", "endDate": "2030-01-05T08:00:00Z"}),
    ("allocations", "startDate", lambda w: {"startDate": "2030-01-05 09:00", "endDate": "2030-01-05T10:00:00Z"}),
    ("allocations", "LocationId", lambda w: {"startDate": "2030-01-05T09:00:00Z", "endDate": "2030-01-05T10:00:00Z", "LocationId": OTHER_UUID}),
]


@pytest.mark.parametrize("sub,field,body", SUB_CASES, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(SUB_CASES)])
def test_resource_sub_collection_validation(api, world, sub, field, body):
    counts = (ResourceService.objects.count(), Allocation.objects.count())
    assert_400(api.post(f"/v3/resources/{world.resource['id']}/{sub}", body(world), format="json"), field)
    assert (ResourceService.objects.count(), Allocation.objects.count()) == counts


SCHEDULE_CASES = [
    ("weeklyAvailability", {}),
    ("weeklyAvailability", {"weeklyAvailability": None}),
    ("weeklyAvailability[1].endTime", {"weeklyAvailability": [
        {"dayOfWeek": 1, "startTime": "09:00:00", "endTime": "12:00:00"},
        {"dayOfWeek": 1, "startTime": "13:00:00", "endTime": "12:30:00"}]}),
    ("weeklyAvailability[0].LocationId", {"weeklyAvailability": [
        {"dayOfWeek": 1, "startTime": "09:00:00", "endTime": "12:00:00", "LocationId": OTHER_UUID}]}),
]


@pytest.mark.parametrize("field,body", SCHEDULE_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(SCHEDULE_CASES)])
def test_schedule_validation_keeps_the_old_schedule(api, world, field, body):
    before = list(Shift.objects.values_list("day_of_week", "start_time", "end_time"))
    assert_400(api.put(f"/v3/resources/{world.resource['id']}/schedule", body, format="json"), field)
    assert list(Shift.objects.values_list("day_of_week", "start_time", "end_time")) == before


MALFORMED = [
    ("not json", b"{name: 'x'"),
    ("array", b'[{"name": "x", "duration": 5}]'),
    ("scalar", b"42"),
    ("NaN", b'{"name": "x", "duration": NaN}'),
    ("overflowing float", b'{"name": "x", "duration": 1e999}'),
    ("lone surrogate", b'{"name": "\\ud800", "duration": 5}'),
    ("NUL in string", b'{"name": "a\\u0000b", "duration": 5}'),
    ("deep nesting", b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b', "duration": 5}'),
    ("invalid utf-8", b'{"name": "\xff\xfe", "duration": 5}'),
]


@pytest.mark.parametrize("label,raw", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_bodies_are_400_in_v3_shape(api, label, raw):
    response = api.generic("POST", "/v3/services", raw, content_type="application/json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["name"] == "BadRequestError" and body["errors"]
    assert Service.objects.count() == 0


def test_oversized_body_is_413(api):
    raw = json.dumps({"name": "x", "duration": 5, "padding": 0, "notes": "y" * 1_100_000}).encode()
    response = api.generic("POST", "/v3/services", raw, content_type="application/json")
    assert response.status_code == 413 and response.json()["name"] == "PayloadTooLargeError"
    assert Service.objects.count() == 0


def test_non_json_content_type_is_415(api):
    response = api.generic("POST", "/v3/services", b"name=x&duration=5", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and response.json()["name"] == "UnsupportedMediaTypeError"


def test_unknown_fields_are_ignored(api):
    response = api.post("/v3/services", service_body(colour="teal"), format="json")
    assert response.status_code == 201 and "colour" not in response.json()


@pytest.mark.parametrize("params,field", [("limit=0", "limit"), ("limit=101", "limit"), ("limit=abc", "limit"),
                                          ("page=0", "page"), ("page=-3", "page"), (f"page={HUGE}", "page")])
def test_pagination_parameters_are_validated(api, params, field):
    assert_400(api.get(f"/v3/locations?{params}"), field)


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_malformed_ids_in_paths_are_404(api, method):
    response = getattr(api, method)("/v3/locations/not-a-uuid")
    assert response.status_code == 404 and response.json()["name"] == "NotFoundError"


def test_method_not_allowed_keeps_the_shape(api):
    response = api.delete("/v3/locations")
    assert response.status_code == 405 and response.json()["name"] == "MethodNotAllowedError"


def test_changing_frequency_drops_fields_the_new_frequency_does_not_use(api, world):
    url = f"/v3/recurringBlocks/{world.recurring_block['id']}"
    assert api.get(url).json()["weekdays"] == [3]
    changed = api.patch(url, {"frequency": "DAILY"}, format="json")
    assert changed.status_code == 200
    assert changed.json()["weekdays"] == []


def test_ehr_ids_are_unique_per_emr_connection(api, tenant):
    from emr.services import emr_connection_create

    second = emr_connection_create(organization=tenant.organization, vendor="fhir", name="Second EMR").connection
    first_row = Resource.objects.create(organization=tenant.organization, name="A", ehr_id="P-9", emr_connection=tenant.emr_connection)
    Resource.objects.create(organization=tenant.organization, name="B", ehr_id="P-9", emr_connection=second)
    # A connection's row can be replaced through /v3/ keeping its EHR id ...
    assert api.put(f"/v3/resources/{first_row.pk}", resource_body(ehrId="P-9"), format="json").status_code == 200
    # ... but a row from no EMR may not reuse an EHR id the organization already has.
    assert_400(api.post("/v3/resources", resource_body(ehrId="P-9"), format="json"), "ehrId")


def _fields(response) -> set[str]:
    assert response.status_code == 400, response.content
    return {e["field"] for e in response.json()["errors"]}


@pytest.mark.parametrize("collection,body", [("blocks", _block), ("recurringBlocks", _recurring)])
def test_the_scope_error_names_the_fields_given(api, world, collection, body):
    both = body(world, ResourceId=None, LocationId=world.location["id"], ServiceId=world.service["id"])
    assert _fields(api.post(f"/v3/{collection}", both, format="json")) == {"LocationId", "ServiceId"}
    three = body(world, ResourceId=world.resource["id"], LocationId=world.location["id"], ServiceId=world.service["id"])
    assert _fields(api.post(f"/v3/{collection}", three, format="json")) == {"ResourceId", "LocationId", "ServiceId"}
    none = {k: v for k, v in body(world).items() if k not in ("ResourceId", "LocationId", "ServiceId")}
    assert _fields(api.post(f"/v3/{collection}", none, format="json")) == {"ResourceId", "LocationId", "ServiceId"}


@pytest.mark.parametrize("field", ["ResourceId", "LocationId", "ServiceId"])
@pytest.mark.parametrize("collection,body", [("blocks", _block), ("recurringBlocks", _recurring)])
def test_an_empty_string_reference_is_400_not_null(api, world, collection, body, field):
    model = {"blocks": Block, "recurringBlocks": RecurringBlock}[collection]
    before = model.objects.count()
    scoped = {k: v for k, v in body(world).items() if k not in ("ResourceId", "LocationId", "ServiceId")}
    other = "LocationId" if field != "LocationId" else "ResourceId"
    sent = {**scoped, other: world.location["id"] if other == "LocationId" else world.resource["id"], field: ""}
    assert field in _fields(api.post(f"/v3/{collection}", sent, format="json"))
    assert model.objects.count() == before


def test_empty_string_location_of_an_allocation_or_schedule_window_is_400(api, world):
    url = f"/v3/resources/{world.resource['id']}"
    allocation = {"startDate": "2030-01-05T09:00:00Z", "endDate": "2030-01-05T10:00:00Z", "LocationId": ""}
    assert "LocationId" in _fields(api.post(f"{url}/allocations", allocation, format="json"))
    window = {"dayOfWeek": 1, "startTime": "09:00:00", "endTime": "12:00:00", "LocationId": ""}
    assert "weeklyAvailability[0].LocationId" in _fields(api.put(f"{url}/schedule", {"weeklyAvailability": [window]}, format="json"))
    link = {"ServiceId": world.service["id"], "LocationId": ""}
    assert "LocationId" in _fields(api.post(f"{url}/services", link, format="json"))


@pytest.fixture
def concurrent_ehr_id(monkeypatch, tenant):
    """Another request commits a row with the same ehrId right after this request checked it is
    free, before this request inserts: the database's unique constraint decides."""
    from booking.api import serializers as api_serializers

    real = api_serializers._check_unique_ehr_id
    raced = []

    def check_then_lose_the_race(serializer, model, value):
        result = real(serializer, model, value)
        if value is not None and not raced:
            raced.append(value)
            model.objects.create(organization=tenant.organization, name="Concurrent", ehr_id=value)
        return result

    monkeypatch.setattr(api_serializers, "_check_unique_ehr_id", check_then_lose_the_race)
    return raced


@pytest.mark.parametrize("collection,model,body", [("resources", Resource, resource_body), ("locations", Location, location_body)])
def test_a_create_that_loses_the_ehr_id_race_is_400(api, concurrent_ehr_id, collection, model, body):
    response = api.post(f"/v3/{collection}", body(name="Mine", ehrId="E-1"), format="json")
    assert_400(response, "ehrId")
    assert concurrent_ehr_id == ["E-1"]
    assert list(model.objects.values_list("name", flat=True)) == ["Concurrent"]


@pytest.mark.parametrize("collection,model,body", [("resources", Resource, resource_body), ("locations", Location, location_body)])
@pytest.mark.parametrize("method", ["put", "patch"])
def test_an_update_that_loses_the_ehr_id_race_is_400(api, concurrent_ehr_id, collection, model, body, method):
    created = api.post(f"/v3/{collection}", body(name="Mine"), format="json").json()
    response = getattr(api, method)(f"/v3/{collection}/{created['id']}", body(name="Renamed", ehrId="E-2"), format="json")
    assert_400(response, "ehrId")
    assert concurrent_ehr_id == ["E-2"]
    mine = model.objects.get(pk=created["id"])
    assert (mine.name, mine.ehr_id) == ("Mine", None)
