"""Every validation message of the ``/v1/`` family: exact text, 400 in ``{"success": false,
"message"}``, and nothing written."""

from __future__ import annotations

import json

import pytest

from booking.models import Location, Resource, Shift
from emr.models import Job, LocalHours

MISSING_BOTH = "Missing required parameters: start_date, end_date."
BAD_DATE = "Invalid date format. Use ISO format (YYYY-MM-DD)."
END_BEFORE = "end_date must be after start_date."
TOO_LONG = "Date range cannot exceed 7 days."


def post_fetch(tenant, body):
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return tenant.v1().generic("POST", "/v1/appointments/fetch", raw, content_type="application/json")


FETCH_CASES = [
    ({}, MISSING_BOTH),
    ({"search_by": "date_range"}, MISSING_BOTH),
    ({"start_date": "2025-01-01"}, "Missing required parameters: end_date."),
    ({"end_date": "2025-01-01"}, "Missing required parameters: start_date."),
    ({"start_date": "", "end_date": "2025-01-01"}, "Missing required parameters: start_date."),
    ({"start_date": None, "end_date": None}, MISSING_BOTH),
    ({"start_date": "2025/01/01", "end_date": "2025-01-02"}, BAD_DATE),
    ({"start_date": "2025-01-01", "end_date": "01-02-2025"}, BAD_DATE),
    ({"start_date": "2025-02-30", "end_date": "2025-03-01"}, BAD_DATE),
    ({"start_date": "2025-01-01T00:00:00Z", "end_date": "2025-01-02"}, BAD_DATE),
    ({"start_date": 20250101, "end_date": "2025-01-02"}, BAD_DATE),
    ({"start_date": "0001-01-01", "end_date": "0001-01-02"}, BAD_DATE),
    ({"start_date": "2025-01-07", "end_date": "2025-01-06"}, END_BEFORE),
    ({"start_date": "2025-01-01", "end_date": "2025-01-08"}, TOO_LONG),
    ({"start_date": "2025-01-01", "end_date": "2026-01-01"}, TOO_LONG),
    ({"search_by": "mrn"}, "Missing required parameters: mrn."),
    ({"search_by": "mrn", "mrn": "  "}, "Missing required parameters: mrn."),
    ({"search_by": "mrn", "mrn": 12345}, "Invalid mrn: must be a string."),
    ({"search_by": "mrn", "mrn": "9" * 65}, "Invalid mrn: at most 64 characters."),
    ({"search_by": "provider"}, "Missing required parameters: provider_ids, start_date, end_date."),
    ({"search_by": "provider", "provider_ids": [], "start_date": "2025-01-01", "end_date": "2025-01-01"}, "Missing required parameters: provider_ids."),
    ({"search_by": "provider", "provider_ids": ["P1"]}, MISSING_BOTH),
    ({"search_by": "provider", "provider_ids": "P1", "start_date": "2025-01-01", "end_date": "2025-01-01"},
     "provider_ids must be an array of 1 to 10 EHR provider ids (strings)."),
    ({"search_by": "provider", "provider_ids": [f"P{i}" for i in range(11)], "start_date": "2025-01-01", "end_date": "2025-01-01"},
     "provider_ids must be an array of 1 to 10 EHR provider ids (strings)."),
    ({"search_by": "provider", "provider_ids": [1], "start_date": "2025-01-01", "end_date": "2025-01-01"},
     "provider_ids must be an array of 1 to 10 EHR provider ids (strings)."),
    ({"search_by": "provider", "provider_ids": ["P1"], "start_date": "2025-01-01", "end_date": "2025-01-07"},
     "With one provider, end_date can be at most 5 days after start_date."),
    ({"search_by": "provider", "provider_ids": ["P1", "P2"], "start_date": "2025-01-01", "end_date": "2025-01-02"},
     "With 2 to 10 providers, start_date must equal end_date."),
    ({"search_by": "provider", "provider_ids": ["P1"], "start_date": "2025-01-03", "end_date": "2025-01-01"}, END_BEFORE),
    ({"search_by": "everything", "start_date": "2025-01-01", "end_date": "2025-01-01"}, "Invalid search_by. Use one of: date_range, mrn, provider."),
    ({"search_by": 1}, "Invalid search_by. Use one of: date_range, mrn, provider."),
    ({"start_date": "2025-01-01", "end_date": "2025-01-01", "colour": "blue"}, "Unknown parameter: colour."),
    ([], "Request body must be a JSON object."),
    ("not json", None),
]


