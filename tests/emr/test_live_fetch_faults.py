"""Live fetches against a fault-injecting FHIR server on a loopback port: paging, 429 with
Retry-After, tokens expiring mid-fetch, page caps, OperationOutcome errors, rejected credentials,
appointments that change or vanish in the EMR. Every run goes through the worker code."""

from __future__ import annotations

import math
import time
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from booking.models import Appointment
from emr.models import EmrConnection, Job
from tenants.models import Event
from tests.conftest import make_tenant
from tests.emr.conftest import SANDBOX_ZONE, connect_fake, run_queued_tasks
from tests.emr.test_live_fetch import next_weekday

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(fake_fhir):
    tenant = make_tenant("Fault Clinic", timezone_name=SANDBOX_ZONE)
    connection = connect_fake(tenant, fake_fhir)
    client = APIClient()
    client.credentials(
        HTTP_CLIENT_ID=tenant.client_id, HTTP_CLIENT_SECRET=tenant.client_secret, HTTP_ACCESS_TOKEN=connection.issued_access_token
    )
    return tenant, connection, client, fake_fhir


def fetch_and_run(client, body) -> Job:
    response = client.post("/v1/appointments/fetch", body, format="json")
    assert response.status_code == 202, response.content
    run_queued_tasks()
    return Job.objects.get(pk=response.json()["job_id"])


def day_body(days: int = 1) -> dict:
    start = next_weekday(1)
    return {"start_date": start.isoformat(), "end_date": (start + timedelta(days=days - 1)).isoformat()}


def expected_ids(fake, body) -> set[str]:
    from datetime import date

    start, end = date.fromisoformat(body["start_date"]), date.fromisoformat(body["end_date"])
    return {a["id"] for a in fake.dataset.appointments(first=start, last=end)}


@override_settings(EMR_PAGE_SIZE=10)
def test_every_page_is_followed_by_next_links(world):
    tenant, connection, client, fake = world
    body = day_body(2)
    job = fetch_and_run(client, body)
    assert job.status == Job.Status.SUCCEEDED, job.error
    wanted = expected_ids(fake, body)
    assert len(wanted) > 30
    pages = fake.requests_for("Appointment")
    assert len(pages) == math.ceil(len(wanted) / 10) == job.counts["pages"]
    assert [dict(r.query).get("_getpagesoffset") for r in pages[1:]] == [str(10 * i) for i in range(1, len(pages))]
    assert set(Appointment.objects.filter(emr_connection=connection).values_list("ehr_appointment_id", flat=True)) == wanted


@override_settings(EMR_PAGE_SIZE=10)
def test_a_429_in_the_middle_waits_retry_after_and_repeats_that_page(world):
    tenant, connection, client, fake = world
    fake.fail("Appointment", on_call=2, status=429, headers={"Retry-After": "1"})
    body = day_body(1)
    job = fetch_and_run(client, body)
    assert job.status == Job.Status.SUCCEEDED, job.error
    pages = fake.requests_for("Appointment")
    assert [r.status for r in pages[:3]] == [200, 429, 200]
    assert pages[1].query == pages[2].query  # the same page, asked again
    assert job.counts["retries_429"] == 1
    assert set(Appointment.objects.filter(emr_connection=connection).values_list("ehr_appointment_id", flat=True)) == expected_ids(fake, body)


@override_settings(EMR_PAGE_SIZE=10)
def test_a_token_expiring_mid_fetch_is_minted_again(world):
    tenant, connection, client, fake = world
    fake.expire_tokens("Appointment", on_call=3)
    body = day_body(1)
    job = fetch_and_run(client, body)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert len(fake.requests_for("token")) == 2
    pages = fake.requests_for("Appointment")
    assert [r.status for r in pages[:4]] == [200, 200, 401, 200]
    assert pages[2].authorization != pages[3].authorization  # a new token
    assert job.counts["tokens_minted"] == 2 and job.counts["retries_401"] == 1
    assert set(Appointment.objects.filter(emr_connection=connection).values_list("ehr_appointment_id", flat=True)) == expected_ids(fake, body)
    connection.refresh_from_db()
    assert connection.login_required_at is None


def test_token_is_reused_across_fetches_until_it_expires(world):
    tenant, connection, client, fake = world
    fetch_and_run(client, day_body(1))
    fetch_and_run(client, day_body(1))
    assert len(fake.requests_for("token")) == 1


