"""Provider, location and schedule sync from the sandbox EMR over HTTP, and ``demo_sync``."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from django.test import override_settings

from booking.models import Appointment, Location, Resource, Service, Shift
from emr.models import Job, LocalHours, VisitType
from emr.sandbox import data
from emr.services import demo_sync
from emr.services.connections import emr_connection_create
from emr.services.live_fetch import providers_sync_start
from emr.services.providers import providers_sync
from tests.emr.conftest import make_sandbox_tenant, point_at, run_queued_tasks


@pytest.fixture(autouse=True)
def _big_pages(settings):
    """Paging is tested elsewhere; here fewer, larger pages keep the sync quick."""
    settings.EMR_PAGE_SIZE = 500


def test_sync_creates_providers_locations_shifts_and_visit_types(sandbox_tenant):
    conn = sandbox_tenant.emr_connection
    counts = providers_sync(connection=conn)
    assert counts["providers"] == counts["providers_created"] == len(data.TEMPLATES)
    assert counts["locations"] == counts["locations_created"] == 2
    providers = {r.ehr_id: r for r in Resource.objects.filter(emr_connection=conn)}
    assert set(providers) == {t.id for t in data.TEMPLATES}
    patel = providers["PRV-1001"]
    assert (patel.name, patel.npi, patel.type, patel.timezone) == ("Maya Patel", "1467582930", "provider", "America/New_York")

    boston = Location.objects.get(organization=sandbox_tenant.organization, ehr_id="LOC-BOS")
    denver = Location.objects.get(organization=sandbox_tenant.organization, ehr_id="LOC-DEN")
    assert boston.emr_connection_id == conn.pk and denver.timezone == "America/Denver"
    assert boston.address == "233 Newbury St, Boston, MA 02116"

    monday = list(Shift.objects.filter(resource=patel, day_of_week=1).order_by("start_time"))
    assert [(s.start_time, s.end_time, s.location_id, s.recur_every_weeks) for s in monday] == [
        (time(8), time(12), boston.pk, 1), (time(13), time(17), boston.pk, 1)
    ]
    assert list(monday[0].visit_type_rules.order_by("start_time").values_list("start_time", "end_time", "total_visits", "visit_type_id", "visit_type_desc")) == [
        (time(8), time(9, 20), 2, "NP", "New Patient Visit"), (time(9, 20), time(12), 8, "FU", "Follow-Up Visit")
    ]
    assert Shift.objects.filter(resource=patel).count() == 10  # Monday to Friday, two blocks
    ruiz_saturday = Shift.objects.get(resource=providers["PRV-1003"], day_of_week=6)
    assert ruiz_saturday.recur_every_weeks == 2
    assert ((ruiz_saturday.valid_from - data.BIWEEKLY_ANCHOR).days // 7) % 2 == 0 and ruiz_saturday.valid_from.weekday() == 5
    brooks = Shift.objects.filter(resource=providers["PRV-1004"], day_of_week=3).order_by("start_time").first()
    assert (brooks.start_time, brooks.location_id) == (time(8), denver.pk)  # wall time in Denver

    codes = set(VisitType.objects.filter(emr_connection=conn).values_list("code", flat=True))
    assert codes == {code for t in data.TEMPLATES for b in t.blocks for _, _, code in b.runs}
    follow_up = VisitType.objects.get(emr_connection=conn, code="FU")
    assert follow_up.description == "Follow-Up Visit" and follow_up.service.visit_type == "FU" and follow_up.service.duration == 20
    conn.refresh_from_db()
    assert conn.last_synced_at is not None


def test_second_sync_is_idempotent(sandbox_tenant):
    conn = sandbox_tenant.emr_connection
    providers_sync(connection=conn)
    shifts = Shift.objects.filter(resource__emr_connection=conn).count()
    counts = providers_sync(connection=conn)
    assert counts["providers_created"] == counts["locations_created"] == counts["visit_types_created"] == 0
    assert Resource.objects.filter(emr_connection=conn).count() == len(data.TEMPLATES)
    assert Shift.objects.filter(resource__emr_connection=conn).count() == shifts
    assert Service.objects.filter(organization=sandbox_tenant.organization, visit_type="FU").count() == 1


def test_hours_set_through_the_api_survive_the_sync(sandbox_tenant):
    conn = sandbox_tenant.emr_connection
    providers_sync(connection=conn)
    response = sandbox_tenant.v1().patch(
        "/v1/providers/ehr/PRV-1001", {"hours": [{"day": "Friday", "shifts": [{"start": "T10:00:00", "end": "T11:00:00"}]}]}, format="json"
    )
    assert response.status_code == 200
    counts = providers_sync(connection=conn)
    assert counts["providers_with_local_hours"] == 1
    patel = Resource.objects.get(emr_connection=conn, ehr_id="PRV-1001")
    assert list(Shift.objects.filter(resource=patel).values_list("day_of_week", "start_time", "end_time")) == [(5, time(10), time(11))]
    LocalHours.objects.filter(resource=patel).delete()  # hand them back to the EMR
    providers_sync(connection=conn)
    assert Shift.objects.filter(resource=patel).count() == 10


def test_existing_rows_are_linked_by_ehr_id_or_npi(sandbox_url):
    tenant = make_sandbox_tenant("Linked Clinic", sandbox_url)
    org = tenant.organization
    manual = Resource.objects.create(organization=org, name="Dr. Maya Patel", type="provider", npi="1467582930")
    site = Location.objects.create(organization=org, name="Back Bay (ours)", timezone="America/New_York", ehr_id="LOC-BOS")
    counts = providers_sync(connection=tenant.emr_connection)
    manual.refresh_from_db()
    site.refresh_from_db()
    assert counts["providers_linked"] == 1 and counts["providers_created"] == len(data.TEMPLATES) - 1
    assert (manual.ehr_id, manual.emr_connection_id, manual.name) == ("PRV-1001", tenant.emr_connection.pk, "Dr. Maya Patel")
    assert site.emr_connection_id == tenant.emr_connection.pk and site.name == "Back Bay (ours)"
    assert Location.objects.filter(organization=org, ehr_id="LOC-BOS").count() == 1


def test_a_second_connection_gets_its_own_rows_and_never_takes_over_the_first_ones(sandbox_tenant, sandbox_url):
    first = sandbox_tenant.emr_connection
    providers_sync(connection=first)
    before = {r.pk: (r.name, r.emr_connection_id) for r in Resource.objects.filter(emr_connection=first)}
    second = point_at(emr_connection_create(organization=sandbox_tenant.organization, vendor="sandbox", name="Second").connection, sandbox_url)
    counts = providers_sync(connection=second)
    assert counts["providers_created"] == len(data.TEMPLATES) and counts["locations_created"] == 2
    assert {r.pk: (r.name, r.emr_connection_id) for r in Resource.objects.filter(emr_connection=first)} == before
    # The same EHR ids now name one row per connection.
    assert set(Resource.objects.filter(emr_connection=second).values_list("ehr_id", flat=True)) == set(
        Resource.objects.filter(emr_connection=first).values_list("ehr_id", flat=True)
    )
    assert Resource.objects.filter(emr_connection=first).count() == len(data.TEMPLATES)
    # Each connection's providers carry their own schedules.
    assert Shift.objects.filter(resource__emr_connection=second).count() == Shift.objects.filter(resource__emr_connection=first).count() > 0


def test_sync_as_a_job_through_the_worker(sandbox_tenant):
    job = providers_sync_start(connection=sandbox_tenant.emr_connection)
    run_queued_tasks()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.kind == Job.Kind.PROVIDERS_SYNC
    assert job.counts["providers_created"] == len(data.TEMPLATES) and job.counts["requests"] > 3


def test_demo_sync_brings_the_coming_week_from_the_sandbox(live_server, db):
    from tests.conftest import make_tenant

    with override_settings(SITE_URL=live_server.url):
        tenant = make_tenant("Demo Clinic", timezone_name="America/New_York")  # its connection uses sandbox_base_url()
        assert tenant.emr_connection.base_url == f"{live_server.url}/sandbox/fhir/r4"
        result = demo_sync(organization=tenant.organization, run_now=True)
    assert result.sync_job.status == Job.Status.SUCCEEDED, result.sync_job.error
    assert result.fetch_job.status == Job.Status.SUCCEEDED, result.fetch_job.error
    today = data.SandboxDataset.for_now().today
    assert result.fetch_job.params == {"search_by": "date_range", "start_date": today.isoformat(), "end_date": (today + timedelta(days=6)).isoformat()}
    expected = {a["id"] for a in data.SandboxDataset.for_now().appointments(first=today, last=today + timedelta(days=6))}
    stored = set(Appointment.objects.filter(emr_connection=tenant.emr_connection).values_list("ehr_appointment_id", flat=True))
    assert stored == expected and len(expected) > 50
    assert Resource.objects.filter(emr_connection=tenant.emr_connection).count() == len(data.TEMPLATES)


def test_demo_sync_queues_one_task_running_both_jobs_in_order(sandbox_tenant):
    result = demo_sync(organization=sandbox_tenant.organization)
    assert result.sync_job.status == result.fetch_job.status == Job.Status.QUEUED
    finished = run_queued_tasks()
    assert len(finished) == 1 and finished[0]["result"] == ["succeeded", "succeeded"]
    sync_job, fetch_job = Job.objects.get(pk=result.sync_job.pk), Job.objects.get(pk=result.fetch_job.pk)
    assert sync_job.finished_at <= fetch_job.started_at


def test_demo_sync_without_a_sandbox_connection_does_nothing(db):
    from emr.models import EmrConnection
    from tests.conftest import make_tenant

    tenant = make_tenant("No Sandbox")
    EmrConnection.objects.filter(pk=tenant.emr_connection.pk).update(vendor="athenahealth")
    assert demo_sync(organization=tenant.organization) is None
    assert not Job.objects.exists()