@pytest.mark.parametrize("body,message", FETCH_CASES, ids=[str(i) for i in range(len(FETCH_CASES))])
def test_fetch_validation_messages(tenant, body, message):
    response = post_fetch(tenant, body)
    assert response.status_code == 400, response.content
    payload = response.json()
    assert set(payload) == {"success", "message"} and payload["success"] is False
    if message is not None:
        assert payload["message"] == message
    else:
        assert payload["message"].startswith("Malformed JSON body")
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"start_date": "2025-01-01", "end_date": "2025-01-01"},
        {"start_date": "2025-01-01", "end_date": "2025-01-07"},
        {"search_by": "date_range", "start_date": "2025-12-29", "end_date": "2026-01-04", "mrn": "ignored in this mode"},
        {"search_by": "mrn", "mrn": "12345"},
        {"search_by": "provider", "provider_ids": ["P1"], "start_date": "2025-01-01", "end_date": "2025-01-06"},
        {"search_by": "provider", "provider_ids": [f"P{i}" for i in range(10)], "start_date": "2025-01-01", "end_date": "2025-01-01"},
        {"search_by": None, "start_date": "2025-01-01", "end_date": "2025-01-02"},
    ],
)
def test_fetch_accepts_the_boundaries(tenant, body):
    response = post_fetch(tenant, body)
    assert response.status_code == 202, response.content
    assert Job.objects.get(pk=response.json()["job_id"]).emr_connection_id == tenant.emr_connection.pk


def test_fetch_needs_json(tenant):
    response = tenant.v1().post("/v1/appointments/fetch", {"start_date": "2025-01-01"})  # multipart form
    assert response.status_code == 415 and response.json()["success"] is False
    assert not Job.objects.exists()


APPOINTMENT_QUERY_CASES = [
    ("", MISSING_BOTH),
    ("start_date=2025-01-01", "Missing required parameters: end_date."),
    ("end_date=2025-01-01", "Missing required parameters: start_date."),
    ("start_date=2025-01-01&end_date=tomorrow", BAD_DATE),
    ("start_date=2025-13-01&end_date=2025-01-02", BAD_DATE),
    ("start_date=2025-01-02&end_date=2025-01-01", END_BEFORE),
    ("start_date=2025-01-01T10:00:00%2B00:00&end_date=2025-01-01T10:00:00%2B00:00", END_BEFORE),
    ("start_date=2025-01-01&end_date=2026-06-01", "Date range cannot exceed 366 days."),
    ("start_date=2025-01-01&end_date=2025-01-02&provider=P1", "Unknown parameter: provider."),
    ("start_date=2025-01-01&start_date=2025-01-02&end_date=2025-01-03", "Parameter start_date may be given only once."),
    ("start_date=2025-01-01&end_date=2025-01-02&patient_mrn=" + "1" * 65, "Invalid patient_mrn: at most 64 characters."),
    ("start_date=2025-01-01&end_date=2025-01-02&patient_name=a%00b", "Invalid patient_name."),
]


@pytest.mark.parametrize("query,message", APPOINTMENT_QUERY_CASES, ids=[str(i) for i in range(len(APPOINTMENT_QUERY_CASES))])
def test_cached_appointments_query_validation(tenant, query, message):
    response = tenant.v1().get(f"/v1/appointments?{query}")
    assert response.status_code == 400, response.content
    assert response.json() == {"success": False, "message": message}


# --- PATCH providers / locations -------------------------------------------------------------


@pytest.fixture
def provider(tenant):
    resource = Resource.objects.create(
        organization=tenant.organization, name="Dr A", type="provider", ehr_id="P-1", emr_connection=tenant.emr_connection
    )
    Shift.objects.create(organization=tenant.organization, resource=resource, day_of_week=1, start_time="09:00", end_time="17:00")
    return resource


@pytest.fixture
def facility(tenant):
    return Location.objects.create(organization=tenant.organization, name="Main", timezone="UTC", ehr_id="F-1", emr_connection=tenant.emr_connection)


def shift(**overrides):
    return {"start": "T08:00:00", "end": "T12:00:00", **overrides}