@override_settings(EMR_PAGE_SIZE=5, EMR_MAX_PAGES=2)
def test_more_pages_than_the_cap_fail_the_job_and_write_nothing(world):
    tenant, connection, client, fake = world
    job = fetch_and_run(client, day_body(1))
    assert job.status == Job.Status.FAILED
    assert job.error == "The EMR returned more than 2 pages of Appointment results; narrow the request."
    assert len(fake.requests_for("Appointment")) == 2
    assert not Appointment.objects.filter(emr_connection=connection).exists()
    event = Event.objects.get(job_id=job.pk)
    assert event.payload["type"] == "appointment.live_fetch_completed"
    assert event.payload["data"]["success"] is False
    assert event.payload["data"]["error"] == job.error
    assert event.payload["data"]["appointment_count"] == 0 and event.payload["data"]["appointments"] == []


def test_an_operation_outcome_becomes_a_clear_job_error(world):
    tenant, connection, client, fake = world
    fake.fail(
        "Appointment",
        on_call=1,
        status=400,
        body={"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "too-costly", "diagnostics": "Search range too wide"}]},
    )
    job = fetch_and_run(client, day_body(1))
    assert job.status == Job.Status.FAILED
    assert job.error == "The EMR refused the request (searching Appointment, HTTP 400): error too-costly: Search range too wide."
    assert Event.objects.get(job_id=job.pk).payload["data"]["error"] == job.error
    connection.refresh_from_db()
    assert connection.login_required_at is None  # not a credentials problem


def test_rejected_credentials_fail_the_job_and_emit_login_required_once(world):
    tenant, connection, client, fake = world
    fake.reject_clients = True
    job = fetch_and_run(client, day_body(1))
    assert job.status == Job.Status.FAILED
    assert job.error == "The EMR's token endpoint refused our credentials (HTTP 401): invalid_client: Unknown client 'test-client'."
    connection.refresh_from_db()
    assert connection.login_required_at is not None and connection.last_error == job.error
    login = Event.objects.filter(organization=tenant.organization, type="access_token.login_required")
    assert login.count() == 1
    payload = login.get().payload
    assert payload["object"] == "event" and payload["type"] == "access_token.login_required"
    assert payload["data"]["access_token_reference_id"] == connection.access_token_reference_id
    assert payload["data"]["reason"] == job.error

    fetch_and_run(client, day_body(1))  # still failing: no second event
    assert login.count() == 1

    fake.reject_clients = False
    job = fetch_and_run(client, day_body(1))
    assert job.status == Job.Status.SUCCEEDED
    connection.refresh_from_db()
    assert connection.login_required_at is None and connection.last_error == ""


def test_appointments_gone_from_the_emr_are_cancelled_within_the_scope_only(world):
    tenant, connection, client, fake = world
    first, second = next_weekday(1), next_weekday(1) + timedelta(days=1)
    while second.weekday() >= 5:
        second += timedelta(days=1)
    fetch_and_run(client, {"start_date": first.isoformat(), "end_date": first.isoformat()})
    fetch_and_run(client, {"start_date": second.isoformat(), "end_date": second.isoformat()})
    from datetime import datetime, time
    from zoneinfo import ZoneInfo

    end_of_first = datetime.combine(first + timedelta(days=1), time(0), tzinfo=ZoneInfo(SANDBOX_ZONE))
    active = Appointment.objects.filter(emr_connection=connection).exclude(status=Appointment.Status.CANCELLED)
    gone_in_scope = active.filter(start__lt=end_of_first).first()
    gone_out_of_scope = active.filter(start__gte=end_of_first).first()
    assert gone_in_scope and gone_out_of_scope
    fake.hidden = {gone_in_scope.ehr_appointment_id, gone_out_of_scope.ehr_appointment_id}

    job = fetch_and_run(client, {"start_date": first.isoformat(), "end_date": first.isoformat()})
    assert job.counts["cancelled_missing"] == 1
    gone_in_scope.refresh_from_db()
    gone_out_of_scope.refresh_from_db()
    assert gone_in_scope.status == Appointment.Status.CANCELLED and gone_in_scope.cancelled_at is not None
    assert gone_in_scope.ehr_status == "cancelled"
    assert gone_out_of_scope.status == Appointment.Status.BOOKED  # not fetched this time: kept
    cancelled_events = Event.objects.filter(organization=tenant.organization, type="appointment.cancelled")
    assert [e.payload["data"]["ehr_appointment_id"] for e in cancelled_events] == [gone_in_scope.ehr_appointment_id]

    # It comes back (rescheduled into the range): booked again, not duplicated.
    fake.hidden = set()
    job = fetch_and_run(client, {"start_date": first.isoformat(), "end_date": first.isoformat()})
    gone_in_scope.refresh_from_db()
    assert gone_in_scope.status == Appointment.Status.BOOKED and gone_in_scope.cancelled_at is None
    assert job.counts["created"] == 0 and job.counts["updated"] == 1


def test_an_appointment_cancelled_in_the_emr_is_updated_and_announced(world):
    tenant, connection, client, fake = world
    body = day_body(1)
    fetch_and_run(client, body)
    row = Appointment.objects.filter(emr_connection=connection, status=Appointment.Status.BOOKED, ehr_status="booked").first()
    fake.overrides[row.ehr_appointment_id] = {"status": "cancelled"}
    job = fetch_and_run(client, body)
    assert job.counts["updated"] == 1 and job.counts["created"] == 0
    row.refresh_from_db()
    assert row.status == Appointment.Status.CANCELLED and row.ehr_status == "cancelled" and row.cancelled_at
    event = Event.objects.get(organization=tenant.organization, type="appointment.cancelled")
    assert event.payload["data"]["id"] == str(row.pk) and event.payload["data"]["status"] == "cancelled"

    later = row.start + timedelta(minutes=5)
    fake.overrides[row.ehr_appointment_id] = {"status": "booked", "start": later.isoformat(), "end": (row.end + timedelta(minutes=5)).isoformat()}
    fetch_and_run(client, body)
    row.refresh_from_db()
    assert row.status == Appointment.Status.BOOKED and row.start == later
    updated = Event.objects.get(organization=tenant.organization, type="appointment.updated")
    assert updated.payload["data"]["datetime"] == later.astimezone(__import__("zoneinfo").ZoneInfo(SANDBOX_ZONE)).isoformat()


def test_the_change_events_of_a_fetch_are_listed_with_its_job(world):
    """webhooks.md: ``GET /v1/webhook-events?job_id=`` lists the events the job produced, which
    are the appointment.updated / cancelled events of the changes it saw, then its
    appointment.live_fetch_completed."""
    tenant, connection, client, fake = world
    body = day_body(1)
    first = fetch_and_run(client, body)
    moved, gone = Appointment.objects.filter(emr_connection=connection, status=Appointment.Status.BOOKED).order_by("start")[:2]
    later = moved.start + timedelta(minutes=10)
    fake.overrides[moved.ehr_appointment_id] = {"start": later.isoformat(), "end": (moved.end + timedelta(minutes=10)).isoformat()}
    fake.hidden = {gone.ehr_appointment_id}
    second = fetch_and_run(client, body)
    assert second.status == Job.Status.SUCCEEDED and second.counts["updated"] == 1 and second.counts["cancelled_missing"] == 1

    response = client.get(f"/v1/webhook-events?job_id={second.pk}")
    assert response.status_code == 200, response.content
    listed = response.json()["webhook_events"]
    changes = sorted((e["type"], e["data"]["ehr_appointment_id"]) for e in listed[:-1])
    assert changes == [("appointment.cancelled", gone.ehr_appointment_id), ("appointment.updated", moved.ehr_appointment_id)]
    assert listed[-1]["type"] == "appointment.live_fetch_completed" and listed[-1]["job_id"] == second.pk
    stored = {e.id: e for e in Event.objects.filter(organization=tenant.organization)}
    assert all(stored[e["id"]].job_id == second.pk for e in listed)
    first_listed = client.get(f"/v1/webhook-events?job_id={first.pk}").json()["webhook_events"]
    created = Appointment.objects.filter(emr_connection=connection).count()
    assert [e["type"] for e in first_listed] == ["appointment.created"] * created + ["appointment.live_fetch_completed"]


def test_a_fetch_emits_appointment_created_for_appointments_it_sees_first(world):
    """README and webhooks.md: a fetch's job events are its appointment.* changes, then its
    appointment.live_fetch_completed; appointments seen for the first time are
    appointment.created, in the payload shape of the fetch's own appointment list."""
    tenant, connection, client, _ = world
    body = day_body(1)
    first = fetch_and_run(client, body)
    stored = Appointment.objects.filter(emr_connection=connection)
    assert first.counts["created"] == stored.count() > 0

    events = list(Event.objects.filter(organization=tenant.organization).order_by("created_at", "id"))
    created = [e for e in events if e.type == "appointment.created"]
    assert len(created) == first.counts["created"]
    assert all(e.job_id == first.pk for e in events)
    assert events[-1].type == "appointment.live_fetch_completed"
    completed = events[-1].payload["data"]["appointments"]
    by_id = {item["ehr_appointment_id"]: item for item in completed}
    assert {e.payload["data"]["ehr_appointment_id"] for e in created} == set(stored.values_list("ehr_appointment_id", flat=True))
    for event in created:
        assert event.payload["type"] == "appointment.created" and event.payload["object"] == "event"
        assert event.payload["data"] == by_id[event.payload["data"]["ehr_appointment_id"]]

    # Seen again unchanged: nothing is created, so no appointment.created.
    second = fetch_and_run(client, body)
    assert second.counts["created"] == 0
    assert [e.type for e in Event.objects.filter(job_id=second.pk)] == ["appointment.live_fetch_completed"]


def test_mrn_scope_cancels_only_that_patients_missing_appointments(world):
    tenant, connection, client, fake = world
    fetch_and_run(client, day_body(1))
    rows = list(Appointment.objects.filter(emr_connection=connection).exclude(status=Appointment.Status.CANCELLED))
    target = rows[0]
    other = next(a for a in rows if a.patient_mrn != target.patient_mrn)
    fake.hidden = {target.ehr_appointment_id, other.ehr_appointment_id}
    job = fetch_and_run(client, {"search_by": "mrn", "mrn": target.patient_mrn})
    assert job.status == Job.Status.SUCCEEDED and job.counts["cancelled_missing"] == 1
    target.refresh_from_db()
    other.refresh_from_db()
    assert target.status == Appointment.Status.CANCELLED and other.status != Appointment.Status.CANCELLED


def v1_client(tenant, connection) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_CLIENT_ID=tenant.client_id, HTTP_CLIENT_SECRET=tenant.client_secret, HTTP_ACCESS_TOKEN=connection.issued_access_token)
    return client


