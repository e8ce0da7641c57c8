"""Provider directory isolation as a table: every ``/api/v1/`` route × every kind of credential.

Organizations A and B use the same Calendly account (the same fake), with providers of the same
email and event types of the same id. A's key sees A's providers only, B's key B's only; no key,
an unknown key, a revoked key, the other families' headers get 401 in the directory's shape.
``test_every_route_is_in_the_table`` fails when a route is added under ``/api/v1/`` without rows.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from emr.services.calendly import calendly_sync
from tenants.services import api_client_create, api_client_revoke
from tests.conftest import make_tenant
from tests.emr.calendly_fixtures import connect, day_after_tomorrow, provider, z

ET = "aaaaaaaa-0000-4000-8000-000000000001"


@pytest.fixture
def world(db, calendly):
    a, b = make_tenant("A"), make_tenant("B")
    provider(a, "Doc A", "doc@clinic.test", states=["CA"])
    provider(b, "Doc B", "doc@clinic.test", states=["CA"])
    calendly.event_type(ET, calendly.user("DOC", "doc@clinic.test"), "Intake")
    start = day_after_tomorrow()
    calendly.times[calendly.event_types[0]["uri"]] = [z(start + timedelta(hours=9))]
    for tenant in (a, b):
        calendly_sync(connection=connect(tenant, calendly))
    revoked = api_client_create(organization=a.organization)
    api_client_revoke(api_client=revoked.api_client)

    def client(**headers):
        c = APIClient()
        c.credentials(**headers)
        return c

    clients = {
        "own": client(HTTP_CV_API_KEY=a.api_key),
        "other_key": client(HTTP_CV_API_KEY=b.api_key),
        "none": client(),
        "malformed": client(HTTP_CV_API_KEY="sk_" + "0" * 60),
        "revoked": client(HTTP_CV_API_KEY=revoked.api_key),
        "v3_header": client(HTTP_X_API_KEY=a.api_key),
        "v1_headers": client(HTTP_CLIENT_ID=a.client_id, HTTP_CLIENT_SECRET=a.client_secret, HTTP_ACCESS_TOKEN=a.access_token),
    }
    return {"start": start, "clients": clients}


ROWS = [
    ("/api/v1/provider-availability?provider_states=CA", None),
    ("/api/v1/provider-availability?provider_states=CA&event_type_id={et}&start_time={start}&end_time={end}", "window"),
]
CREDENTIALS = ["own", "other_key", "none", "malformed", "revoked", "v3_header", "v1_headers"]


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("template,shape", ROWS, ids=["links", "window"])
def test_directory_routes(world, credential, template, shape):
    start = world["start"]
    url = template.format(et=ET, start=z(start), end=z(start + timedelta(days=1)))
    response = world["clients"][credential].get(url)
    if credential in ("own", "other_key"):
        assert response.status_code == 200, response.content
        data = response.json()["data"]
        assert [item["providerName"] for item in data] == ["Doc A" if credential == "own" else "Doc B"]
        assert data[0]["eventTypeId"] == ET
        if shape == "window":
            assert data[0]["startTime"] == [z(start + timedelta(hours=9))]
        return
    assert response.status_code == 401, response.content
    body = response.json()
    assert set(body) == {"status", "success", "message", "error"}  # no data leaks into the body
    assert body["status"] == 401 and body["message"] == "Unauthorized"


def _routes(resolver=None, prefix: str = "") -> list[str]:
    resolver = resolver or get_resolver()
    out = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            out.extend(_routes(entry, prefix + str(entry.pattern)))
        elif isinstance(entry, URLPattern):
            out.append("/" + prefix + str(entry.pattern))
    return out


def test_every_route_is_in_the_table():
    routes = {re.sub(r"<[^>]+>", "{}", r) for r in _routes() if r.startswith("/api/v1/")}
    covered = {template.split("?")[0] for template, _ in ROWS}
    assert routes and routes - covered == set(), "add isolation rows for these endpoints"
