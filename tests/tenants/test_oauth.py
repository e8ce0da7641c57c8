"""``POST /v3/oauth/token``: the client-credentials grant and the bearer tokens it issues."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tenants.models import OAuthToken
from tenants.services import api_client_revoke


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def token_request(tenant, **kwargs):
    client = APIClient()
    return client.post(
        "/v3/oauth/token",
        "grant_type=client_credentials",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=kwargs.get("auth", basic(tenant.client_id, tenant.client_secret)),
    )


def test_issues_a_one_hour_bearer_token_that_authenticates(tenant):
    response = token_request(tenant)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert response["Cache-Control"] == "no-store"
    stored = OAuthToken.objects.get()
    assert stored.token_hash != body["access_token"] and body["access_token"] not in stored.token_hash
    assert timedelta(minutes=59) < stored.expires_at - timezone.now() <= timedelta(hours=1)
    api = APIClient(HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert api.get("/v3/locations").status_code == 200


def test_credentials_in_a_json_body_are_accepted(tenant):
    response = APIClient().post(
        "/v3/oauth/token",
        {"grant_type": "client_credentials", "client_id": tenant.client_id, "client_secret": tenant.client_secret},
        format="json",
    )
    assert response.status_code == 200 and response.json()["access_token"].startswith("at_")


@pytest.mark.parametrize(
    "auth",
    [
        "wrong-secret",
        "unknown-client",
        "Basic !!!not-base64",
        "",
    ],
)
def test_bad_client_credentials_are_401_invalid_client(tenant, auth):
    header = {
        "wrong-secret": basic(tenant.client_id, tenant.client_secret[:-2] + "zz"),
        "unknown-client": basic("cli_unknown", tenant.client_secret),
    }.get(auth, auth)
    response = token_request(tenant, auth=header)
    assert response.status_code == 401
    body = response.json()
    assert body["name"] == "UnauthorizedError" and body["error"] == "invalid_client"
    assert OAuthToken.objects.count() == 0


def test_wrong_grant_type_is_400(tenant):
    response = APIClient().post(
        "/v3/oauth/token", "grant_type=password", content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=basic(tenant.client_id, tenant.client_secret),
    )
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"


def test_expired_token_is_401(tenant):
    token = token_request(tenant).json()["access_token"]
    OAuthToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = APIClient(HTTP_AUTHORIZATION=f"Bearer {token}").get("/v3/locations")
    assert response.status_code == 401 and response.json()["name"] == "UnauthorizedError"


def test_revoking_the_client_kills_its_tokens_and_key(tenant):
    token = token_request(tenant).json()["access_token"]
    api_client_revoke(api_client=tenant.api_client)
    assert APIClient(HTTP_AUTHORIZATION=f"Bearer {token}").get("/v3/locations").status_code == 401
    assert tenant.v3().get("/v3/locations").status_code == 401
    assert token_request(tenant).status_code == 401


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Token abc", "Bearer at_short"])
def test_malformed_authorization_headers_are_401(db, header):
    response = APIClient(HTTP_AUTHORIZATION=header).get("/v3/locations")
    assert response.status_code == 401 and response.json()["name"] == "UnauthorizedError"


def _post(body: bytes | str, content_type: str, **headers):
    return APIClient().generic("POST", "/v3/oauth/token", body, content_type=content_type, **headers)


def _assert_oauth_error(response, status: int, error: str):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == error and body["error_description"]
    assert body["statusCode"] == status and body["message"]  # still the /v3/ shape
    assert OAuthToken.objects.count() == 0


@pytest.mark.parametrize("body", ["", "client_id=x", "grant_type="])
def test_a_missing_grant_type_is_invalid_request(tenant, body):
    response = _post(body, "application/x-www-form-urlencoded", HTTP_AUTHORIZATION=basic(tenant.client_id, tenant.client_secret))
    _assert_oauth_error(response, 400, "invalid_request")


def test_a_repeated_grant_type_is_invalid_request(tenant):
    response = _post("grant_type=client_credentials&grant_type=client_credentials", "application/x-www-form-urlencoded",
                     HTTP_AUTHORIZATION=basic(tenant.client_id, tenant.client_secret))
    _assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "raw",
    [b'{"grant_type": "client_credentials"', b'["grant_type"]', b"null", b"42", b'{"grant_type": NaN}', b'{"grant_type": "\xff"}'],
    ids=["not json", "array", "null", "scalar", "NaN", "invalid utf-8"],
)
def test_a_malformed_json_body_is_an_oauth_error(tenant, raw):
    response = _post(raw, "application/json", HTTP_AUTHORIZATION=basic(tenant.client_id, tenant.client_secret))
    _assert_oauth_error(response, 400, "invalid_request")


def test_an_unsupported_body_type_is_an_oauth_error(tenant):
    response = _post("grant_type=client_credentials", "text/plain", HTTP_AUTHORIZATION=basic(tenant.client_id, tenant.client_secret))
    _assert_oauth_error(response, 415, "invalid_request")


def test_issuing_a_token_records_the_clients_last_use(tenant):
    from tenants.models import ApiClient

    assert ApiClient.objects.get(pk=tenant.api_client.pk).last_used_at is None
    assert token_request(tenant).status_code == 200
    assert ApiClient.objects.get(pk=tenant.api_client.pk).last_used_at is not None


def test_basic_credentials_are_form_url_decoded(tenant):
    """RFC 6749 §2.3.1: client_id and client_secret are form-url-encoded before the Basic encoding."""
    from urllib.parse import quote

    encoded_id = tenant.client_id.replace("_", "%5F")
    encoded_secret = quote(tenant.client_secret, safe="").replace("-", "%2D").replace("_", "%5F")
    response = token_request(tenant, auth=basic(encoded_id, encoded_secret))
    assert response.status_code == 200, response.content
    assert response.json()["token_type"] == "Bearer"