def bucket_key(connection) -> str:
    from django.core.cache import cache

    return cache.make_key(f"emr-bucket:{connection.pk}")


LOCAL_CACHE = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "bucket-tests"}}


@override_settings(EMR_PAGE_SIZE=10, CACHES=LOCAL_CACHE)  # the bucket in process memory, where the test reads it
def test_an_ecw_fetch_takes_a_token_from_its_connections_bucket_for_every_call(fake_fhir):
    from emr import ratelimit

    tenant = make_tenant("eCW Clinic", timezone_name=SANDBOX_ZONE)
    connection = connect_fake(tenant, fake_fhir, vendor="ecw")
    # A full bucket (eClinicalWorks: 250 calls a minute, bursts of 25) whose refill clock is ahead
    # of now, so it does not refill during the fetch: every token taken shows.
    ratelimit._local_state[bucket_key(connection)] = {"tokens": 25.0, "ts": time.time() + 3600, "pause": 0.0}
    job = fetch_and_run(v1_client(tenant, connection), day_body(1))
    assert job.status == Job.Status.SUCCEEDED, job.error
    calls = len(fake_fhir.log)
    assert calls == job.counts["requests"] and len(fake_fhir.requests_for("Appointment")) > 5
    assert ratelimit._local_state[bucket_key(connection)]["tokens"] == 25.0 - calls


