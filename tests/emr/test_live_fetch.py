"""Live fetch end to end: ``POST /v1/appointments/fetch`` → job → django-q2 worker → the sandbox
EMR over HTTP (pytest-django's live server) → appointment cache → event."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from booking.models import Appointment, AppointmentResource
from emr.models import Job
from emr.sandbox.data import SandboxDataset
from tenants.models import Event, Organization
from tests.emr.conftest import SANDBOX_ZONE, day_with_secondary_only, performers, practitioners, run_queued_tasks

NY = ZoneInfo(SANDBOX_ZONE)


def next_weekday(offset: int = 1) -> date:
    day = datetime.now(NY).date() + timedelta(days=offset)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def expected_appointments(start: date, end: date, **kwargs) -> list[dict]:
    return SandboxDataset.for_now().appointments(first=start, last=end, **kwargs)


def fetch(tenant, body: dict):
    response = tenant.v1().post("/v1/appointments/fetch", body, format="json")
    assert response.status_code == 202, response.content
    payload = response.json()
    assert payload["success"] is True
    assert payload["message"] == "Live fetch request accepted. Results will be sent via webhook when ready."
    return payload["job_id"]


def run_job(job_id: str) -> Job:
    finished = run_queued_tasks()
    assert [t["args"] for t in finished] == [(job_id,)]
    assert all(t["success"] for t in finished)
    return Job.objects.get(pk=job_id)


def live_fetch_event(job_id: str) -> dict:
    """The event's payload as the bytes sent (key order kept; jsonb would sort the keys)."""
    events = list(Event.objects.filter(job_id=job_id, type="appointment.live_fetch_completed"))
    assert len(events) == 1
    assert json.loads(events[0].body) == events[0].payload
    return json.loads(events[0].body)


