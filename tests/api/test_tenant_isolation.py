"""Tenant isolation as a table: every ``/v3/`` endpoint × every kind of credential.

Tenant A owns every object the URLs name. A's own key succeeds; B's key or B's bearer token gets
404 (never 403, never data) and A's data is unchanged; no key, a malformed key and a revoked key
get 401. ``test_every_route_is_in_the_table`` fails when an endpoint is added without a row here.
"""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from tenants.models import TenantOwnedModel
from tenants.services import api_client_create, api_client_revoke, oauth_token_issue
from tests.api.v3_fixtures import World, location_body, resource_body, service_body
from tests.booking.isolation_rows import ROUTES as BOOKING_ROUTES
from tests.conftest import make_tenant

BLOCK = {"startDate": "2031-01-07T12:00:00Z", "endDate": "2031-01-07T13:00:00Z"}


def _bodies(w: World) -> dict:
    return {
        "location": location_body(name="Changed"),
        "service": service_body(name="Changed"),
        "resource": resource_body(name="Changed"),
        "block": {**BLOCK, "ResourceId": w.resource["id"]},
        "recurring": {"LocationId": w.location["id"], "frequency": "DAILY", "startDate": "2031-01-01",
                      "startTime": "08:00:00", "endTime": "09:00:00"},
        "link": {"ServiceId": w.service["id"], "LocationId": w.location["id"]},
        "schedule": {"weeklyAvailability": []},
        "allocation": {**BLOCK},
    }


# (method, url template, body key or None, status for the owner)
ITEM_ROWS = [
    ("GET", "/v3/locations/{location}", None, 200),
    ("PUT", "/v3/locations/{location}", "location", 200),
    ("PATCH", "/v3/locations/{location}", "location", 200),
    ("DELETE", "/v3/locations/{location}", None, 204),
    ("GET", "/v3/services/{service}", None, 200),
    ("PUT", "/v3/services/{service}", "service", 200),
    ("PATCH", "/v3/services/{service}", "service", 200),
    ("DELETE", "/v3/services/{service}", None, 204),
    ("GET", "/v3/resources/{resource}", None, 200),
    ("PUT", "/v3/resources/{resource}", "resource", 200),
    ("PATCH", "/v3/resources/{resource}", "resource", 200),
    ("DELETE", "/v3/resources/{resource}", None, 204),
    ("GET", "/v3/resources/{resource}/services", None, 200),
    ("POST", "/v3/resources/{resource}/services", "link", 200),
    ("DELETE", "/v3/resources/{resource}/services/{service}", None, 204),
    ("GET", "/v3/resources/{resource}/schedule", None, 200),
    ("PUT", "/v3/resources/{resource}/schedule", "schedule", 200),
    ("GET", "/v3/resources/{resource}/allocations", None, 200),
    ("POST", "/v3/resources/{resource}/allocations", "allocation", 201),
    ("GET", "/v3/resources/{resource}/allocations/{allocation}", None, 200),
    ("DELETE", "/v3/resources/{resource}/allocations/{allocation}", None, 204),
    ("GET", "/v3/blocks/{block}", None, 200),
    ("PUT", "/v3/blocks/{block}", "block", 200),
    ("PATCH", "/v3/blocks/{block}", "block", 200),
    ("DELETE", "/v3/blocks/{block}", None, 204),
    ("GET", "/v3/recurringBlocks/{recurring}", None, 200),
    ("PUT", "/v3/recurringBlocks/{recurring}", "recurring", 200),
    ("PATCH", "/v3/recurringBlocks/{recurring}", "recurring", 200),
    ("DELETE", "/v3/recurringBlocks/{recurring}", None, 204),
]

# Collections: the list shows only the caller's objects; a create lands in the caller's tenant.
COLLECTION_ROWS = [
    ("GET", "/v3/locations", None),
    ("POST", "/v3/locations", "location"),
    ("GET", "/v3/services", None),
    ("POST", "/v3/services", "service"),
    ("GET", "/v3/resources", None),
    ("POST", "/v3/resources", "resource"),
    ("GET", "/v3/blocks", None),
    ("POST", "/v3/blocks", "block"),
    ("GET", "/v3/recurringBlocks", None),
    ("POST", "/v3/recurringBlocks", "recurring"),
]

# Routes outside the tenant data: the token endpoint authenticates by client secret (tested in
# tests/tenants/test_oauth.py).
PUBLIC_ROUTES = {"/v3/oauth/token"}

CREDENTIALS = ["own", "other_key", "other_bearer", "none", "malformed", "revoked"]