@override_settings(CACHES=LOCAL_CACHE)
def test_an_ecw_fetch_waits_for_its_bucket_and_a_fhir_fetch_has_none(fake_fhir):
    """A bucket paused for longer than the adapter may wait (another worker saw a long
    Retry-After) fails an eClinicalWorks fetch before it calls the EMR; a generic FHIR server has
    no published limit and no bucket."""
    from emr import ratelimit

    tenant = make_tenant("Two vendors", timezone_name=SANDBOX_ZONE)
    ecw = connect_fake(tenant, fake_fhir, vendor="ecw", client_id="ecw-client")
    fhir = connect_fake(tenant, fake_fhir, vendor="fhir", client_id="fhir-client")
    for connection in (ecw, fhir):
        ratelimit._local_state[bucket_key(connection)] = {"tokens": 0.0, "ts": time.time(), "pause": time.time() + 3600}

    job = fetch_and_run(v1_client(tenant, ecw), day_body(1))
    assert job.status == Job.Status.FAILED
    assert job.error == "Calls to the EMR are limited to 250 per minute and the limit stayed exhausted for 300 seconds."
    assert fake_fhir.log == []
    job = fetch_and_run(v1_client(tenant, fhir), day_body(1))
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert fake_fhir.requests_for("Appointment")