def test_date_range_fetch_end_to_end(sandbox_tenant):
    start = next_weekday(1)
    end = start + timedelta(days=2)
    job_id = fetch(sandbox_tenant, {"start_date": start.isoformat(), "end_date": end.isoformat()})

    job = Job.objects.get(pk=job_id)
    assert job.status == Job.Status.QUEUED and job.kind == Job.Kind.APPOINTMENTS_FETCH
    assert job.params == {"search_by": "date_range", "start_date": start.isoformat(), "end_date": end.isoformat()}
    assert job.emr_connection_id == sandbox_tenant.emr_connection.pk and job.task_id

    version_before = Organization.objects.get(pk=sandbox_tenant.organization.pk).availability_version
    job = run_job(job_id)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.started_at and job.finished_at and job.finished_at >= job.started_at and job.attempts == 1

    expected = expected_appointments(start, end)
    assert expected, "the sandbox has appointments on every weekday"
    stored = Appointment.objects.filter(emr_connection=sandbox_tenant.emr_connection)
    assert sorted(stored.values_list("ehr_appointment_id", flat=True)) == sorted(a["id"] for a in expected)
    assert job.counts["fetched"] == len(expected) == job.counts["created"]
    assert job.counts["pages"] >= 1 and job.counts["tokens_minted"] == 1

    # One appointment, field by field, against what the EMR served.
    source = expected[0]
    row = stored.get(ehr_appointment_id=source["id"])
    assert row.start == datetime.fromisoformat(source["start"]) and row.end == datetime.fromisoformat(source["end"])
    assert row.source == Appointment.Source.EMR and row.organization_id == sandbox_tenant.organization.pk
    assert row.ehr_status == source["status"]
    assert row.appointment_type == source["appointmentType"]["coding"][0]["code"]
    assert row.reason == source["reasonCode"][0]["text"]
    assert row.primary_provider.ehr_id == source["participant"][1]["actor"]["reference"].split("/")[1]
    patient_id = source["participant"][0]["actor"]["reference"].split("/")[1]
    patient = next(p for p in SandboxDataset.for_now().patients() if p["id"] == patient_id)
    assert row.patient_mrn == patient["identifier"][0]["value"]
    assert row.patient_name == f"{patient['name'][0]['given'][0]} {patient['name'][0]['family']}"
    (location,) = [p["actor"] for p in source["participant"] if p["actor"]["reference"].startswith("Location/")]
    assert (row.location.ehr_id, row.location.name) == (location["reference"].split("/")[1], location["display"])
    locations = dict(stored.values_list("ehr_appointment_id", "location__ehr_id"))
    assert locations == {a["id"]: next(p["actor"]["reference"].split("/")[1] for p in a["participant"] if p["actor"]["reference"].startswith("Location/")) for a in expected}
    assert set(locations.values()) == {"LOC-BOS", "LOC-DEN"}
    assert row.status == (Appointment.Status.CANCELLED if source["status"] in ("cancelled", "noshow") else Appointment.Status.BOOKED)

    # EMR appointments occupy their providers (so they block /v3/ availability).
    links = AppointmentResource.objects.filter(appointment__emr_connection=sandbox_tenant.emr_connection)
    expected_links = sum(1 + sum(1 for p in a["participant"] if p.get("type", [{}])[0].get("coding", [{}])[0].get("code") == "SPRF") for a in expected)
    assert links.count() == expected_links
    secondary = {p["actor"]["reference"].split("/")[1] for p in source["participant"]
                 if p.get("type", [{}])[0].get("coding", [{}])[0].get("code") == "SPRF"}
    assert (row.secondary_provider.ehr_id if row.secondary_provider else None) == next(iter(secondary), None)
    assert set(AppointmentResource.objects.filter(appointment=row).values_list("resource__ehr_id", flat=True)) == {row.primary_provider.ehr_id} | secondary
    assert Organization.objects.get(pk=sandbox_tenant.organization.pk).availability_version > version_before

    payload = live_fetch_event(job_id)
    assert set(payload) == {"id", "access_token_reference_id", "job_id", "timestamp", "type", "action", "data"}
    assert payload["type"] == "appointment.live_fetch_completed" and payload["action"] == "sync"
    assert payload["job_id"] == job_id
    assert payload["access_token_reference_id"] == sandbox_tenant.emr_connection.access_token_reference_id
    data = payload["data"]
    assert list(data) == ["success", "appointment_count", "start_date", "end_date", "appointments"]
    assert data["success"] is True and data["appointment_count"] == len(expected)
    assert (data["start_date"], data["end_date"]) == (start.isoformat(), end.isoformat())
    item = next(i for i in data["appointments"] if i["ehr_appointment_id"] == source["id"])
    assert item["id"] == str(row.pk)
    assert item["datetime"] == datetime.fromisoformat(source["start"]).astimezone(NY).isoformat()
    assert item["status"] == source["status"]
    code, display = source["appointmentType"]["coding"][0]["code"], source["appointmentType"]["coding"][0]["display"]
    assert item["appointment_type"] == f"{code} ({display})"
    assert item["provider_ehr_id"] == row.primary_provider.ehr_id
    assert item["location"] == row.location.name


