"""A character the database cannot store (a NUL byte; PostgreSQL text cannot hold it) in any path
parameter, query parameter or body field of any API route is refused with a 4xx in the route's
family shape, never a 500 (``overview.md``, error bodies).

The table is the OpenAPI schema itself: every operation, every path parameter (the others filled
with real ids of the caller's objects), every declared query parameter, and a body field of every
operation that takes a body. On SQLite a NUL is stored like any character, so each case asserts
the refusal itself (400), not merely the absence of a 500: a path that no route matches (a UUID
converter does not match a NUL) is the router's 404.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from django.urls import Resolver404, resolve
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from booking import models as b
from booking.api.base import V3_ERROR_NAMES
from tests.api.v3_fixtures import World
from tests.booking.conftest import MONDAY, clinic_make

NUL = "\x00"
METHODS = ("get", "post", "put", "patch", "delete")


def _operations() -> list[tuple[str, str, dict]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (method.upper(), path, operation)
        for path, item in sorted(schema["paths"].items())
        for method, operation in item.items()
        if method in METHODS
    ]


OPERATIONS = _operations()


def _cases():
    for method, path, operation in OPERATIONS:
        parameters = operation.get("parameters", [])
        for p in parameters:
            if p["in"] == "path":
                yield pytest.param(method, path, "path", p["name"], id=f"{method} {path} path:{p['name']}")
        for p in parameters:
            if p["in"] == "query":
                yield pytest.param(method, path, "query", p["name"], id=f"{method} {path} query:{p['name']}")
        for content_type in operation.get("requestBody", {}).get("content", {}):
            yield pytest.param(method, path, "body", content_type, id=f"{method} {path} body:{content_type}")


CASES = list(_cases())


def family(path: str) -> str:
    if path.startswith("/v3/"):
        return "v3"
    if path.startswith("/v1/"):
        return "v1"
    assert path.startswith("/api/v1/provider-availability"), path
    return "directory"


@pytest.fixture
def world(db):
    clinic = clinic_make("Unstorable")
    tenant, org, conn = clinic.tenant, clinic.tenant.organization, clinic.tenant.emr_connection
    api = tenant.v3()
    w = World(api)
    body = {"ServiceId": str(clinic.service.pk), "LocationId": str(clinic.location.pk)}
    booked = api.post("/v3/appointments", {**body, "startTime": f"{MONDAY}T09:00:00-05:00"}, format="json")
    assert booked.status_code == 201, booked.content
    provider = b.Resource.objects.create(organization=org, name="Dr Ada", type="provider", ehr_id="P-1", emr_connection=conn)
    location = b.Location.objects.create(organization=org, name="Main", timezone="UTC", ehr_id="LOC-1", emr_connection=conn)
    webhook = tenant.v1().post("/v1/webhook", {"url": "http://127.0.0.1:9/hook"}, format="json")
    assert webhook.status_code == 200, webhook.content
    ids = {
        "/v3/locations/{id}": w.location["id"],
        "/v3/services/{id}": w.service["id"],
        "/v3/resources/{id}": w.resource["id"],
        "/v3/blocks/{id}": w.block["id"],
        "/v3/recurringBlocks/{id}": w.recurring_block["id"],
        "/v3/appointments/{id}": booked.json()["id"],
        "/v1/providers/{id}": str(provider.pk),
        "/v1/locations/{id}": str(location.pk),
        "{allocation_pk}": w.allocation["id"],
        "{service_pk}": w.service["id"],
        "{ehr_id}": "P-1",
        "{webhook_id}": webhook.json()["webhook"]["id"],
    }
    return tenant, ids


def _value(ids: dict, path: str, name: str) -> str:
    """A real id of the caller's for the path parameter ``name`` of ``path``."""
    if name != "id":
        return ids["{" + name + "}"]
    prefix = path.split("{id}", 1)[0] + "{id}"
    return ids[prefix]


def _client(tenant, path: str) -> APIClient:
    client = APIClient(raise_request_exception=False)
    if family(path) == "v3":
        client.credentials(HTTP_X_API_KEY=tenant.api_key)
    elif family(path) == "v1":
        client.credentials(
            HTTP_CLIENT_ID=tenant.client_id, HTTP_CLIENT_SECRET=tenant.client_secret, HTTP_ACCESS_TOKEN=tenant.access_token
        )
    else:
        client.credentials(HTTP_CV_API_KEY=tenant.api_key)
    return client


def _url(ids: dict, path: str, nul_in: str | None) -> str:
    url = path
    for name in [part.split("}", 1)[0] for part in path.split("{")[1:]]:
        value = _value(ids, path, name)
        if name == nul_in:
            value += NUL
        url = url.replace("{" + name + "}", quote(value, safe=""))
    return url


def assert_family_shape(path: str, response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:400])
    body = response.json()
    if family(path) == "v3":
        assert {"statusCode", "name", "message", "errors"} <= set(body), body
        assert body["statusCode"] == status and body["name"] == V3_ERROR_NAMES[status] and body["message"], body
        if status == 400:
            assert body["errors"] and all(set(e) == {"field", "message"} for e in body["errors"]), body
    elif family(path) == "v1":
        assert set(body) == {"success", "message"} and body["success"] is False and body["message"], body
    else:
        assert set(body) == {"status", "success", "message", "error"}, body
        assert body["status"] == status and body["success"] is False and body["error"], body
    return body


def _names(path: str, body: dict) -> str:
    """What the error says, flattened, to look for the parameter's name in."""
    if family(path) == "v3":
        return json.dumps([body["message"], body["errors"]])
    return body["message"] if family(path) == "v1" else body["error"]


@pytest.mark.parametrize("method,path,where,name", CASES)
def test_a_nul_is_refused_in_the_family_shape(world, method, path, where, name):
    tenant, ids = world
    client = _client(tenant, path)
    if where == "path":
        url = _url(ids, path, name)
        try:
            resolve(url.replace("%00", NUL))
        except Resolver404:
            # A converter that cannot match a NUL (a UUID): no route, nothing read.
            assert_family_shape(path, client.generic(method, url), 404)
            return
        body = assert_family_shape(path, client.generic(method, url), 400)
        assert name in _names(path, body), body
    elif where == "query":
        url = _url(ids, path, None) + "?" + f"{quote(name)}=x%00y"
        body = assert_family_shape(path, client.generic(method, url), 400)
        assert name in _names(path, body), body
    else:
        url = _url(ids, path, None)
        if name == "application/x-www-form-urlencoded":
            response = client.generic(method, url, "grant_type=client_credentials&scope=a%00b", content_type=name)
        else:
            response = client.generic(method, url, json.dumps({"name": "a\x00b"}), content_type=name)
        assert_family_shape(path, response, 400)


def test_the_table_covers_every_family_and_kind():
    kinds = {(family(c.values[1]), c.values[2]) for c in CASES}
    assert kinds >= {("v3", "path"), ("v3", "query"), ("v3", "body"), ("v1", "path"), ("v1", "query"), ("v1", "body"),
                     ("directory", "query")}
    assert len(OPERATIONS) >= 60