def test_appointments_outside_the_requested_range_are_not_stored(world):
    """An EMR that answers a date search with an appointment of another week (it moved, or the
    server ignores the date parameters): only what starts inside the requested days is cached."""
    tenant, connection, client, fake = world
    body = day_body(1)
    inside = sorted(expected_ids(fake, body))
    stray, early = inside[0], inside[1]
    source = next(a for a in fake.dataset.appointments() if a["id"] == stray)
    week_later = datetime.fromisoformat(source["start"]) + timedelta(days=7)
    fake.overrides[stray] = {"start": week_later.isoformat(), "end": (week_later + timedelta(minutes=20)).isoformat()}
    midnight = datetime.combine(date.fromisoformat(body["start_date"]), clock_time(0), tzinfo=ZoneInfo(SANDBOX_ZONE))
    fake.overrides[early] = {"start": (midnight - timedelta(minutes=30)).isoformat(), "end": midnight.isoformat()}

    job = fetch_and_run(client, body)
    assert job.status == Job.Status.SUCCEEDED, job.error
    stored = set(Appointment.objects.filter(emr_connection=connection).values_list("ehr_appointment_id", flat=True))
    assert stored == set(inside) - {stray, early}
    assert job.counts["fetched"] == len(inside) - 2


def test_a_date_range_is_whole_days_in_the_connections_zone(world):
    """The fetched days start and end at midnight in the EMR connection's zone, not UTC's: for a
    Tokyo practice a day is 15:00 UTC the day before to 15:00 UTC, which the instants sent to
    the EMR carry, and exactly the appointments in that window are cached."""
    tenant, connection, client, fake = world
    tokyo = ZoneInfo("Asia/Tokyo")
    EmrConnection.objects.filter(pk=connection.pk).update(timezone="Asia/Tokyo")
    day = next_weekday(2)
    if day.weekday() == 0:
        day += timedelta(days=1)  # the day before must be a clinic day too
    job = fetch_and_run(client, {"start_date": day.isoformat(), "end_date": day.isoformat()})
    assert job.status == Job.Status.SUCCEEDED, job.error

    (first_page, *_) = fake.requests_for("Appointment")
    assert [v for k, v in first_page.query if k == "date"] == [f"ge{day.isoformat()}T00:00:00+09:00", f"lt{(day + timedelta(days=1)).isoformat()}T00:00:00+09:00"]
    start = datetime.combine(day, clock_time(0), tzinfo=tokyo)
    window = [a["id"] for a in fake.dataset.appointments(first=day - timedelta(days=1), last=day)
              if start <= datetime.fromisoformat(a["start"]) < start + timedelta(days=1)]
    stored = Appointment.objects.filter(emr_connection=connection)
    assert sorted(stored.values_list("ehr_appointment_id", flat=True)) == sorted(window)
    # Tokyo's day holds the afternoon of the day before in New York and that morning.
    assert {a.start.astimezone(ZoneInfo(SANDBOX_ZONE)).date() for a in stored} == {day - timedelta(days=1), day}


def test_vendor_changed_to_one_without_adapter_fails_the_queued_job(world):
    tenant, connection, client, fake = world
    response = client.post("/v1/appointments/fetch", day_body(1), format="json")
    EmrConnection.objects.filter(pk=connection.pk).update(vendor="epic")
    run_queued_tasks()
    job = Job.objects.get(pk=response.json()["job_id"])
    assert job.status == Job.Status.FAILED
    assert job.error == "Live fetch for appointments is not supported for Epic. Currently supported: eClinicalWorks, FHIR R4 server, Sandbox EMR."
