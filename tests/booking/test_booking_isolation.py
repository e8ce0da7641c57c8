"""Tenant isolation of the availability and appointment endpoints, as a table.

Tenant A owns everything the URLs and bodies name. A's own key succeeds; B's key or bearer token
gets 404 (never data) and A's data and events are unchanged; no key, a malformed key and a revoked
key get 401. ``tests/api/test_tenant_isolation.py::test_every_route_is_in_the_table`` counts these
rows (``tests/booking/isolation_rows.py``).
"""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from tenants.models import Event
from tenants.services import api_client_create, api_client_revoke, oauth_token_issue
from tests.api.test_tenant_isolation import snapshot
from tests.booking.conftest import MONDAY, clinic_make
from tests.booking.isolation_rows import ROWS

CREDENTIALS = ["own", "other_key", "other_bearer", "none", "malformed", "revoked"]


@pytest.fixture
def setup(db):
    a, b = clinic_make("A"), clinic_make("B")
    own_api = a.tenant.v3()
    booked = own_api.post(
        "/v3/appointments",
        {"ServiceId": str(a.service.pk), "LocationId": str(a.location.pk), "startTime": f"{MONDAY}T09:00:00-05:00"},
        format="json",
    )
    assert booked.status_code == 201
    theirs = b.tenant.v3().post(
        "/v3/appointments",
        {"ServiceId": str(b.service.pk), "LocationId": str(b.location.pk), "startTime": f"{MONDAY}T09:00:00-05:00"},
        format="json",
    )
    assert theirs.status_code == 201
    revoked = api_client_create(organization=a.organization)
    api_client_revoke(api_client=revoked.api_client)
    clients = {
        "own": own_api,
        "other_key": b.tenant.v3(),
        "other_bearer": APIClient(HTTP_AUTHORIZATION=f"Bearer {oauth_token_issue(api_client=b.tenant.api_client).access_token}"),
        "none": APIClient(),
        "malformed": APIClient(HTTP_X_API_KEY="sk_" + "0" * 60),
        "revoked": APIClient(HTTP_X_API_KEY=revoked.api_key),
    }
    ids = {
        "monday": MONDAY,
        "location": str(a.location.pk),
        "service": str(a.service.pk),
        "resource": str(a.resources[0].pk),
        "appointment": booked.json()["id"],
    }
    bodies = {
        "book": {"ServiceId": ids["service"], "LocationId": ids["location"], "startTime": f"{MONDAY}T10:00:00-05:00",
                 "ResourceIds": [ids["resource"]]},
        "reschedule": {"startTime": f"{MONDAY}T11:00:00-05:00"},
    }
    return a, b, clients, ids, bodies, theirs.json()["id"]


def _call(client, method, url, body):
    return client.generic(method, url, data=json.dumps(body) if body is not None else "", content_type="application/json")


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("method,template,body_key,owner_status", ROWS, ids=[f"{r[0]} {r[1].split('?')[0]}" for r in ROWS])
def test_endpoints(setup, credential, method, template, body_key, owner_status):
    a, b, clients, ids, bodies, _ = setup
    url = template.format(**ids)
    before = snapshot(a.organization)
    events_before = Event.objects.filter(organization=a.organization).count()
    response = _call(clients[credential], method, url, bodies.get(body_key))
    if credential == "own":
        assert response.status_code == owner_status, response.content
        return
    expected = 404 if credential in ("other_key", "other_bearer") else 401
    assert response.status_code == expected, response.content
    payload = response.json()
    assert payload["statusCode"] == expected and set(payload) == {"statusCode", "name", "message", "errors"}
    assert snapshot(a.organization) == before
    assert Event.objects.filter(organization=a.organization).count() == events_before


@pytest.mark.parametrize("credential", CREDENTIALS)
def test_list(setup, credential):
    a, b, clients, ids, bodies, their_appointment = setup
    response = clients[credential].get("/v3/appointments")
    if credential in ("none", "malformed", "revoked"):
        assert response.status_code == 401
        return
    listed = [item["id"] for item in response.json()["data"]]
    if credential == "own":
        assert listed == [ids["appointment"]]
    else:
        assert listed == [their_appointment]
        filtered = clients[credential].get("/v3/appointments", {"ResourceId": ids["resource"]})
        assert filtered.json()["data"] == []