def test_mrn_fetch_end_to_end(sandbox_tenant):
    ds = SandboxDataset.for_now()
    sample = expected_appointments(next_weekday(1), next_weekday(1))[0]
    patient_id = sample["participant"][0]["actor"]["reference"].split("/")[1]
    mrn = next(p for p in ds.patients() if p["id"] == patient_id)["identifier"][0]["value"]
    expected = [a for a in ds.appointments() if a["participant"][0]["actor"]["reference"] == f"Patient/{patient_id}"]

    job_id = fetch(sandbox_tenant, {"search_by": "mrn", "mrn": mrn})
    job = run_job(job_id)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.params == {"search_by": "mrn", "mrn": mrn}

    stored = Appointment.objects.filter(emr_connection=sandbox_tenant.emr_connection)
    assert sorted(stored.values_list("ehr_appointment_id", flat=True)) == sorted(a["id"] for a in expected)
    assert set(stored.values_list("patient_mrn", flat=True)) == {mrn}
    row = stored.get(ehr_appointment_id=sample["id"])
    assert row.ehr_created_by == sample["_created_by"]
    assert row.ehr_created_at == datetime.fromisoformat(sample["created"])

    data = live_fetch_event(job_id)["data"]
    assert list(data) == ["success", "search_by", "mrn", "appointment_count", "appointments"]
    assert data["search_by"] == "mrn" and data["mrn"] == mrn and data["appointment_count"] == len(expected)
    item = next(i for i in data["appointments"] if i["ehr_appointment_id"] == sample["id"])
    local = datetime.fromisoformat(sample["start"]).astimezone(NY)
    assert item["datetime"] == local.strftime("%Y-%m-%dT%H:%M:%S.000") + local.isoformat()[19:]
    assert item["created_by"] == sample["_created_by"]
    created = datetime.fromisoformat(sample["created"]).astimezone(NY)
    assert item["created_at"] == created.strftime("%Y-%m-%dT%H:%M:%S.000") + created.isoformat()[19:]
    template = next(t for t in ds.templates if t.id == item["provider_ehr_id"])
    assert (item["provider_first_name"], item["provider_last_name"]) == (template.given, template.family)
    assert item["reason"] == sample["reasonCode"][0]["text"] and item["locked"] is False


def test_provider_fetch_end_to_end(sandbox_tenant):
    providers = ["PRV-1001", "PRV-1004"]
    # A day where one of them is only the secondary performer of someone else's appointment.
    day, shared = day_with_secondary_only(SandboxDataset.for_now(), first=next_weekday(2), providers=set(providers))
    job_id = fetch(sandbox_tenant, {"search_by": "provider", "provider_ids": providers, "start_date": day.isoformat(), "end_date": day.isoformat()})
    job = run_job(job_id)
    assert job.status == Job.Status.SUCCEEDED, job.error
    expected = [a for a in expected_appointments(day, day) if practitioners(a) & set(providers)]
    stored = Appointment.objects.filter(emr_connection=sandbox_tenant.emr_connection)
    assert sorted(stored.values_list("ehr_appointment_id", flat=True)) == sorted(a["id"] for a in expected)
    row = stored.get(ehr_appointment_id=shared["id"])
    assert row.primary_provider.ehr_id not in providers and row.secondary_provider.ehr_id in providers
    assert all({a.primary_provider.ehr_id, a.secondary_provider.ehr_id if a.secondary_provider else None} & set(providers) for a in stored)
    data = live_fetch_event(job_id)["data"]
    assert data["search_by"] == "provider" and data["provider_ids"] == providers
    assert data["start_date"] == data["end_date"] == day.isoformat() and data["appointment_count"] == len(expected)


def test_provider_fetch_keeps_appointments_where_the_provider_is_secondary(sandbox_tenant):
    """A date-range fetch, then a fetch for a provider who is only the secondary performer of
    one of that day's appointments: the EMR returns it for that provider (FHIR's ``practitioner``
    matches any participant), so it stays booked, blocking both providers, and nothing is
    announced as cancelled."""
    day, shared = day_with_secondary_only(SandboxDataset.for_now(), first=next_weekday(1))
    (secondary,) = performers(shared, "SPRF")
    run_job(fetch(sandbox_tenant, {"start_date": day.isoformat(), "end_date": day.isoformat()}))
    row = Appointment.objects.get(emr_connection=sandbox_tenant.emr_connection, ehr_appointment_id=shared["id"])
    assert row.status == Appointment.Status.BOOKED and row.secondary_provider.ehr_id == secondary

    job = run_job(fetch(sandbox_tenant, {"search_by": "provider", "provider_ids": [secondary], "start_date": day.isoformat(), "end_date": day.isoformat()}))
    assert job.status == Job.Status.SUCCEEDED, job.error
    row.refresh_from_db()
    assert row.status == Appointment.Status.BOOKED and row.cancelled_at is None and row.ehr_status == shared["status"]
    assert job.counts["cancelled_missing"] == 0
    assert set(AppointmentResource.objects.filter(appointment=row).values_list("resource__ehr_id", flat=True)) == performers(shared, "PPRF") | {secondary}
    assert not Event.objects.filter(organization=sandbox_tenant.organization, type="appointment.cancelled").exists()


