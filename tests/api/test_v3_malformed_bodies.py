"""Every ``/v3/`` write route answers a body that isn't a JSON object (or isn't JSON at all) with
400 in the ``/v3/`` error shape, and writes nothing.

``test_every_write_route_is_in_the_table`` fails when a route that takes a body is added without a
row here.
"""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver

from tenants.models import ApiClient, Event, OAuthToken, TenantOwnedModel
from tests.api.v3_fixtures import World
from tests.booking.conftest import MONDAY, clinic_make

# (method, url template)
WRITE_ROUTES = [
    ("POST", "/v3/locations"),
    ("PUT", "/v3/locations/{location}"),
    ("PATCH", "/v3/locations/{location}"),
    ("POST", "/v3/services"),
    ("PUT", "/v3/services/{service}"),
    ("PATCH", "/v3/services/{service}"),
    ("POST", "/v3/resources"),
    ("PUT", "/v3/resources/{resource}"),
    ("PATCH", "/v3/resources/{resource}"),
    ("POST", "/v3/resources/{resource}/services"),
    ("PUT", "/v3/resources/{resource}/schedule"),
    ("POST", "/v3/resources/{resource}/allocations"),
    ("POST", "/v3/blocks"),
    ("PUT", "/v3/blocks/{block}"),
    ("PATCH", "/v3/blocks/{block}"),
    ("POST", "/v3/recurringBlocks"),
    ("PUT", "/v3/recurringBlocks/{recurring}"),
    ("PATCH", "/v3/recurringBlocks/{recurring}"),
    ("POST", "/v3/appointments"),
    ("POST", "/v3/appointments/hold"),
    ("POST", "/v3/appointments/reserve"),
    ("PUT", "/v3/appointments/{held}/book"),
    ("PUT", "/v3/appointments/{booked}/cancel"),
    ("PUT", "/v3/appointments/{booked}/reschedule"),
    ("POST", "/v3/oauth/token"),
]

MALFORMED = [
    ("not json", b'{"name": "x"'),
    ("array", b'[{"name": "x"}]'),
    ("empty array", b"[]"),
    ("null", b"null"),
    ("number", b"42"),
    ("string", b'"name"'),
    ("NaN", b'{"name": "x", "duration": NaN}'),
    ("Infinity", b'{"name": "x", "duration": -Infinity}'),
    ("1e400", b'{"name": "x", "duration": 1e400}'),
    ("invalid utf-8", b'{"name": "\xff\xfe"}'),
    ("NUL", b'{"name": "a\\u0000b"}'),
    ("lone surrogate", b'{"name": "\\udc00"}'),
]


@pytest.fixture
def world(db):
    clinic = clinic_make("Malformed")
    api = clinic.tenant.v3()
    w = World(api)
    start = f"{MONDAY}T09:00:00-05:00"
    body = {"ServiceId": str(clinic.service.pk), "LocationId": str(clinic.location.pk)}
    booked = api.post("/v3/appointments", {**body, "startTime": start}, format="json")
    held = api.post("/v3/appointments/hold", {**body, "startTime": f"{MONDAY}T10:00:00-05:00"}, format="json")
    assert booked.status_code == held.status_code == 201, (booked.content, held.content)
    ids = {
        "location": w.location["id"], "service": w.service["id"], "resource": w.resource["id"], "block": w.block["id"],
        "recurring": w.recurring_block["id"], "booked": booked.json()["id"], "held": held.json()["id"],
    }
    return clinic, api, ids


def _state(organization) -> dict:
    """Every row the organization owns, its events, its clients and their tokens."""
    state = {}
    for model in apps.get_models():
        if issubclass(model, TenantOwnedModel) and model._meta.app_label in ("booking", "emr", "tenants"):
            rows = model.objects.filter(organization=organization).values()
            state[model.__name__] = sorted(tuple(sorted((k, str(v)) for k, v in row.items())) for row in rows)
    state["events"] = Event.objects.filter(organization=organization).count()
    state["tokens"] = OAuthToken.objects.filter(api_client__organization=organization).count()
    state["clients"] = list(ApiClient.objects.filter(organization=organization).values_list("revoked_at", "last_used_at"))
    return state


@pytest.mark.parametrize("label,raw", MALFORMED, ids=[m[0] for m in MALFORMED])
@pytest.mark.parametrize("method,template", WRITE_ROUTES, ids=[f"{m} {t}" for m, t in WRITE_ROUTES])
def test_a_malformed_body_is_400_in_the_v3_shape_and_writes_nothing(world, method, template, label, raw):
    clinic, api, ids = world
    url = template.format(**ids)
    api.get("/v3/locations")  # records the key's last use now, so the request below has nothing left to record
    before = _state(clinic.organization)
    response = api.generic(method, url, raw, content_type="application/json")
    assert response.status_code == 400, (url, response.content[:300])
    body = response.json()
    assert body["statusCode"] == 400 and body["name"] == "BadRequestError" and body["message"], body
    assert body["errors"] and all(set(e) == {"field", "message"} and e["message"] for e in body["errors"]), body
    if template == "/v3/oauth/token":
        assert body["error"] == "invalid_request"
    assert _state(clinic.organization) == before


def _write_routes(resolver=None, prefix: str = "") -> set[tuple[str, str]]:
    resolver = resolver or get_resolver()
    out = set()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            out |= _write_routes(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            route = "/" + prefix + str(entry.pattern)
            view = getattr(entry.callback, "view_class", None)
            if not route.startswith("/v3/") or view is None:
                continue
            for method in ("post", "put", "patch"):
                if hasattr(view, method):
                    out.add((method.upper(), re.sub(r"<[^>]+>", "{}", route)))
    return out


def test_every_write_route_is_in_the_table():
    table = {(method, re.sub(r"\{[^}]+\}", "{}", template)) for method, template in WRITE_ROUTES}
    assert _write_routes() == table
