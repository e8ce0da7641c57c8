"""``POST /v1/availability/fetch`` (seed 000): validation, the job against the sandbox EMR over
HTTP and against a fake EMR that fails, the event, and the same windows as ``GET /v1/availability``."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from rest_framework.test import APIClient

from booking.models import Appointment
from emr.models import Job
from emr.services.live_fetch import job_retry
from emr.services.providers import providers_sync
from tenants.models import Event
from tests.conftest import make_tenant
from tests.emr.availability_factories import World
from tests.emr.conftest import SANDBOX_ZONE, connect_fake, performers, run_queued_tasks
from tests.emr.test_live_fetch import expected_appointments, next_weekday

EVENT = "availability.live_fetch_completed"


@pytest.fixture(autouse=True)
def _big_pages(settings):
    settings.EMR_PAGE_SIZE = 500


def the_event(job_id: str) -> dict:
    (event,) = Event.objects.filter(job_id=job_id, type=EVENT)
    payload = json.loads(event.body)
    assert payload == event.payload
    return payload


def post(client, body) -> tuple[int, dict]:
    response = client.post("/v1/availability/fetch", body, format="json")
    return response.status_code, response.json()


# --- validation ------------------------------------------------------------------------------

ONE_DAY = {"start_date": "2025-05-05", "end_date": "2025-05-05", "provider_ids": ["P-1"]}
INVALID_BODIES = [
    ({"provider_ids": None}, "Missing required parameters: provider_ids."),
    ({"provider_ids": []}, "Missing required parameters: provider_ids."),
    ({"start_date": None, "end_date": None}, "Missing required parameters: start_date, end_date."),
    ({"provider_ids": "P-1"}, "Invalid provider_ids: must be an array of EHR ids (strings)."),
    ({"provider_ids": [f"P-{i}" for i in range(11)]}, "Invalid provider_ids: at most 10 providers."),
    ({"end_date": "2025-05-11"}, "Invalid end_date: with one provider, at most 5 days after start_date."),
    ({"provider_ids": ["P-1", "P-2"], "end_date": "2025-05-06"},
     "Invalid end_date: with 2 to 10 providers, start_date must equal end_date."),
    ({"end_date": "2025-05-04"}, "end_date must be after start_date."),
    ({"start_date": "2025-05-05T09:00:00-04:00"}, "Invalid date format. Use ISO format (YYYY-MM-DD)."),
    ({"location_ids": "LOC-1"}, "Invalid location_ids: must be an array of EHR ids (strings)."),
    ({"buffer": "10"}, "Invalid buffer: must be an integer."),
    ({"buffer": 60}, "Invalid buffer: must be at most 59 minutes."),
    ({"fallback_to_default_hours": "true"}, "Invalid fallback_to_default_hours: must be true or false."),
    ({"calculation_method": "blocks"}, "Invalid calculation_method. Use one of: gaps, slots, equal_slots."),
    ({"daily_appointment_limit": 2}, "Invalid daily_appointment_limit: requires daily_limit_type."),
    ({"max_slot_duration": 12}, "Invalid max_slot_duration: must be a multiple of 5 minutes."),
    ({"provider_type": "tertiary"}, "Invalid provider_type. Use one of: primary, secondary."),
    ({"visit_type": "XYZ"}, "Invalid visit_type: 'XYZ' is not a visit type (use all or a visit-type code of GET /v1/settings)."),
    ({"facility_scoped_scheduling": 1}, "Invalid facility_scoped_scheduling: must be true or false."),
    ({"providers": ["P-1"]}, "Unknown parameter: providers."),
]


@pytest.mark.parametrize("change,message", INVALID_BODIES, ids=[m for _, m in INVALID_BODIES])
def test_invalid_bodies_are_a_400_naming_the_parameter_and_queue_nothing(db, change, message):
    world = World(make_tenant("Clinic", timezone_name="America/New_York"))
    body = {k: v for k, v in {**ONE_DAY, **change}.items() if v is not None}
    status, answer = post(world.tenant.v1(), body)
    assert (status, answer) == (400, {"success": False, "message": message})
    assert not Job.objects.exists()


def test_accepted_bodies_every_option_and_location_ids_as_an_array(db, django_capture_on_commit_callbacks):
    world = World(make_tenant("Clinic", timezone_name="America/New_York"))
    five_days = {
        "start_date": "2025-05-05", "end_date": "2025-05-10", "provider_ids": ["P-1"], "buffer": 10, "visit_type": "fu",
        "calculation_method": "equal_slots", "daily_appointment_limit": 4, "daily_limit_type": "NP", "provider_type": "secondary",
        "fallback_to_default_hours": True, "max_slot_duration": 30, "facility_scoped_scheduling": True, "location_ids": ["LOC-1"],
    }
    with django_capture_on_commit_callbacks(execute=True):
        status, answer = post(world.tenant.v1(), five_days)
    assert status == 202, answer
    assert answer == {
        "success": True,
        "message": "Live availability fetch accepted. Results will be sent via webhook when ready.",
        "job_id": answer["job_id"],
    }
    job = Job.objects.get(pk=answer["job_id"])
    assert job.kind == Job.Kind.AVAILABILITY_FETCH and job.status == Job.Status.QUEUED and job.task_id
    assert job.params == {
        "first": "2025-05-05", "last": "2025-05-10", "clip_start": None, "clip_end": None, "provider_ids": ["P-1"],
        "provider_type": "secondary", "calculation_method": "equal_slots", "buffer": 10, "visit_type": "FU",
        "daily_appointment_limit": 4, "daily_limit_type": "NP", "max_slot_duration": 30, "facility_scoped_scheduling": True,
        "location_ids": ["LOC-1"], "fallback_to_default_hours": True,
    }
    status, _ = post(world.tenant.v1(), {"start_date": "2025-05-05", "end_date": "2025-05-05", "provider_ids": [f"P-{i}" for i in range(10)]})
    assert status == 202


def test_a_vendor_without_adapter_is_refused(db):
    from emr.models import EmrConnection

    tenant = make_tenant("Clinic")
    EmrConnection.objects.filter(pk=tenant.emr_connection.pk).update(vendor="epic")
    status, answer = post(tenant.v1(), ONE_DAY)
    assert status == 400 and answer["message"] == (
        "Live fetch for availability is not supported for Epic. Currently supported: eClinicalWorks, FHIR R4 server, Sandbox EMR."
    )


# --- the job against the sandbox EMR over HTTP -----------------------------------------------


def busy_day(provider: str) -> date:
    """A coming weekday on which the sandbox has a booked appointment with ``provider`` as primary."""
    day = next_weekday(1)
    for _ in range(20):
        found = [
            a for a in expected_appointments(day, day)
            if provider in performers(a, "PPRF") and a["status"] in ("booked", "pending")
        ]
        if found and day.weekday() < 5:
            return day
        day += timedelta(days=1)
    raise AssertionError("no busy day")


OPTIONS = {"buffer": 10, "visit_type": "FU", "max_slot_duration": 60}


def test_live_fetch_against_the_sandbox_writes_the_cache_and_matches_the_get(sandbox_tenant):
    tenant = sandbox_tenant
    providers_sync(connection=tenant.emr_connection)
    day = busy_day("PRV-1001")
    query = {"start_date": day.isoformat(), "end_date": day.isoformat(), "provider_ids": "PRV-1001", **OPTIONS}
    before = tenant.v1().get("/v1/availability", query).json()["results"]["availability"]

    status, answer = post(tenant.v1(), {**query, "provider_ids": ["PRV-1001"]})
    assert status == 202, answer
    finished = run_queued_tasks()
    assert [t["args"] for t in finished] == [(answer["job_id"],)] and all(t["success"] for t in finished)
    job = Job.objects.get(pk=answer["job_id"])
    assert job.status == Job.Status.SUCCEEDED, job.error

    # The EMR's appointments are in the cache ...
    expected = {a["id"] for a in expected_appointments(day, day) if "PRV-1001" in performers(a, "PPRF") | performers(a, "SPRF")}
    cached = set(Appointment.objects.filter(emr_connection=tenant.emr_connection).values_list("ehr_appointment_id", flat=True))
    assert expected and expected <= cached
    assert job.counts["fetched"] == len(expected) and job.counts["windows"] >= 1

    # ... the event carries the windows, the same a GET answers now, and they differ from before.
    payload = the_event(job.pk)
    assert set(payload) == {"id", "access_token_reference_id", "job_id", "timestamp", "type", "action", "data"}
    assert payload["type"] == EVENT and payload["job_id"] == job.pk
    assert payload["access_token_reference_id"] == tenant.emr_connection.access_token_reference_id
    data = payload["data"]
    assert (data["success"], data["start_date"], data["end_date"], data["provider_ids"]) == (True, day.isoformat(), day.isoformat(), ["PRV-1001"])
    after = tenant.v1().get("/v1/availability", query).json()["results"]["availability"]
    assert data["availability"] == after
    assert after != before and all(w["provider_id"] == "PRV-1001" for w in after)
    assert all(w["duration_string"] == "1h" or "h" not in w["duration_string"] for w in after)  # max_slot_duration=60
    polled = tenant.v1().get("/v1/webhook-events", {"job_id": job.pk}).json()["webhook_events"]
    assert EVENT in {e["type"] for e in polled}


def test_slots_from_the_live_fetch_equal_the_get(sandbox_tenant):
    tenant = sandbox_tenant
    providers_sync(connection=tenant.emr_connection)
    day = busy_day("PRV-1002")
    body = {"start_date": day.isoformat(), "end_date": day.isoformat(), "provider_ids": ["PRV-1002", "PRV-1004"], "calculation_method": "slots"}
    status, answer = post(tenant.v1(), body)
    assert status == 202, answer
    run_queued_tasks()
    data = the_event(answer["job_id"])["data"]
    get = tenant.v1().get("/v1/availability", {**body, "provider_ids": "PRV-1002,PRV-1004"}).json()["results"]["availability"]
    assert data["success"] is True and data["availability"] == get
    assert {w["provider_id"] for w in get} == {"PRV-1002", "PRV-1004"}
    assert all({"visit_type", "available_appointments", "max_visits", "facility_id"} <= set(w) for w in get)


# --- a fake EMR that fails -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_failed_fetch_emits_success_false_with_the_reason_and_can_be_retried(fake_fhir):
    tenant = make_tenant("Fault Clinic", timezone_name=SANDBOX_ZONE)
    connection = connect_fake(tenant, fake_fhir)
    client = APIClient()
    client.credentials(HTTP_CLIENT_ID=tenant.client_id, HTTP_CLIENT_SECRET=tenant.client_secret, HTTP_ACCESS_TOKEN=connection.issued_access_token)
    fake_fhir.fail(
        "Appointment", on_call=1, status=400,
        body={"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "too-costly", "diagnostics": "Search range too wide"}]},
    )
    day = next_weekday(1)
    status, answer = post(client, {"start_date": day.isoformat(), "end_date": day.isoformat(), "provider_ids": ["PRV-1001"]})
    assert status == 202, answer
    run_queued_tasks()
    job = Job.objects.get(pk=answer["job_id"])
    assert job.status == Job.Status.FAILED
    assert job.error == "The EMR refused the request (searching Appointment, HTTP 400): error too-costly: Search range too wide."
    data = the_event(job.pk)["data"]
    assert data["success"] is False and data["error"] == job.error and data["availability"] == []
    assert not Appointment.objects.filter(emr_connection=connection).exists()

    # Retried (what the admin's action does), the EMR answers this time.
    assert job_retry(job=job) is True
    run_queued_tasks()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.attempts == 2
    outcomes = [e.payload["data"]["success"] for e in Event.objects.filter(job_id=job.pk, type=EVENT).order_by("created_at", "id")]
    assert outcomes == [False, True]


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_emr_fails_the_job_with_the_reason(fake_fhir):
    tenant = make_tenant("Fault Clinic", timezone_name=SANDBOX_ZONE)
    connection = connect_fake(tenant, fake_fhir)
    for call in (1, 2, 3, 4):
        fake_fhir.fail("Appointment", on_call=call, status=503)
    client = APIClient()
    client.credentials(HTTP_CLIENT_ID=tenant.client_id, HTTP_CLIENT_SECRET=tenant.client_secret, HTTP_ACCESS_TOKEN=connection.issued_access_token)
    day = next_weekday(1)
    status, answer = post(client, {"start_date": day.isoformat(), "end_date": day.isoformat(), "provider_ids": ["PRV-1001"]})
    assert status == 202, answer
    run_queued_tasks()
    job = Job.objects.get(pk=answer["job_id"])
    assert job.status == Job.Status.FAILED and "503" in job.error
    data = the_event(job.pk)["data"]
    assert (data["success"], data["error"]) == (False, job.error)
