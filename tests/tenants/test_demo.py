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
from emr.services import demo
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


def _child(code: str, **popen):
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, **popen)
    assert child.stdout.readline().strip() == "ready"
    return child


IGNORES_SIGINT = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print('ready', flush=True); time.sleep(120)"
IGNORES_SIGINT_AND_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); signal.signal(signal.SIGTERM, signal.SIG_IGN);"
    " print('ready', flush=True); time.sleep(120)"
)


def test_children_that_ignore_sigint_are_terminated_not_killed():
    """As the demo's web server and worker do when the demo was started with SIGINT ignored
    (nohup, or in the background of a script): they stop on SIGTERM."""
    import signal

    from emr.management.commands.demo import stop_children

    children = [_child(IGNORES_SIGINT), _child(IGNORES_SIGINT)]
    killed = stop_children(children, grace=30)
    assert killed == []
    assert [child.returncode for child in children] == [-signal.SIGTERM, -signal.SIGTERM]


def test_a_child_that_ignores_sigterm_too_is_killed_after_the_grace_period():
    import signal

    from emr.management.commands.demo import stop_children

    stubborn, polite = _child(IGNORES_SIGINT_AND_SIGTERM), _child(IGNORES_SIGINT)
    killed = stop_children([stubborn, polite], grace=0.5)
    assert killed == [stubborn]
    assert (stubborn.returncode, polite.returncode) == (-signal.SIGKILL, -signal.SIGTERM)


def test_killing_a_child_also_stops_the_processes_it_started():
    """The worker runs its own processes; the demo starts each child in its own session, and a
    kill takes the whole group, so none is left behind."""
    import os
    import signal
    import time

    from emr.management.commands.demo import stop_children

    code = (
        "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        " grandchild = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']);"
        " print('ready', flush=True); print(grandchild.pid, flush=True); time.sleep(120)"
    )
    child = _child(code, start_new_session=True)
    grandchild = int(child.stdout.readline())
    assert stop_children([child], grace=0.5) == [child]

    def alive(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().split(") ", 1)[1][0] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(grandchild):
        os.kill(grandchild, signal.SIGKILL)
        pytest.fail("the killed child's own process outlived it")


def test_the_demo_lets_webhooks_reach_a_local_receiver_unless_told_otherwise():
    from emr.management.commands.demo import demo_children_env

    assert demo_children_env({"PATH": "/bin"}) == {"PATH": "/bin", "WEBHOOK_ALLOW_PRIVATE_URLS": "true"}
    assert demo_children_env({"WEBHOOK_ALLOW_PRIVATE_URLS": "false"})["WEBHOOK_ALLOW_PRIVATE_URLS"] == "false"


def test_every_demo_service_is_offered_by_a_clinician_and_rooms_only_join_one(db, credentials_file):
    from booking.models import ResourceService, RoundRobin

    out = StringIO()
    call_command("demo", "--setup-only", stdout=out)
    org = Organization.objects.get(slug=demo.DEMO_SLUG)
    clinicians = (Resource.Type.PROVIDER, Resource.Type.STAFF)
    for service in Service.objects.filter(organization=org):
        links = ResourceService.objects.filter(service=service).select_related("resource")
        assert any(link.resource.type in clinicians for link in links), service.name
        if any(link.resource.type not in clinicians for link in links):
            assert service.round_robin == RoundRobin.COMBINED, service.name  # a room or device never alone
    # The measured problem: "Follow-up visit" offered with only Exam Room 3.
    follow_up = Service.objects.get(organization=org, name="Follow-up visit")
    assert not ResourceService.objects.filter(service=follow_up, resource__type__in=["room", "equipment"]).exists()


def test_the_demo_has_one_login_of_each_role_and_prints_them(db, credentials_file):
    out = StringIO()
    call_command("demo", "--setup-only", stdout=out)
    creds = json.loads(credentials_file.read_text())
    org = Organization.objects.get(slug=demo.DEMO_SLUG)
    roles = {}
    for key in ("staff", "manager", "viewer"):
        membership = Membership.objects.get(user__username=creds[f"{key}_username"], organization=org)
        assert membership.user.check_password(creds[f"{key}_password"]) and not membership.user.is_superuser
        assert f"{creds[f'{key}_username']} / {creds[f'{key}_password']}" in out.getvalue()
        roles[key] = membership.role
    assert roles == {"staff": "frontdesk", "manager": "admin", "viewer": "viewer"}
