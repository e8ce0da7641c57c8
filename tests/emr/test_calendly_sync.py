"""The Calendly connection and the sync of users and event types, against a fake Calendly."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from booking.models import Resource
from emr.calendly import CalendlyClient
from emr.models import CalendlyConnection, CalendlyEventType, CalendlyUser, Job
from emr.services.calendly import (
    calendly_connect,
    calendly_sync,
    calendly_sync_all,
    calendly_sync_start,
    calendly_token,
    calendly_user_link,
)
from emr.services.live_fetch import job_retry, job_run
from tests.emr.calendly_fixtures import connect, provider
from tests.emr.conftest import run_queued_tasks
from tests.emr.fake_calendly import TOKEN

pytestmark = pytest.mark.django_db


def test_the_token_is_encrypted_at_rest_and_replaced_by_a_new_connect(tenant, calendly):
    connection = connect(tenant, calendly)
    stored = CalendlyConnection.objects.get(pk=connection.pk)
    assert TOKEN not in stored.token_encrypted and stored.token_encrypted
    assert calendly_token(connection=stored) == TOKEN
    again = calendly_connect(organization=tenant.organization, token="other-token", base_url="http://127.0.0.1:9/api/")
    assert again.pk == connection.pk and CalendlyConnection.objects.filter(organization=tenant.organization).count() == 1
    assert calendly_token(connection=again) == "other-token" and again.base_url == "http://127.0.0.1:9/api"
    assert again.cache_version > connection.cache_version


@pytest.mark.parametrize("token,base_url", [("", None), ("has space", None), ("tok", "ftp://x.test"), ("tok", "not a url")])
def test_bad_connections_are_refused(tenant, token, base_url):
    with pytest.raises(ValueError):
        calendly_connect(organization=tenant.organization, token=token, base_url=base_url)
    assert not CalendlyConnection.objects.filter(organization=tenant.organization).exists()


def test_the_default_base_url_is_calendlys(tenant):
    assert calendly_connect(organization=tenant.organization, token="t").base_url == "https://api.calendly.com"


def test_sync_links_users_by_email_and_stores_event_types(tenant, other_tenant, calendly):
    ada = provider(tenant, "Dr Ada", "ada@clinic.test")
    bo = provider(tenant, "Dr Bo", "bo@clinic.test")
    provider(other_tenant, "Dr Ada elsewhere", "carl@clinic.test")  # another tenant's provider: never linked
    u_ada = calendly.user("ADA", "  Ada@Clinic.TEST ", "Ada L")
    u_bo = calendly.user("BO", "BO@clinic.test")
    u_carl = calendly.user("CARL", "carl@clinic.test")
    calendly.event_type("11111111-1111-4111-8111-111111111111", u_ada, "Intake", duration=45)
    calendly.event_type("22222222-2222-4222-8222-222222222222", u_bo, "Follow-up", active=False)
    calendly.event_type("33333333-3333-4333-8333-333333333333", "https://api.calendly.com/teams/T1", "Team visit")
    connection = connect(tenant, calendly)
    version = connection.cache_version
    counts = calendly_sync(connection=connection)

    users = {u.uri: u for u in CalendlyUser.objects.filter(connection=connection)}
    assert users[u_ada].resource == ada and users[u_ada].email == "ada@clinic.test" and users[u_ada].name == "Ada L"
    assert users[u_bo].resource == bo
    assert users[u_carl].resource is None  # the other tenant's provider is not this tenant's
    types = {t.event_type_id: t for t in CalendlyEventType.objects.filter(connection=connection)}
    intake = types["11111111-1111-4111-8111-111111111111"]
    assert (intake.name, intake.duration, intake.active, intake.scheduling_url, intake.calendly_user.uri) == (
        "Intake", 45, True, "https://calendly.test/11111111-1111-4111-8111-111111111111", u_ada)
    assert intake.uri == f"{calendly.url}/event_types/11111111-1111-4111-8111-111111111111"
    assert types["22222222-2222-4222-8222-222222222222"].active is False
    assert types["33333333-3333-4333-8333-333333333333"].calendly_user is None
    assert counts["users"] == 3 and counts["users_linked"] == 2 and counts["event_types"] == 3
    assert counts["event_types_active"] == 2
    connection.refresh_from_db()
    assert connection.calendly_organization_uri == calendly.org_uri and connection.last_synced_at is not None
    assert connection.cache_version == version + 1
    assert all(t.organization_id == tenant.organization.pk for t in types.values())


def test_vanished_event_types_become_inactive_and_reappear_active(tenant, calendly):
    provider(tenant, "Dr Ada", "ada@clinic.test")
    u = calendly.user("ADA", "ada@clinic.test")
    calendly.event_type("E1", u, "Intake")
    calendly.event_type("E2", u, "Check-up")
    connection = connect(tenant, calendly)
    calendly_sync(connection=connection)
    calendly.event_types = [e for e in calendly.event_types if not e["uri"].endswith("/E2")]
    counts = calendly_sync(connection=connection)
    assert counts["event_types_deactivated"] == 1
    assert dict(CalendlyEventType.objects.values_list("event_type_id", "active")) == {"E1": True, "E2": False}
    calendly.event_type("E2", u, "Check-up")
    calendly_sync(connection=connection)
    assert dict(CalendlyEventType.objects.values_list("event_type_id", "active")) == {"E1": True, "E2": True}


def test_a_link_chosen_by_staff_survives_syncs_and_email_changes_relink_the_others(tenant, calendly):
    ada = provider(tenant, "Dr Ada", "ada@clinic.test")
    bo = provider(tenant, "Dr Bo", "bo@clinic.test")
    u_ada = calendly.user("ADA", "ada@clinic.test")
    u_x = calendly.user("X", "x@clinic.test")
    connection = connect(tenant, calendly)
    calendly_sync(connection=connection)
    staff_choice = CalendlyUser.objects.get(uri=u_x)
    assert staff_choice.resource is None
    before = CalendlyConnection.objects.get(pk=connection.pk).cache_version
    calendly_user_link(user=staff_choice, resource=bo)
    assert CalendlyConnection.objects.get(pk=connection.pk).cache_version == before + 1
    Resource.objects.filter(pk=ada.pk).update(email="ada.new@clinic.test")
    calendly_sync(connection=connection)
    assert CalendlyUser.objects.get(uri=u_x).resource == bo  # kept
    assert CalendlyUser.objects.get(uri=u_ada).resource is None  # email no longer matches


def test_users_who_left_are_marked(tenant, calendly):
    u = calendly.user("ADA", "ada@clinic.test")
    connection = connect(tenant, calendly)
    calendly_sync(connection=connection)
    calendly.members = []
    counts = calendly_sync(connection=connection)
    assert counts["users_left"] == 1 and CalendlyUser.objects.get(uri=u).is_member is False


def test_memberships_and_event_types_are_read_across_pages(tenant, calendly):
    for i in range(45):
        provider(tenant, f"Dr {i:02}", f"p{i}@clinic.test")
        uri = calendly.user(f"P{i}", f"p{i}@clinic.test")
        calendly.event_type(f"E{i}", uri, f"Visit {i}")
    connection = connect(tenant, calendly)
    with CalendlyClient(token=TOKEN, base_url=calendly.url, page_size=10) as client:
        counts = calendly_sync(connection=connection, client=client)
    assert counts["users_linked"] == 45 and counts["event_types"] == 45 and counts["pages"] == 5 + 5
    assert CalendlyEventType.objects.filter(connection=connection, calendly_user__resource__isnull=False).count() == 45


def test_a_sync_is_a_job_run_by_the_worker_and_a_failure_is_retryable(tenant, calendly, django_capture_on_commit_callbacks):
    provider(tenant, "Dr Ada", "ada@clinic.test")
    calendly.user("ADA", "ada@clinic.test")
    connection = connect(tenant, calendly)
    calendly.fail("/event_types", status=500)
    with django_capture_on_commit_callbacks(execute=True):
        job = calendly_sync_start(connection=connection)
    run_queued_tasks()
    job.refresh_from_db()
    assert job.kind == Job.Kind.CALENDLY_SYNC and job.status == Job.Status.FAILED
    assert "Calendly answered 500" in job.error and job.calendly_connection == connection
    assert "Calendly answered 500" in CalendlyConnection.objects.get(pk=connection.pk).last_error
    assert not CalendlyUser.objects.filter(connection=connection).exists()  # nothing half-written
    with django_capture_on_commit_callbacks(execute=True):
        assert job_retry(job=job)
    run_queued_tasks()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.counts["users_linked"] == 1 and job.attempts == 2
    assert CalendlyConnection.objects.get(pk=connection.pk).last_error == ""


def test_the_schedule_queues_one_job_per_active_connection(tenant, other_tenant, calendly):
    from django_q.models import Schedule

    schedule = Schedule.objects.get(func="emr.tasks.calendly_sync_all_task")
    assert schedule.repeats == -1 and schedule.minutes == 60
    a = connect(tenant, calendly)
    b = connect(other_tenant, calendly)
    CalendlyConnection.objects.filter(pk=b.pk).update(is_active=False)
    ids = calendly_sync_all()
    assert list(Job.objects.filter(pk__in=ids).values_list("calendly_connection", flat=True)) == [a.pk]


def test_sync_of_an_inactive_connection_fails_the_job(tenant, calendly):
    connection = connect(tenant, calendly)
    CalendlyConnection.objects.filter(pk=connection.pk).update(is_active=False)
    job = Job.objects.create(organization=tenant.organization, calendly_connection=connection, kind=Job.Kind.CALENDLY_SYNC)
    job = job_run(job_id=job.pk)
    assert job.status == Job.Status.FAILED and "inactive" in job.error


def test_the_commands_connect_and_sync(tenant, calendly, capsys):
    provider(tenant, "Dr Ada", "ada@clinic.test")
    calendly.user("ADA", "ada@clinic.test")
    org = str(tenant.organization.pk)
    call_command("connect_calendly", "--organization", org, "--token", TOKEN, "--base-url", calendly.url)
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["organization_id"] == org and printed["base_url"] == calendly.url
    assert TOKEN not in json.dumps(printed)
    call_command("sync_calendly", "--organization", org)
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["status"] == "succeeded" and result["counts"]["users_linked"] == 1
    assert Job.objects.get(pk=result["job_id"]).kind == Job.Kind.CALENDLY_SYNC
    calendly.fail("/users/me", status=401, body={"title": "Unauthenticated", "message": "The access token is invalid"})
    with pytest.raises(CommandError, match="Unauthenticated"):
        call_command("sync_calendly", "--organization", org)


@pytest.mark.parametrize("args,message", [
    (["--organization", "nope", "--token", "t"], "UUID"),
    (["--organization", "00000000-0000-0000-0000-000000000000", "--token", "t"], "No organization"),
    (["--token", "t", "--base-url", "ftp://x"], "http"),
    ([], "--token is required"),
])
def test_connect_calendly_refuses_bad_input(tenant, args, message):
    if "--organization" not in args:
        args = ["--organization", str(tenant.organization.pk), *args]
    with pytest.raises(CommandError, match=message):
        call_command("connect_calendly", *args)
    assert not CalendlyConnection.objects.exists()


def test_sync_calendly_needs_a_connection(tenant):
    with pytest.raises(CommandError, match="connect_calendly"):
        call_command("sync_calendly", "--organization", str(tenant.organization.pk))
