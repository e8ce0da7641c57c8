"""The dashboard on a staff member's admin index (admin.md, "Dashboard"): their organization's
appointments today and tomorrow per location, work needing attention, EMR and calendar health."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from booking.models import Appointment, AppointmentResource, ExternalCalendar
from emr.models import EmrConnection, Job
from tests import factories as f

DENVER = "America/Denver"


def _count(content: str, location_pk, which: str) -> int:
    block = content.split(f'data-location="{location_pk}"', 1)[1]
    match = re.search(rf'data-count="{which}">(\d+)<', block)
    return int(match.group(1))


def _item(content: str, name: str) -> int:
    match = re.search(rf'data-item="{name}">.*?<td class="count">(\d+)<', content, re.S)
    return int(match.group(1))


@pytest.fixture
def clinic(admin_world):
    world = admin_world
    location = world.a_location
    location.timezone = DENVER
    location.save()
    zone = ZoneInfo(DENVER)
    today = timezone.now().astimezone(zone).date()
    at = lambda day, hour: datetime.combine(day, datetime.min.time(), zone) + timedelta(hours=hour)  # noqa: E731
    rows = [
        (at(today, 23), "Late tonight", Appointment.Status.BOOKED),
        (at(today + timedelta(days=1), 9), "Tomorrow morning", Appointment.Status.BOOKED),
        (at(today + timedelta(days=1), 10), "Tomorrow cancelled", Appointment.Status.CANCELLED),
        (at(today + timedelta(days=2), 9), "Day after", Appointment.Status.BOOKED),
    ]
    for start, name, status in rows:
        appointment = Appointment.objects.create(organization=world.a.organization, location=location, start=start,
                                                 end=start + timedelta(minutes=30), status=status, customer_name=name,
                                                 service=world.a_service)
        AppointmentResource.objects.create(appointment=appointment, resource=world.a_resource)
    # Beta's appointments never show on Alpha's dashboard.
    Appointment.objects.create(organization=world.b.organization, location=world.b_location, start=at(today, 23),
                               end=at(today, 23) + timedelta(minutes=30), customer_name="Beta patient")
    return world


def test_todays_and_tomorrows_appointments_per_location_by_local_day(client, clinic):
    client.force_login(clinic.staff)
    content = client.get("/admin/").content.decode()
    assert _count(content, clinic.a_location.pk, "today") == 1
    assert _count(content, clinic.a_location.pk, "tomorrow") == 1
    assert "Late tonight" in content and "Tomorrow morning" in content
    assert "Day after" not in content and "Tomorrow cancelled" not in content and "Beta patient" not in content
    assert "23:00–23:30 MST" in content


def test_work_needing_attention_and_emr_health(client, clinic):
    now = timezone.now()
    org = clinic.a.organization
    Job.objects.create(organization=org, kind=Job.Kind.APPOINTMENTS_FETCH, status=Job.Status.FAILED, error="EMR down",
                       emr_connection=clinic.a.emr_connection)
    stuck = Job.objects.create(organization=org, kind=Job.Kind.APPOINTMENTS_FETCH, status=Job.Status.RUNNING,
                               emr_connection=clinic.a.emr_connection)
    Job.objects.filter(pk=stuck.pk).update(started_at=now - timedelta(hours=1))
    Job.objects.create(organization=clinic.b.organization, kind=Job.Kind.APPOINTMENTS_FETCH, status=Job.Status.FAILED)
    EmrConnection.objects.filter(pk=clinic.a.emr_connection.pk).update(login_required_at=now)
    ExternalCalendar.objects.create(organization=org, resource=clinic.a_resource, name="Dr Adams personal",
                                    url="https://cal.example/feed.ics", last_error="HTTP 404")
    client.force_login(clinic.staff)
    content = client.get("/admin/").content.decode()
    assert _item(content, "jobs_failed") == 1
    assert _item(content, "jobs_stuck") == 1
    assert 'data-health="needs a new login"' in content
    assert "Dr Adams personal" in content and "HTTP 404" in content


def test_viewer_sees_the_dashboard_and_an_outsider_nothing(client, clinic):
    client.force_login(clinic.viewer)
    assert "Late tonight" in client.get("/admin/").content.decode()
    client.force_login(clinic.outsider)
    assert "Late tonight" not in client.get("/admin/", follow=True).content.decode()


def test_a_superuser_chooses_the_organization(client, clinic):
    client.force_login(clinic.superuser)
    assert "Late tonight" not in client.get("/admin/").content.decode()
    content = client.get("/admin/", {"organization": str(clinic.a.organization.pk)}).content.decode()
    assert "Late tonight" in content
    assert client.get("/admin/", {"organization": "junk"}).status_code == 200


def test_a_location_with_nothing_booked_says_so(client, admin_world):
    f.LocationFactory(organization=admin_world.a.organization, name="Quiet annex")
    client.force_login(admin_world.staff)
    content = client.get("/admin/").content.decode()
    assert "Quiet annex" in content and "Nothing more booked today or tomorrow." in content
