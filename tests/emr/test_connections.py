"""EMR connections: credentials encrypted at rest and rotatable, key pairs for SMART Backend
Services, sandbox registration, and ``create_organization --emr``."""

from __future__ import annotations

import json
from io import StringIO

import jwt
import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.test import override_settings

from booking.models import ExternalCalendar, Resource
from emr.adapters.base import EmrNotConfigured
from emr.models import EmrConnection, SandboxClient
from emr.services.connections import (
    connection_config,
    emr_connection_create,
    emr_connection_credentials,
    emr_connection_credentials_update,
    emr_connection_keypair_ensure,
    sandbox_client_ensure,
)
from tenants.crypto import decrypt_text, encrypt_text
from tenants.services import organization_create

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@pytest.fixture
def org(db):
    return organization_create(name="Keys Clinic")


def raw(connection) -> str:
    return EmrConnection.objects.filter(pk=connection.pk).values_list("credentials_encrypted", flat=True).get()


def test_credentials_are_encrypted_at_rest(org):
    connection = emr_connection_create(organization=org, vendor="ecw", credentials={"client_id": "cid", "client_secret": "s3cret-value"}).connection
    stored = raw(connection)
    assert stored and "s3cret-value" not in stored and "cid" not in stored
    assert emr_connection_credentials(connection=connection) == {"client_id": "cid", "client_secret": "s3cret-value"}
    emr_connection_credentials_update(connection=connection, changes={"client_secret": "other", "client_id": None})
    assert emr_connection_credentials(connection=connection) == {"client_secret": "other"}
    with pytest.raises(ValueError):
        emr_connection_credentials_update(connection=connection, changes={"password": "x"})


def test_rotate_encryption_keys_re_encrypts_every_stored_secret(org):
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        connection = emr_connection_create(organization=org, vendor="fhir", credentials={"client_secret": "abc"}).connection
        resource = Resource.objects.create(organization=org, name="R")
        calendar = ExternalCalendar.objects.create(organization=org, resource=resource, url="https://cal.example/x.ics", password_encrypted=encrypt_text("pw"))
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):
        with pytest.raises(EmrNotConfigured, match="cannot be decrypted"):
            emr_connection_credentials(connection=EmrConnection.objects.get(pk=connection.pk))
    out = StringIO()
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        call_command("rotate_encryption_keys", stdout=out)
    assert "emr.EmrConnection.credentials_encrypted: 1 re-encrypted" in out.getvalue()
    assert "booking.ExternalCalendar.password_encrypted: 1 re-encrypted" in out.getvalue()
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):  # the old key is gone: still readable
        assert emr_connection_credentials(connection=EmrConnection.objects.get(pk=connection.pk)) == {"client_secret": "abc"}
        assert decrypt_text(ExternalCalendar.objects.get(pk=calendar.pk).password_encrypted) == "pw"


def test_rotation_refuses_secrets_no_key_can_read_and_changes_nothing(org):
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        good = emr_connection_create(organization=org, vendor="fhir", credentials={"client_secret": "abc"}).connection
    with override_settings(FIELD_ENCRYPTION_KEYS=[Fernet.generate_key().decode()]):
        lost = emr_connection_create(organization=org, vendor="fhir", credentials={"client_secret": "zzz"}).connection
    before = raw(good)
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        with pytest.raises(CommandError, match=f"emr.EmrConnection {lost.pk}"):
            call_command("rotate_encryption_keys", stdout=StringIO())
    assert raw(good) == before


def test_keypair_is_generated_once_and_its_public_half_verifies_assertions(org):
    connection = emr_connection_create(organization=org, vendor="ecw", credentials={"client_id": "cid"}).connection
    jwks = emr_connection_keypair_ensure(connection=connection)
    assert emr_connection_keypair_ensure(connection=connection) == jwks
    creds = emr_connection_credentials(connection=connection)
    assert creds["auth"] == "smart_backend" and creds["kid"] == jwks["keys"][0]["kid"]
    assert "d" not in jwks["keys"][0] and jwks["keys"][0]["alg"] == "RS384"  # public only
    signed = jwt.encode({"sub": "cid"}, creds["private_key_pem"], algorithm="RS384")
    assert jwt.decode(signed, jwt.PyJWK(jwks["keys"][0]).key, algorithms=["RS384"])["sub"] == "cid"


def test_sandbox_connections_register_with_the_sandbox_on_first_use(org):
    connection = emr_connection_create(organization=org).connection
    assert emr_connection_credentials(connection=connection) == {}  # creating stays cheap
    config = connection_config(connection=connection)
    client = SandboxClient.objects.get(emr_connection=connection)
    assert config.client_id == client.client_id and config.private_key_pem and config.rate_per_minute is None
    assert client.jwks["keys"][0]["kid"] == config.kid
    sandbox_client_ensure(connection=connection)
    assert SandboxClient.objects.count() == 1


def test_ecw_connections_get_the_published_rate_limit(org):
    connection = emr_connection_create(organization=org, vendor="ecw", base_url="https://ecw.example/fhir", credentials={"client_id": "x"}).connection
    assert connection_config(connection=connection).rate_per_minute == 250
    emr_connection_credentials_update(connection=connection, changes={"rate_per_minute": 100})
    assert connection_config(connection=connection).rate_per_minute == 100


def last_json(out: StringIO) -> dict:
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_create_organization_with_ecw_prints_the_public_jwks(db, tmp_path):
    out = StringIO()
    call_command("create_organization", "--name", "Ecw Clinic", "--emr", "ecw", "--emr-base-url", "https://ecw.example/fhir/r4",
                 "--emr-client-id", "ecw-client", stdout=out)
    result = last_json(out)
    connection = EmrConnection.objects.get(pk=result["emr_connection_id"])
    assert (connection.vendor, connection.base_url) == ("ecw", "https://ecw.example/fhir/r4")
    creds = emr_connection_credentials(connection=connection)
    assert creds["client_id"] == "ecw-client"
    assert result["emr_public_jwks"]["keys"][0]["kid"] == creds["kid"]
    assert result["access_token"].startswith("tok_")

    sandbox = StringIO()
    call_command("create_organization", "--name", "Sandbox Clinic", stdout=sandbox)
    assert "emr_public_jwks" not in last_json(sandbox)

    key_file = tmp_path / "key.pem"
    from emr.services.connections import rsa_keypair_new

    key_file.write_text(rsa_keypair_new()[0])
    with pytest.raises(CommandError, match="--emr-kid"):
        call_command("create_organization", "--name", "No Kid", "--emr", "fhir", "--emr-private-key-file", str(key_file), stdout=StringIO())
    given = StringIO()
    call_command("create_organization", "--name", "Own Key", "--emr", "fhir", "--emr-private-key-file", str(key_file), "--emr-kid", "k1", stdout=given)
    creds = emr_connection_credentials(connection=EmrConnection.objects.get(pk=last_json(given)["emr_connection_id"]))
    assert creds["kid"] == "k1" and creds["private_key_pem"] == key_file.read_text()
