"""``/v1/`` isolation as a table: every EMR endpoint × every kind of credential.

Organization A has two EMR connections (A1, A2); organization B has one. A1's credentials reach
A1's data; A2's credentials (same organization, other EMR) and B's get 404 for A1's objects and
never see them in lists; missing, partial or wrong credentials get 401 in the ``/v1/`` shape.
``test_every_route_is_in_the_table`` fails when an endpoint is added without rows here.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import URLPattern
from rest_framework.test import APIClient

from booking.models import Appointment, Location, Resource, Shift
from emr.api import urls as emr_urls
from emr.models import EmrConnection, Job
from emr.services.connections import emr_connection_create
from tests.conftest import make_tenant

START = datetime(2025, 5, 5, 14, tzinfo=UTC)


def _client(headers: dict) -> APIClient:
    client = APIClient()
    client.credentials(**headers)
    return client


def _v1_headers(client_id, client_secret, token) -> dict:
    return {"HTTP_CLIENT_ID": client_id, "HTTP_CLIENT_SECRET": client_secret, "HTTP_ACCESS_TOKEN": token}


def _owned(org, connection, suffix):
    provider = Resource.objects.create(organization=org, name=f"Dr {suffix}", type="provider", ehr_id=f"P-{suffix}", emr_connection=connection)
    Shift.objects.create(organization=org, resource=provider, day_of_week=1, start_time="09:00", end_time="17:00")
    location = Location.objects.create(organization=org, name=f"Site {suffix}", timezone="UTC", ehr_id=f"L-{suffix}", emr_connection=connection)
    appointment = Appointment.objects.create(
        organization=org, emr_connection=connection, source="emr", ehr_appointment_id=f"A-{suffix}", start=START,
        end=START + timedelta(minutes=30), primary_provider=provider, location=location, patient_mrn=f"M-{suffix}",
    )
    return provider, location, appointment


@pytest.fixture
def world(db):
    a, b = make_tenant("A"), make_tenant("B")
    a2 = emr_connection_create(organization=a.organization, vendor="fhir", name="Second EMR", base_url="https://ehr.example/fhir")
    a1_rows = _owned(a.organization, a.emr_connection, "A1")
    a2_rows = _owned(a.organization, a2.connection, "A2")
    b_rows = _owned(b.organization, b.emr_connection, "B")
    shared = Resource.objects.create(organization=a.organization, name="Dr Shared", type="provider", ehr_id="P-SHARED")
    inactive = emr_connection_create(organization=a.organization, vendor="sandbox", name="Old EMR")
    EmrConnection.objects.filter(pk=inactive.connection.pk).update(is_active=False)
    clients = {
        "own": _client(_v1_headers(a.client_id, a.client_secret, a.access_token)),
        "other_connection": _client(_v1_headers(a.client_id, a.client_secret, a2.access_token)),
        "other_org": _client(_v1_headers(b.client_id, b.client_secret, b.access_token)),
        "none": APIClient(),
        "partial": _client({"HTTP_CLIENT_ID": a.client_id, "HTTP_CLIENT_SECRET": a.client_secret}),
        "wrong_secret": _client(_v1_headers(a.client_id, "cs_" + "x" * 60, a.access_token)),
        "other_orgs_token": _client(_v1_headers(a.client_id, a.client_secret, b.access_token)),
        "inactive_connection": _client(_v1_headers(a.client_id, a.client_secret, inactive.access_token)),
    }
    ids = {"provider": str(a1_rows[0].pk), "provider_ehr": "P-A1", "location": str(a1_rows[1].pk)}
    return a, b, a1_rows, a2_rows, b_rows, shared, clients, ids


DAY = "start_date=2025-05-05&end_date=2025-05-05"

# (method, url template, body, owner status)
ITEM_ROWS = [
    ("PATCH", "/v1/providers/{provider}", {"hide_in_availability": True}, 200),
    ("PATCH", "/v1/providers/ehr/{provider_ehr}", {"hide_in_availability": True}, 200),
    ("PATCH", "/v1/locations/{location}", {"status": "inactive"}, 200),
]
LIST_ROWS = [
    ("GET", f"/v1/appointments?{DAY}", None, "appointments", "ehr_appointment_id"),
    ("GET", "/v1/providers", None, "providers", "ehr_id"),
    ("GET", "/v1/locations", None, "locations", "ehr_id"),
    # the default hours give every visible provider windows, the shared one included
    ("GET", f"/v1/availability?{DAY}&fallback_to_default_hours=true", None, "results.availability", "provider_id"),
]
OTHER_ROWS = [
    ("GET", "/v1/settings", None),
    ("POST", "/v1/appointments/fetch", {"start_date": "2025-05-05", "end_date": "2025-05-05"}),
    ("PATCH", "/v1/settings", {"visit_statuses": [{"code": "CHK", "description": "Checked out"}]}),
    ("POST", "/v1/availability/fetch", {"start_date": "2025-05-05", "end_date": "2025-05-05", "provider_ids": ["P-A1"]}),
]
CREDENTIALS = ["own", "other_connection", "other_org", "none", "partial", "wrong_secret", "other_orgs_token", "inactive_connection"]
UNAUTHORIZED = {"none", "partial", "wrong_secret", "other_orgs_token", "inactive_connection"}


def _call(client, method, url, body):
    return client.generic(method, url, json.dumps(body) if body is not None else "", content_type="application/json")


def _state(org):
    return (
        sorted(Resource.objects.filter(organization=org).values_list("pk", "hide_in_availability", "status")),
        sorted(Location.objects.filter(organization=org).values_list("pk", "status")),
        Job.objects.filter(organization=org).count(),
    )


def _assert_unauthorized(response, credential):
    assert response.status_code == 401, (credential, response.content)
    body = response.json()
    assert set(body) == {"success", "message"} and body["success"] is False
    assert body["message"].startswith("Unauthorized: ")


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("method,template,body,owner_status", ITEM_ROWS, ids=[f"{r[0]} {r[1]}" for r in ITEM_ROWS])
def test_item_endpoints(world, credential, method, template, body, owner_status):
    a, b, *_rest, clients, ids = world
    before = _state(a.organization)
    response = _call(clients[credential], method, template.format(**ids), body)
    if credential == "own":
        assert response.status_code == owner_status, response.content
        return
    if credential in UNAUTHORIZED:
        _assert_unauthorized(response, credential)
    else:
        assert response.status_code == 404, response.content
        assert set(response.json()) == {"success", "message"} and response.json()["success"] is False
    assert _state(a.organization) == before


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("method,url,body,key,field", LIST_ROWS, ids=[r[1] for r in LIST_ROWS])
def test_list_endpoints(world, credential, method, url, body, key, field):
    a, b, a1_rows, a2_rows, b_rows, shared, clients, ids = world
    response = _call(clients[credential], method, url, body)
    if credential in UNAUTHORIZED:
        _assert_unauthorized(response, credential)
        return
    assert response.status_code == 200, response.content
    items = response.json()
    for part in key.split("."):
        items = items[part]
    listed = {item[field] for item in items}
    suffix = {"own": "A1", "other_connection": "A2", "other_org": "B"}[credential]
    own_prefix = {"appointments": "A-", "providers": "P-", "locations": "L-", "results.availability": "P-"}[key]
    assert f"{own_prefix}{suffix}" in listed
    for other in {"A1", "A2", "B"} - {suffix}:
        assert f"{own_prefix}{other}" not in listed
    if key in ("providers", "results.availability"):  # a provider of the organization from no EMR: seen by its connections only
        assert ("P-SHARED" in listed) is (credential != "other_org")


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("method,url,body", OTHER_ROWS, ids=[r[1] for r in OTHER_ROWS])
def test_other_endpoints(world, credential, method, url, body):
    a, b, *_rest, clients, ids = world
    response = _call(clients[credential], method, url, body)
    if credential in UNAUTHORIZED:
        _assert_unauthorized(response, credential)
        assert not Job.objects.exists()
        return
    assert response.status_code in (200, 202), response.content
    if url == "/v1/settings":
        expected = {"own": a.emr_connection, "other_org": b.emr_connection}.get(credential)
        reference = response.json()["access_token_reference_id"]
        if expected is not None:
            assert reference == expected.access_token_reference_id
        else:
            assert reference not in (a.emr_connection.access_token_reference_id, b.emr_connection.access_token_reference_id)
    else:
        job = Job.objects.get(pk=response.json()["job_id"])
        org = b.organization if credential == "other_org" else a.organization
        assert job.organization_id == org.pk
        assert (job.emr_connection_id == a.emr_connection.pk) is (credential == "own")


def test_unauthorized_messages(world):
    *_rest, clients, ids = world
    assert _call(clients["none"], "GET", "/v1/providers", None).json()["message"] == "Unauthorized: Authentication credentials were not provided."
    assert _call(clients["partial"], "GET", "/v1/providers", None).json()["message"] == (
        "Unauthorized: Missing client_id, client_secret or access_token header."
    )
    assert _call(clients["wrong_secret"], "GET", "/v1/providers", None).json()["message"] == (
        "Unauthorized: Invalid client credentials or access token."
    )


def test_hyphenated_header_names_work_over_real_http(world, live_server):
    """``client-id``/``client-secret``/``access-token`` (what proxies that drop underscore headers
    let through) authenticate like the underscore spelling."""
    import http.client
    from urllib.parse import urlsplit

    a = world[0]
    parts = urlsplit(live_server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", "/v1/settings", headers={"client-id": a.client_id, "client-secret": a.client_secret, "access-token": a.access_token})
    response = conn.getresponse()
    body = json.loads(response.read())
    assert response.status == 200 and body["access_token_reference_id"] == a.emr_connection.access_token_reference_id


def _v1_routes() -> set[str]:
    return {re.sub(r"<[^>]+>", "{}", "/v1/" + str(p.pattern)) for p in emr_urls.urlpatterns if isinstance(p, URLPattern)}


def test_every_route_is_in_the_table():
    covered = {re.sub(r"\{[^}]+\}", "{}", row[1].split("?")[0]) for row in ITEM_ROWS + LIST_ROWS + OTHER_ROWS}
    assert _v1_routes() - covered == set(), "add isolation rows for these endpoints"


@pytest.mark.django_db(transaction=True)
def test_underscore_header_names_work_over_real_http_through_the_projects_server():
    """The exact ``client_id`` spelling through the project's development server (plain WSGI
    servers drop header names with underscores); a wrong one is a 401 in the ``/v1/`` shape."""
    import http.client

    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.servers.basehttp import ThreadedWSGIServer
    from django.db import connections
    from django.test.testcases import LiveServerThread

    from tenants.headers import UnderscoreHeaderWSGIServer

    class Server(UnderscoreHeaderWSGIServer, ThreadedWSGIServer):
        pass

    class Thread(LiveServerThread):
        server_class = Server

    tenant = make_tenant("Underscores")
    overrides = {c.alias: c for c in connections.all() if c.vendor == "sqlite" and c.is_in_memory_db()}
    for conn in overrides.values():
        conn.inc_thread_sharing()
    thread = Thread("127.0.0.1", StaticFilesHandler, overrides, 0)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    try:
        def get(secret):
            conn = http.client.HTTPConnection("127.0.0.1", thread.port, timeout=10)
            conn.request("GET", "/v1/settings", headers={"client_id": tenant.client_id, "client_secret": secret, "access_token": tenant.access_token})
            response = conn.getresponse()
            return response.status, json.loads(response.read())

        status, body = get(tenant.client_secret)
        assert status == 200 and body["access_token_reference_id"] == tenant.emr_connection.access_token_reference_id
        status, body = get("cs_" + "y" * 60)
        assert status == 401 and body == {"success": False, "message": "Unauthorized: Invalid client credentials or access token."}
    finally:
        thread.terminate()
        for conn in overrides.values():
            conn.dec_thread_sharing()
