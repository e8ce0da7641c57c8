"""EMR admin: connections created with a one-time access_token and write-only credentials; jobs
with their outcome and a retry action; everything scoped to the staff member's organization."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django_q.models import OrmQ

from emr.models import EmrConnection, Job
from emr.services.connections import emr_connection_credentials
from tenants.credentials import secret_matches
from tenants.models import Membership
from tests.conftest import admin_url, make_tenant


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def add_form(org, **extra):
    return {
        "organization": str(org.pk), "name": "Practice EHR", "vendor": "ecw", "base_url": "https://ecw.example/fhir/r4",
        "timezone": "America/Chicago", "is_active": "on", "auth": "smart_backend", "client_id": "ecw-client",
        "client_secret": "", "private_key_pem": "", "kid": "", "token_url": "", "scope": "", "mrn_system": "", "rate_per_minute": "",
        **extra,
    }


def test_creating_a_connection_shows_its_access_token_once(admin_client):
    tenant = make_tenant("Admin Clinic")
    response = admin_client.post("/admin/emr/emrconnection/add/", add_form(tenant.organization, client_secret="hunter2-secret"), follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    token = re.search(r"not shown again: <code>(tok_[^<]+)</code>", page).group(1)
    connection = EmrConnection.objects.get(organization=tenant.organization, name="Practice EHR")
    assert secret_matches(token, connection.access_token_hash) and connection.vendor == "ecw"
    assert emr_connection_credentials(connection=connection) == {"auth": "smart_backend", "client_id": "ecw-client", "client_secret": "hunter2-secret"}

    change = admin_client.get(f"/admin/emr/emrconnection/{connection.pk}/change/").content.decode()
    assert token not in change and "hunter2-secret" not in change and "ecw-client" not in change
    assert "client_secret: set" in change


def test_blank_credential_fields_keep_the_stored_values(admin_client):
    tenant = make_tenant("Admin Clinic")
    admin_client.post("/admin/emr/emrconnection/add/", add_form(tenant.organization, client_secret="first"), follow=True)
    connection = EmrConnection.objects.get(organization=tenant.organization, name="Practice EHR")
    form = add_form(tenant.organization, client_id="", auth="")
    form["name"] = "Renamed"
    response = admin_client.post(f"/admin/emr/emrconnection/{connection.pk}/change/", form)
    assert response.status_code == 302, response.content
    connection.refresh_from_db()
    assert connection.name == "Renamed"
    assert emr_connection_credentials(connection=connection)["client_secret"] == "first"
    admin_client.post(f"/admin/emr/emrconnection/{connection.pk}/change/", add_form(tenant.organization, client_secret="second"))
    connection.refresh_from_db()
    assert emr_connection_credentials(connection=connection)["client_secret"] == "second"


def test_a_private_key_that_is_not_pem_is_refused(admin_client):
    tenant = make_tenant("Admin Clinic")
    response = admin_client.post("/admin/emr/emrconnection/add/", add_form(tenant.organization, private_key_pem="not a key"))
    assert response.status_code == 200 and "Not an unencrypted PEM private key." in response.content.decode()
    assert not EmrConnection.objects.filter(name="Practice EHR").exists()


def test_failed_jobs_show_their_reason_and_can_be_retried(admin_client, django_capture_on_commit_callbacks):
    tenant = make_tenant("Jobs Clinic")
    failed = Job.objects.create(organization=tenant.organization, emr_connection=tenant.emr_connection, kind=Job.Kind.APPOINTMENTS_FETCH,
                                params={"search_by": "mrn", "mrn": "1"}, status=Job.Status.FAILED, error="The EMR did not answer within 30 seconds.")
    done = Job.objects.create(organization=tenant.organization, emr_connection=tenant.emr_connection, kind=Job.Kind.PROVIDERS_SYNC, status=Job.Status.SUCCEEDED)
    listing = admin_client.get("/admin/emr/job/").content.decode()
    assert "The EMR did not answer within 30 seconds." in listing and failed.pk in listing
    detail = admin_client.get(admin_url(failed)).content.decode()
    assert "mrn" in detail and "The EMR did not answer within 30 seconds." in detail

    queued_before = OrmQ.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post("/admin/emr/job/", {"action": "retry", "_selected_action": [failed.pk, done.pk]}, follow=True)
    assert response.status_code == 200
    failed.refresh_from_db()
    done.refresh_from_db()
    assert failed.status == Job.Status.QUEUED and failed.error == "" and failed.task_id
    assert done.status == Job.Status.SUCCEEDED
    assert OrmQ.objects.count() == queued_before + 1
    assert "1 job(s) were not failed (or cannot be run here)" in response.content.decode()


def test_sync_action_queues_a_provider_sync_job(admin_client, django_capture_on_commit_callbacks):
    tenant = make_tenant("Sync Clinic")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post("/admin/emr/emrconnection/", {"action": "sync_providers", "_selected_action": [str(tenant.emr_connection.pk)]})
    job = Job.objects.get(emr_connection=tenant.emr_connection)
    assert job.kind == Job.Kind.PROVIDERS_SYNC and job.status == Job.Status.QUEUED and job.task_id


def test_staff_see_only_their_organizations_connections_and_jobs(client, db):
    mine, theirs = make_tenant("Mine"), make_tenant("Theirs")
    for tenant in (mine, theirs):
        Job.objects.create(organization=tenant.organization, emr_connection=tenant.emr_connection, kind=Job.Kind.PROVIDERS_SYNC)
    staff = get_user_model().objects.create_user("desk", password="pw-desk-123", is_staff=True)
    Membership.objects.create(user=staff, organization=mine.organization, role=Membership.Role.VIEWER)
    client.force_login(staff)
    jobs = client.get("/admin/emr/job/").content.decode()
    their_job = Job.objects.get(organization=theirs.organization)
    assert Job.objects.get(organization=mine.organization).pk in jobs and their_job.pk not in jobs
    assert client.get(admin_url(their_job)).status_code in (302, 404)
    connections = client.get("/admin/emr/emrconnection/").content.decode()
    assert mine.emr_connection.access_token_reference_id in connections
    assert theirs.emr_connection.access_token_reference_id not in connections
    # A viewer can look but not retry.
    own_job = Job.objects.get(organization=mine.organization)
    Job.objects.filter(pk=own_job.pk).update(status=Job.Status.FAILED, error="boom")
    client.post("/admin/emr/job/", {"action": "retry", "_selected_action": [own_job.pk]})
    own_job.refresh_from_db()
    assert own_job.status == Job.Status.FAILED


def test_every_emr_admin_page_renders(admin_client):
    from emr.services.connections import emr_connection_keypair_ensure, sandbox_client_ensure

    tenant = make_tenant("Pages")
    sandbox_client_ensure(connection=tenant.emr_connection)
    emr_connection_keypair_ensure(connection=tenant.emr_connection)
    job = Job.objects.create(organization=tenant.organization, emr_connection=tenant.emr_connection, kind=Job.Kind.PROVIDERS_SYNC,
                             status=Job.Status.SUCCEEDED, counts={"providers": 6, "shifts": 40})
    pages = [
        "/admin/emr/emrconnection/", "/admin/emr/emrconnection/add/", f"/admin/emr/emrconnection/{tenant.emr_connection.pk}/change/",
        "/admin/emr/job/", admin_url(job), "/admin/emr/visittype/", "/admin/emr/localhours/",
        "/admin/emr/sandboxclient/", "/admin/booking/appointment/?emr_connection__id__exact=" + str(tenant.emr_connection.pk),
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    change = admin_client.get(f"/admin/emr/emrconnection/{tenant.emr_connection.pk}/change/").content.decode()
    assert '"kty": "RSA"' in change.replace("&quot;", '"') and "BEGIN PRIVATE KEY" not in change
    assert "providers 6, shifts 40" in admin_client.get("/admin/emr/job/").content.decode()


def test_cached_appointments_are_filtered_by_provider_date_and_status(admin_client):
    """The admin's appointment list narrows the EMR's cached appointments by primary provider, by
    day (the date hierarchy) and by status."""
    from dataclasses import replace
    from datetime import timedelta

    from booking.models import Appointment, Resource
    from emr.services.appointments import appointments_store
    from tests.emr.test_appointment_store import SCOPE, START, appointments

    tenant = make_tenant("Cache Clinic")
    items = appointments(6, providers=2)  # A0, A2, A4 with P0; A1, A3, A5 with P1; all on START's day
    items[4] = replace(items[4], start=START + timedelta(days=3), end=START + timedelta(days=3, minutes=20))
    items[5] = replace(items[5], start=START + timedelta(days=3, hours=1), end=START + timedelta(days=3, hours=1, minutes=20))
    items[1] = replace(items[1], status="cancelled", occupies_time=False)
    items[4] = replace(items[4], status="noshow", occupies_time=False)
    appointments_store(connection=tenant.emr_connection, scope=SCOPE, fetched=items)
    p0 = Resource.objects.get(emr_connection=tenant.emr_connection, ehr_id="P0")

    def listed(query: str) -> set[str]:
        response = admin_client.get(f"/admin/booking/appointment/?{query}")
        assert response.status_code == 200, (query, response.status_code)
        rows = {a.ehr_appointment_id for a in response.context["cl"].result_list}
        assert all(f">{ehr_id}<" in response.content.decode() for ehr_id in rows)
        return rows

    everything = f"emr_connection__id__exact={tenant.emr_connection.pk}"
    assert listed(everything) == {f"A{i}" for i in range(6)}
    assert listed(f"{everything}&primary_provider__id__exact={p0.pk}") == {"A0", "A2", "A4"}
    later = START + timedelta(days=3)
    assert listed(f"{everything}&start__year={later.year}&start__month={later.month}&start__day={later.day}") == {"A4", "A5"}
    assert listed(f"{everything}&status__exact={Appointment.Status.CANCELLED}") == {"A1", "A4"}
    assert listed(f"{everything}&status__exact={Appointment.Status.BOOKED}&primary_provider__id__exact={p0.pk}") == {"A0", "A2"}
