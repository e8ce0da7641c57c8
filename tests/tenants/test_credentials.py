"""API keys: stored hashed, compared in constant time, revocable, with a last-used time."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.test import APIClient

from emr.models import EmrConnection
from tenants.credentials import hash_secret
from tenants.models import ApiClient, Organization
from tenants.services import api_client_rotate_key


def test_secrets_are_stored_only_as_hashes(tenant):
    row = ApiClient.objects.values().get(pk=tenant.api_client.pk)
    flat = json.dumps(row, default=str)
    assert tenant.api_key not in flat and tenant.client_secret not in flat
    assert row["api_key_hash"] == hash_secret(tenant.api_key)
    connection = EmrConnection.objects.values().get(pk=tenant.emr_connection.pk)
    assert tenant.access_token not in json.dumps(connection, default=str)


def test_last_used_is_recorded_at_most_once_a_minute(tenant):
    assert ApiClient.objects.get().last_used_at is None
    tenant.v3().get("/v3/locations")
    first = ApiClient.objects.get().last_used_at
    assert first is not None
    tenant.v3().get("/v3/locations")
    assert ApiClient.objects.get().last_used_at == first
    ApiClient.objects.update(last_used_at=timezone.now() - timedelta(minutes=2))
    tenant.v3().get("/v3/locations")
    assert ApiClient.objects.get().last_used_at > first


def _bearer(tenant) -> tuple[APIClient, str]:
    from tenants.services import oauth_token_issue

    token = oauth_token_issue(api_client=tenant.api_client).access_token
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {token}"), "/v3/locations"


CREDENTIAL_KINDS = {
    "bearer token": _bearer,
    "v1 client_id/client_secret/access_token": lambda tenant: (tenant.v1(), "/v1/settings"),
}


@pytest.mark.parametrize("kind", list(CREDENTIAL_KINDS))
def test_last_used_is_recorded_for_every_kind_of_credential(tenant, kind):
    client, url = CREDENTIAL_KINDS[kind](tenant)
    ApiClient.objects.update(last_used_at=None)
    assert client.get(url).status_code == 200
    first = ApiClient.objects.get().last_used_at
    assert first is not None
    assert client.get(url).status_code == 200
    assert ApiClient.objects.get().last_used_at == first  # at most once a minute
    ApiClient.objects.update(last_used_at=timezone.now() - timedelta(minutes=2))
    assert client.get(url).status_code == 200
    assert ApiClient.objects.get().last_used_at > first


def test_a_key_with_a_valid_lookup_but_wrong_secret_is_401(tenant):
    forged = tenant.api_key[:-4] + ("aaaa" if not tenant.api_key.endswith("aaaa") else "bbbb")
    assert APIClient(HTTP_X_API_KEY=forged).get("/v3/locations").status_code == 401


def test_rotating_the_key_retires_the_old_one(tenant):
    new_key = api_client_rotate_key(api_client=tenant.api_client)
    assert tenant.v3().get("/v3/locations").status_code == 401
    assert APIClient(HTTP_X_API_KEY=new_key).get("/v3/locations").status_code == 200


def test_an_inactive_organization_cannot_authenticate(tenant):
    Organization.objects.filter(pk=tenant.organization.pk).update(is_active=False)
    assert tenant.v3().get("/v3/locations").status_code == 401


class TestCreateOrganizationCommand:
    def run(self, *args) -> tuple[str, dict]:
        out = StringIO()
        call_command("create_organization", *args, stdout=out)
        lines = out.getvalue().strip().splitlines()
        return out.getvalue(), json.loads(lines[-1])

    def test_prints_working_credentials_as_json_on_the_last_line(self, db):
        _, result = self.run("--name", "Lakeside Clinic", "--timezone", "America/Chicago")
        for key in ("organization_id", "api_key", "client_id", "client_secret", "access_token"):
            assert result[key]
        org = Organization.objects.get(pk=result["organization_id"])
        assert (org.name, org.timezone) == ("Lakeside Clinic", "America/Chicago")
        assert EmrConnection.objects.get(organization=org).vendor == "sandbox"
        assert APIClient(HTTP_X_API_KEY=result["api_key"]).get("/v3/locations").status_code == 200

    def test_the_printed_client_credentials_obtain_a_token_and_open_the_emr_api(self, db):
        import base64

        _, result = self.run("--name", "Lakeside Clinic", "--timezone", "America/Chicago")
        basic = base64.b64encode(f"{result['client_id']}:{result['client_secret']}".encode()).decode()
        token = APIClient().post("/v3/oauth/token", "grant_type=client_credentials",
                                 content_type="application/x-www-form-urlencoded", HTTP_AUTHORIZATION=f"Basic {basic}")
        assert token.status_code == 200, token.content
        bearer = APIClient(HTTP_AUTHORIZATION=f"Bearer {token.json()['access_token']}")
        assert bearer.get("/v3/locations").json()["count"] == 0

        v1 = APIClient(HTTP_CLIENT_ID=result["client_id"], HTTP_CLIENT_SECRET=result["client_secret"],
                       HTTP_ACCESS_TOKEN=result["access_token"])
        settings = v1.get("/v1/settings")
        assert settings.status_code == 200, settings.content
        assert settings.json()["success"] is True
        assert settings.json()["timezone"] == "America/Chicago"
        assert settings.json()["access_token_reference_id"] == result["access_token_reference_id"]
        for wrong in ("client_secret", "access_token"):
            headers = {"HTTP_CLIENT_ID": result["client_id"], "HTTP_CLIENT_SECRET": result["client_secret"],
                       "HTTP_ACCESS_TOKEN": result["access_token"], f"HTTP_{wrong.upper()}": "x" + result[wrong][1:]}
            assert APIClient(**headers).get("/v1/settings").status_code == 401

    def test_other_known_emr_is_stored(self, db):
        _, result = self.run("--name", "Ath Clinic", "--emr", "athenahealth")
        assert EmrConnection.objects.get(organization_id=result["organization_id"]).vendor == "athenahealth"

    @pytest.mark.parametrize(
        "args,message",
        [
            (["--name", "X", "--timezone", "Mars/Base"], "Unknown time zone"),
            (["--name", "X", "--timezone", "localtime"], "Unknown time zone"),
            (["--name", "X", "--timezone", "Factory"], "Unknown time zone"),
            (["--name", "X", "--emr", "nosuchemr"], "Unknown EMR vendor"),
            (["--name", "   "], "--name"),
            (["--name", "X", "--emr", "fhir", "--emr-base-url", "not a url"], "--emr-base-url"),
            (["--name", "X", "--emr", "fhir", "--emr-base-url", "ftp://fhir.example.com/r4"], "--emr-base-url"),
            (["--name", "X", "--emr", "fhir", "--emr-base-url", "https://fhir.example.com/" + "r" * 600], "--emr-base-url"),
            (["--name", "X", "--emr", "ecw", "--emr-token-url", "not a url"], "--emr-token-url"),
        ],
    )
    def test_bad_arguments_fail_without_writing(self, db, args, message):
        with pytest.raises(CommandError, match=message):
            call_command("create_organization", *args, stdout=StringIO())
        assert Organization.objects.count() == 0
