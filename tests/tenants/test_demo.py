"""The demo organization: built once, the same on every start, with working credentials."""

from __future__ import annotations

import json
import socket
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from rest_framework.test import APIClient

from booking.models import Appointment, Block, Location, RecurringBlock, Resource, Service, Shift
from tenants import demo
from tenants.models import Membership, Organization


@pytest.fixture
def credentials_file(tmp_path, monkeypatch):
    path = tmp_path / "demo_credentials.json"
    monkeypatch.setattr(demo, "CREDENTIALS_FILE", path)
    return path


def _counts():
    return [m.objects.count() for m in (Organization, Location, Service, Resource, Shift, Block, RecurringBlock, Appointment)]


def test_setup_builds_the_clinic_once_and_keeps_its_credentials(db, credentials_file):
    out = StringIO()
    call_command("demo", "--setup-only", stdout=out)
    first = json.loads(credentials_file.read_text())
    counts = _counts()
    org = Organization.objects.get(slug=demo.DEMO_SLUG)
    assert {loc.timezone for loc in Location.objects.filter(organization=org)} == {"America/New_York", "America/Denver"}
    assert Resource.objects.filter(organization=org).count() == 8
    assert Service.objects.filter(organization=org, duration_select=True).exists()
    assert Appointment.objects.filter(organization=org).exists()
    assert first["api_key"] in out.getvalue() and "/admin/" in out.getvalue()

    call_command("demo", "--setup-only", stdout=StringIO())
    assert _counts() == counts
    assert json.loads(credentials_file.read_text()) == first

    assert APIClient(HTTP_X_API_KEY=first["api_key"]).get("/v3/locations").json()["count"] == 2
    staff = Membership.objects.get(user__username=first["staff_username"])
    assert staff.organization == org and not staff.user.is_superuser
    assert staff.user.check_password(first["staff_password"])


@override_settings(SITE_URL="http://127.0.0.1:0")
def test_a_busy_port_stops_the_demo_before_it_starts_anything(db, credentials_file, settings):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        settings.SITE_URL = f"http://127.0.0.1:{busy.getsockname()[1]}"
        with pytest.raises(CommandError, match="already in use"):
            call_command("demo", stdout=StringIO())
    assert not Organization.objects.filter(slug=demo.DEMO_SLUG).exists()
