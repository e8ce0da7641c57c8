"""The OpenAPI schema is valid, documents every API route with its auth schemes, and no
generated input (schemathesis) makes any operation answer 5xx."""

from __future__ import annotations

import re
from io import StringIO

import pytest
import schemathesis
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from config.wsgi import application
from tests.conftest import make_tenant


def _schema_dict() -> dict:
    import yaml

    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    return yaml.safe_load(out.getvalue())


def _api_routes(resolver=None, prefix: str = "") -> set[str]:
    resolver = resolver or get_resolver()
    out = set()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            out |= _api_routes(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            route = "/" + prefix + str(entry.pattern)
            if route.startswith(("/v3/", "/v1/", "/api/v1/")):
                out.add(re.sub(r"<[^>]+>", "{}", route))
    return out


def test_schema_is_valid_and_documents_every_route():
    schema = _schema_dict()
    documented = {re.sub(r"\{[^}]+\}", "{}", path) for path in schema["paths"]}
    assert _api_routes() - documented == set()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {"type": "apiKey", "in": "header", "name": "x-api-key"}
    assert schemes["OAuth2ClientCredentials"]["flows"]["clientCredentials"]["tokenUrl"] == "/v3/oauth/token"
    locations = schema["paths"]["/v3/locations"]["get"]
    assert {"ApiKey": []} in locations["security"] and {"OAuth2ClientCredentials": []} in locations["security"]


@pytest.fixture(scope="module")
def schema() -> dict:
    return _schema_dict()


def _operations(schema: dict, prefix: str = "/v3/"):
    for path, item in schema["paths"].items():
        if path.startswith(prefix):
            for method, operation in item.items():
                yield f"{method.upper()} {path}", operation


def test_page_parameters_declare_their_bounds_and_defaults(schema):
    listed = 0
    for name, operation in _operations(schema):
        params = {p["name"]: p["schema"] for p in operation.get("parameters", []) if p["in"] == "query"}
        if "limit" not in params:
            continue
        listed += 1
        assert params["limit"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}, name
        assert params["page"] == {"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 1}, name
    assert listed >= 8  # every collection, the sub-collections and the appointments list


def test_every_rate_limited_operation_declares_429(schema):
    for name, operation in _operations(schema):
        response = operation["responses"].get("429")
        assert response is not None, name
        ref = response["content"]["application/json"]["schema"]["$ref"]
        assert ref.rsplit("/", 1)[-1] in ("V3Error", "OAuthError"), name


def test_the_token_endpoint_declares_its_form_body_and_oauth_errors(schema):
    operation = schema["paths"]["/v3/oauth/token"]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"application/x-www-form-urlencoded", "application/json"}
    components = schema["components"]["schemas"]
    request = components[content["application/x-www-form-urlencoded"]["schema"]["$ref"].rsplit("/", 1)[-1]]
    assert request["required"] == ["grant_type"]
    assert set(request["properties"]) == {"grant_type", "client_id", "client_secret"}
    for code in ("400", "401", "413", "415"):
        ref = operation["responses"][code]["content"]["application/json"]["schema"]["$ref"]
        error = components[ref.rsplit("/", 1)[-1]]
        assert {"statusCode", "name", "message", "errors", "error", "error_description"} <= set(error["properties"]), code
    codes = components[components["OAuthError"]["properties"]["error"]["$ref"].rsplit("/", 1)[-1]]["enum"]
    assert set(codes) >= {"invalid_request", "invalid_client", "unsupported_grant_type"}


def test_the_unlink_location_parameter_is_a_uuid(schema):
    operation = schema["paths"]["/v3/resources/{id}/services/{service_pk}"]["delete"]
    location = next(p for p in operation["parameters"] if p["name"] == "LocationId")
    assert location["in"] == "query" and location["schema"] == {"type": "string", "format": "uuid"}


def test_swagger_ui_and_schema_are_served(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200 and b"swagger" in page.content.lower()
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200 and "/v3/locations" in schema.json()["paths"]


fuzz_schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@pytest.fixture
def fuzz_headers(db):
    """Credentials for the fuzzed calls. The WSGI app is called directly, so — as Django's test
    client does — keep its request signals from closing the test's open transaction."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    tenant = make_tenant("Fuzzed")
    yield {"x-api-key": tenant.api_key, "cv-api-key": tenant.api_key}
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.django_db
@fuzz_schema.parametrize()
@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_input_makes_the_api_fail(case, fuzz_headers):
    response = case.call(headers=fuzz_headers)
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