def test_second_fetch_creates_no_duplicates(sandbox_tenant):
    start = next_weekday(1)
    body = {"start_date": start.isoformat(), "end_date": (start + timedelta(days=4)).isoformat()}
    first = run_job(fetch(sandbox_tenant, body))
    count = Appointment.objects.filter(emr_connection=sandbox_tenant.emr_connection).count()
    assert count == first.counts["created"] > 0

    second = run_job(fetch(sandbox_tenant, body))
    assert second.status == Job.Status.SUCCEEDED
    assert Appointment.objects.filter(emr_connection=sandbox_tenant.emr_connection).count() == count
    assert second.counts["created"] == 0 and second.counts["updated"] == 0 and second.counts["unchanged"] == count
    assert AppointmentResource.objects.filter(appointment__emr_connection=sandbox_tenant.emr_connection).values("appointment", "resource").distinct().count() == AppointmentResource.objects.filter(appointment__emr_connection=sandbox_tenant.emr_connection).count()
    # Unchanged data: no appointment.updated / cancelled events.
    assert not Event.objects.filter(organization=sandbox_tenant.organization, type__in=["appointment.updated", "appointment.cancelled"]).exists()


def test_fetch_of_unsupported_vendor_is_refused_with_the_supported_list(db):
    from emr.models import EmrConnection
    from tests.conftest import make_tenant

    tenant = make_tenant("Athena Clinic")
    EmrConnection.objects.filter(pk=tenant.emr_connection.pk).update(vendor="athenahealth")
    response = tenant.v1().post("/v1/appointments/fetch", {"start_date": "2025-01-01", "end_date": "2025-01-02"}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "message": "Live fetch for appointments is not supported for athenahealth. "
        "Currently supported: eClinicalWorks, FHIR R4 server, Sandbox EMR.",
    }
    assert not Job.objects.exists()


@pytest.mark.parametrize("vendor", ["ecw", "fhir", "sandbox"])
def test_fetch_is_accepted_for_vendors_with_an_adapter(db, vendor, django_capture_on_commit_callbacks):
    from emr.models import EmrConnection
    from tests.conftest import make_tenant

    tenant = make_tenant("Clinic")
    EmrConnection.objects.filter(pk=tenant.emr_connection.pk).update(vendor=vendor)
    with django_capture_on_commit_callbacks(execute=True):
        response = tenant.v1().post("/v1/appointments/fetch", {"start_date": "2025-01-01", "end_date": "2025-01-01"}, format="json")
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["job_id"])
    assert job.organization_id == tenant.organization.pk and job.task_id


def test_appointments_of_a_day_start_and_end_at_local_midnight(sandbox_tenant):
    """Every appointment a one-day fetch stores starts on that day in the EMR's zone. (The
    sandbox's day runs 08:00 to 19:00 there, so this cannot tell the zone's midnight from
    UTC's; ``test_live_fetch_faults.test_a_date_range_is_whole_days_in_the_connections_zone``
    checks the instants sent for a Tokyo connection.)"""
    day = next_weekday(1)
    run_job(fetch(sandbox_tenant, {"start_date": day.isoformat(), "end_date": day.isoformat()}))
    stored = list(Appointment.objects.filter(emr_connection=sandbox_tenant.emr_connection))
    assert stored and all(a.start.astimezone(NY).date() == day for a in stored)
    midnight = datetime.combine(day, time(0), tzinfo=NY)
    assert all(midnight <= a.start < midnight + timedelta(days=1) for a in stored)
