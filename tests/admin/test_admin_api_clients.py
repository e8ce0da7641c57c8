"""API clients in the admin: the secret and key are shown once, on creation or rotation, and work;
the revoke and rotate actions take effect at once on the APIs."""

from __future__ import annotations

import base64
import json
import re

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tenants.models import ApiClient, OAuthToken
from tenants.services import oauth_token_issue


@pytest.fixture
def staff(client, admin_world):
    client.force_login(admin_world.staff)
    return client


def _codes(response) -> list[str]:
    """The values the messages shown on this (followed) page put in <code>."""
    assert response.status_code == 200 and response.redirect_chain, "post with follow=True"
    return [code for message in response.context["messages"] for code in re.findall(r"<code>([^<]+)</code>", str(message))]


def _token(client_id: str, client_secret: str):
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    return APIClient().post("/v3/oauth/token", "grant_type=client_credentials", content_type="application/x-www-form-urlencoded",
                            HTTP_AUTHORIZATION=f"Basic {basic}")


def test_creating_a_client_shows_its_secrets_once_and_they_work(staff, admin_world):
    response = staff.post(reverse("admin:tenants_apiclient_add"), {"name": "Front desk"}, follow=True)
    client_id, client_secret, api_key = _codes(response)
    created = ApiClient.objects.get(name="Front desk")
    assert created.organization_id == admin_world.a.organization.pk and created.client_id == client_id

    stored = json.dumps(ApiClient.objects.filter(pk=created.pk).values().get(), default=str)
    assert client_secret not in stored and api_key not in stored

    assert APIClient(HTTP_X_API_KEY=api_key).get("/v3/locations").status_code == 200
    token = _token(client_id, client_secret)
    assert token.status_code == 200, token.content
    assert APIClient(HTTP_AUTHORIZATION=f"Bearer {token.json()['access_token']}").get("/v3/locations").status_code == 200

    # Shown on the page after the save, and never again.
    for page in (reverse("admin:tenants_apiclient_change", args=[created.pk]), reverse("admin:tenants_apiclient_changelist")):
        content = staff.get(page).content.decode()
        assert client_id in content
        assert client_secret not in content and api_key not in content


def test_the_revoke_action_stops_the_key_the_secret_and_issued_tokens(staff, admin_world):
    tenant = admin_world.a
    bearer = APIClient(HTTP_AUTHORIZATION=f"Bearer {oauth_token_issue(api_client=tenant.api_client).access_token}")
    assert bearer.get("/v3/locations").status_code == 200
    response = staff.post(reverse("admin:tenants_apiclient_changelist"),
                          {"action": "revoke", "_selected_action": [tenant.api_client.pk]}, follow=True)
    assert "Revoked 1 client(s)." in response.content.decode()
    assert ApiClient.objects.get(pk=tenant.api_client.pk).revoked_at is not None
    assert tenant.v3().get("/v3/locations").status_code == 401
    assert bearer.get("/v3/locations").status_code == 401
    assert tenant.v1().get("/v1/settings").status_code == 401
    assert _token(tenant.client_id, tenant.client_secret).status_code == 401
    assert not OAuthToken.objects.filter(api_client=tenant.api_client).exists()
    assert admin_world.b.v3().get("/v3/locations").status_code == 200  # the other tenant's client is untouched


def test_the_rotate_action_shows_a_new_key_once_and_retires_the_old_one(staff, admin_world):
    tenant = admin_world.a
    response = staff.post(reverse("admin:tenants_apiclient_changelist"),
                          {"action": "rotate_api_key", "_selected_action": [tenant.api_client.pk]}, follow=True)
    (new_key,) = _codes(response)
    assert new_key != tenant.api_key
    assert tenant.v3().get("/v3/locations").status_code == 401
    assert APIClient(HTTP_X_API_KEY=new_key).get("/v3/locations").status_code == 200
    assert tenant.v1().get("/v1/settings").status_code == 200  # the client id and secret are unchanged
    assert new_key not in staff.get(reverse("admin:tenants_apiclient_changelist")).content.decode()


def test_a_revoked_client_gets_no_new_key(staff, admin_world):
    tenant = admin_world.a
    staff.post(reverse("admin:tenants_apiclient_changelist"), {"action": "revoke", "_selected_action": [tenant.api_client.pk]})
    before = ApiClient.objects.values_list("api_key_lookup", "api_key_hash").get(pk=tenant.api_client.pk)
    response = staff.post(reverse("admin:tenants_apiclient_changelist"),
                          {"action": "rotate_api_key", "_selected_action": [tenant.api_client.pk]}, follow=True)
    assert _codes(response) == []
    assert ApiClient.objects.values_list("api_key_lookup", "api_key_hash").get(pk=tenant.api_client.pk) == before