def snapshot(organization) -> dict:
    """Every tenant-owned row of the organization, for 'unchanged' checks."""
    state = {}
    for model in apps.get_models():
        if issubclass(model, TenantOwnedModel) and model._meta.app_label in ("booking",):
            state[model.__name__] = sorted(
                (tuple(sorted((k, str(v)) for k, v in row.items())) for row in model.objects.filter(organization=organization).values()),
            )
    return state


@pytest.fixture
def setup(db):
    a, b = make_tenant("A"), make_tenant("B")
    world = World(a.v3())
    World(b.v3())  # B has data of its own, so "B sees nothing of A" is not trivially true
    revoked = api_client_create(organization=a.organization)
    api_client_revoke(api_client=revoked.api_client)
    clients = {
        "own": a.v3(),
        "other_key": b.v3(),
        "other_bearer": APIClient(HTTP_AUTHORIZATION=f"Bearer {oauth_token_issue(api_client=b.api_client).access_token}"),
        "none": APIClient(),
        "malformed": APIClient(HTTP_X_API_KEY="sk_" + "0" * 60),
        "revoked": APIClient(HTTP_X_API_KEY=revoked.api_key),
    }
    ids = {
        "location": world.location["id"], "service": world.service["id"], "resource": world.resource["id"],
        "block": world.block["id"], "recurring": world.recurring_block["id"], "allocation": world.allocation["id"],
    }
    # Rows for the DELETE-link endpoint must not hit the deletion guards of other rows.
    return a, b, world, clients, ids


def _call(client: APIClient, method: str, url: str, body):
    return client.generic(method, url, data=__import__("json").dumps(body) if body is not None else "",
                          content_type="application/json")


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("method,template,body_key,owner_status", ITEM_ROWS, ids=[f"{r[0]} {r[1]}" for r in ITEM_ROWS])
def test_item_endpoints(setup, credential, method, template, body_key, owner_status):
    a, b, world, clients, ids = setup
    url = template.format(**ids)
    body = _bodies(world)[body_key] if body_key else None
    before = snapshot(a.organization)
    response = _call(clients[credential], method, url, body)
    if credential == "own":
        assert response.status_code == owner_status, response.content
        return
    expected = 404 if credential in ("other_key", "other_bearer") else 401
    assert response.status_code == expected, response.content
    payload = response.json()
    assert payload["statusCode"] == expected
    assert payload["name"] == ("NotFoundError" if expected == 404 else "UnauthorizedError")
    assert set(payload) == {"statusCode", "name", "message", "errors"}  # no data leaks into the body
    assert snapshot(a.organization) == before


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("method,url,body_key", COLLECTION_ROWS, ids=[f"{r[0]} {r[1]}" for r in COLLECTION_ROWS])
def test_collection_endpoints(setup, credential, method, url, body_key):
    a, b, world, clients, ids = setup
    body = _bodies(world)[body_key] if body_key else None
    if body_key == "block":
        body = {**body, "ResourceId": ids["resource"]}  # A's resource, used by B: must not resolve
    before = snapshot(a.organization)
    response = _call(clients[credential], method, url, body)
    if credential in ("none", "malformed", "revoked"):
        assert response.status_code == 401 and response.json()["name"] == "UnauthorizedError"
        assert snapshot(a.organization) == before
        return
    if method == "GET":
        assert response.status_code == 200
        listed = {item["id"] for item in response.json()["data"]}
        a_ids = set(ids.values())
        if credential == "own":
            assert listed & a_ids
        else:
            assert listed and not (listed & a_ids)
        return
    if credential == "own":
        assert response.status_code == 201, response.content
        return
    # B creating with a body that names A's objects: those references don't resolve for B.
    if body_key in ("block", "recurring"):
        assert response.status_code == 400, response.content
        assert response.json()["errors"][0]["field"] in ("ResourceId", "LocationId")
    else:
        assert response.status_code == 201  # a plain object: created in B's tenant, not A's
    assert snapshot(a.organization) == before


def _routes(resolver=None, prefix: str = "") -> list[str]:
    resolver = resolver or get_resolver()
    out = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            out.extend(_routes(entry, prefix + str(entry.pattern)))
        elif isinstance(entry, URLPattern):
            out.append("/" + prefix + str(entry.pattern))
    return out


def _normalize(route: str) -> str:
    return re.sub(r"<[^>]+>", "{}", route)


def test_every_route_is_in_the_table():
    v3_routes = {_normalize(r) for r in _routes() if r.startswith("/v3/")}
    covered = {re.sub(r"\{[^}]+\}", "{}", t) for _, t, _, _ in ITEM_ROWS} | {u for _, u, _ in COLLECTION_ROWS} | PUBLIC_ROUTES
    covered |= BOOKING_ROUTES  # availability and appointments: tests/booking/test_booking_isolation.py
    assert v3_routes - covered == set(), "add isolation rows for these endpoints"