PROVIDER_CASES = [
    ({"status": "retired"}, "status: \"retired\" is not a valid choice."),
    ({"status": 1}, "status: Must be a string."),
    ({"hide_in_availability": "yes"}, "hide_in_availability: Must be true or false."),
    ({"name": "New"}, "name: Unknown field."),
    ({"hours": {"day": "Monday"}}, "hours: Expected a list of items but got type \"dict\"."),
    ({"hours": [{"day": "Funday", "shifts": []}]}, "hours[0].day: \"Funday\" is not a valid choice."),
    ({"hours": [{"day": "Monday"}]}, "hours[0].shifts: This field is required."),
    ({"hours": [{"day": "Monday", "shifts": [shift(start="8am")]}]}, "hours[0].shifts[0].start: Must be a time like T08:00:00 (T00:00:00 to T23:59:59)."),
    ({"hours": [{"day": "Monday", "shifts": [shift(end="T25:00:00")]}]}, "hours[0].shifts[0].end: Must be a time like T08:00:00 (T00:00:00 to T24:00:00)."),
    ({"hours": [{"day": "Monday", "shifts": [shift(start="T08:00:00\n")]}]}, "hours[0].shifts[0].start: Must be a time like T08:00:00 (T00:00:00 to T23:59:59)."),
    ({"hours": [{"day": "Monday", "shifts": [shift(start="T\uff10\uff18:00:00")]}]}, "hours[0].shifts[0].start: Must be a time like T08:00:00 (T00:00:00 to T23:59:59)."),
    ({"hours": [{"day": "Monday", "shifts": [shift(start="T12:00:00", end="T08:00:00")]}]}, "hours[0].shifts[0].end: Must be after start."),
    ({"hours": [{"day": "Monday", "shifts": [shift(facility_id="NOPE")]}]}, "hours[0].shifts[0].facility_id: Unknown facility_id 'NOPE'."),
    ({"hours": [{"day": "Monday", "shifts": [shift(set_start_date="2025-02-01", set_end_date="2025-01-01")]}]},
     "hours[0].shifts[0].set_end_date: Must be on or after set_start_date."),
    ({"hours": [{"day": "Monday", "shifts": [shift(set_start_date="02/01/2025")]}]},
     "hours[0].shifts[0].set_start_date: Must be a date in YYYY-MM-DD format between 1970 and 2200."),
    ({"hours": [{"day": "Monday", "shifts": [shift(recurrence={"recur_interval_type": "days", "recur_interval_amount": 2})]}]},
     "hours[0].shifts[0].recurrence.recur_interval_type: \"days\" is not a valid choice."),
    ({"hours": [{"day": "Monday", "shifts": [shift(recurrence={"recur_interval_type": "weeks", "recur_interval_amount": 0})]}]},
     "hours[0].shifts[0].recurrence.recur_interval_amount: Ensure this value is greater than or equal to 1."),
    ({"hours": [{"day": "Monday", "shifts": [shift(recurrence={"recur_interval_type": "weeks", "recur_interval_amount": 2})]}]},
     "hours[0].shifts[0].set_start_date: Required when recurring every 2 or more weeks (it anchors the weeks)."),
    ({"hours": [{"day": "Monday", "shifts": [shift(visit_type_rules=[{"start_time": "T07:00:00", "end_time": "T09:00:00", "total_visits": 4, "visit_type_id": "FU"}])]}]},
     "hours[0].shifts[0].visit_type_rules[0]: Must lie within the shift's start and end."),
    ({"hours": [{"day": "Monday", "shifts": [shift(visit_type_rules=[{"start_time": "T08:00:00", "end_time": "T09:00:00", "total_visits": 0, "visit_type_id": "FU"}])]}]},
     "hours[0].shifts[0].visit_type_rules[0].total_visits: Ensure this value is greater than or equal to 1."),
    ({"hours": [{"day": "Monday", "shifts": [shift(visit_type_rules=[{"start_time": "T08:00:00", "end_time": "T09:00:00", "total_visits": 2}])]}]},
     "hours[0].shifts[0].visit_type_rules[0].visit_type_id: This field is required."),
    ({"hours": [{"day": "Monday", "shifts": [shift(colour="red")]}]}, "hours[0].shifts[0].colour: Unknown field."),
    ({"hours": [{"day": "Monday", "shifts": [shift(total_visits=10**30)]}]}, "hours[0].shifts[0].total_visits: Unknown field."),
]


@pytest.mark.parametrize("body,message", PROVIDER_CASES, ids=[str(i) for i in range(len(PROVIDER_CASES))])
def test_provider_patch_validation(tenant, provider, facility, body, message):
    before = list(Shift.objects.filter(resource=provider).values())
    for url in (f"/v1/providers/{provider.pk}", "/v1/providers/ehr/P-1"):
        response = tenant.v1().patch(url, body, format="json")
        assert response.status_code == 400, response.content
        assert response.json() == {"success": False, "message": message}
    provider.refresh_from_db()
    assert provider.status == "active" and provider.hide_in_availability is False
    assert list(Shift.objects.filter(resource=provider).values()) == before
    assert not LocalHours.objects.exists()


def test_unknown_provider_is_404_in_the_v1_shape(tenant, provider):
    for url in ("/v1/providers/8d6f3c55-2b6a-4c53-9a4c-000000000000", "/v1/providers/not-a-uuid", "/v1/providers/ehr/NOPE"):
        response = tenant.v1().patch(url, {"status": "inactive"}, format="json")
        assert response.status_code == 404
        assert response.json() == {"success": False, "message": "Provider not found."}


def test_location_patch_validation(tenant, facility):
    for body, message in [
        ({"status": "closed"}, "status: \"closed\" is not a valid choice."),
        ({"name": "x"}, "name: Unknown field."),
        ([], "Invalid data. Expected a dictionary, but got list."),
    ]:
        response = tenant.v1().patch(f"/v1/locations/{facility.pk}", body, format="json")
        assert response.status_code == 400 and response.json() == {"success": False, "message": message}
    facility.refresh_from_db()
    assert facility.status == "active"
    missing = tenant.v1().patch("/v1/locations/8d6f3c55-2b6a-4c53-9a4c-000000000000", {"status": "inactive"}, format="json")
    assert missing.status_code == 404 and missing.json() == {"success": False, "message": "Location not found."}


@pytest.mark.parametrize("raw", ["null", '"2025-01-01"', "12"])
def test_fetch_body_that_is_not_an_object_is_400(tenant, raw):
    response = post_fetch(tenant, raw)
    assert response.status_code == 400
    assert response.json() == {"success": False, "message": "Request body must be a JSON object."}
    assert not Job.objects.exists()
