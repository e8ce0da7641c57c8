"""Writes for EMR connections: creation (the one-time ``access_token``), credentials encrypted at
rest, SMART key pairs, sandbox client registration, and the connection's health."""

from __future__ import annotations

import base64
import logging
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from emr.adapters import VENDOR_RATE_LIMITS, vendor_has_adapter
from emr.adapters.base import AuthMode, ConnectionConfig, EmrNotConfigured
from emr.models import EmrConnection, SandboxClient, Vendor
from tenants.credentials import secret_new
from tenants.crypto import DecryptionError, decrypt_json, encrypt_json
from tenants.events import event_emit
from tenants.models import Organization

logger = logging.getLogger(__name__)

# Credential fields an EMR connection may hold (all stored encrypted, never shown back).
CREDENTIAL_FIELDS = (
    "auth",
    "client_id",
    "client_secret",
    "private_key_pem",
    "kid",
    "token_url",
    "scope",
    "mrn_system",
    "rate_per_minute",
)
SECRET_FIELDS = frozenset({"client_secret", "private_key_pem"})
SANDBOX_SCOPE = "system/Appointment.read system/Patient.read system/Practitioner.read system/Location.read system/Schedule.read system/Slot.read system/Provenance.read"


@dataclass(frozen=True)
class IssuedConnection:
    connection: EmrConnection
    access_token: str  # shown once


def sandbox_base_url() -> str:
    return f"{settings.SITE_URL}/sandbox/fhir/r4"


def vendor_label(vendor: str) -> str:
    return Vendor(vendor).label if vendor in Vendor.values else vendor


def emr_connection_create(
    *,
    organization: Organization,
    vendor: str = Vendor.SANDBOX,
    name: str | None = None,
    base_url: str | None = None,
    timezone_name: str | None = None,
    credentials: dict | None = None,
) -> IssuedConnection:
    token = secret_new("tok")
    if base_url is None:
        base_url = sandbox_base_url() if vendor == Vendor.SANDBOX else ""
    connection = EmrConnection(
        organization=organization,
        name=name or vendor_label(vendor),
        vendor=vendor,
        base_url=base_url,
        timezone=timezone_name or organization.timezone,
        access_token_lookup=token.lookup,
        access_token_hash=token.hash,
        credentials_encrypted=encrypt_json(credentials or {}),
    )
    connection.full_clean()
    connection.save()
    return IssuedConnection(connection=connection, access_token=token.value)


def emr_connection_access_token_rotate(*, connection: EmrConnection) -> str:
    """A new ``access_token`` for the connection; the old one stops working at once."""
    token = secret_new("tok")
    EmrConnection.objects.filter(pk=connection.pk).update(access_token_lookup=token.lookup, access_token_hash=token.hash)
    connection.access_token_lookup, connection.access_token_hash = token.lookup, token.hash
    return token.value


def emr_connection_credentials(*, connection: EmrConnection) -> dict:
    try:
        return decrypt_json(connection.credentials_encrypted)
    except DecryptionError:
        raise EmrNotConfigured(
            "The connection's stored credentials cannot be decrypted with the configured FIELD_ENCRYPTION_KEYS."
        ) from None


def emr_connection_credentials_update(*, connection: EmrConnection, changes: dict) -> None:
    """Merge ``changes`` into the stored credentials: a value of None removes the field, a missing
    field is kept (write-only forms leave secrets blank to keep them)."""
    unknown = set(changes) - set(CREDENTIAL_FIELDS)
    if unknown:
        raise ValueError(f"Unknown credential fields: {', '.join(sorted(unknown))}")
    current = emr_connection_credentials(connection=connection)
    for key, value in changes.items():
        if value is None:
            current.pop(key, None)
        else:
            current[key] = value
    connection.credentials_encrypted = encrypt_json(current)
    EmrConnection.objects.filter(pk=connection.pk).update(credentials_encrypted=connection.credentials_encrypted)


# --- SMART Backend Services key pairs ----------------------------------------------------------


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def rsa_keypair_new() -> tuple[str, dict]:
    """(private key PEM, public JWK with a fresh ``kid``) for RS384 client assertions."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    numbers = key.public_key().public_numbers()
    jwk = {
        "kty": "RSA",
        "alg": "RS384",
        "use": "sig",
        "kid": secrets.token_hex(8),
        "n": _b64url_uint(numbers.n),
        "e": _b64url_uint(numbers.e),
    }
    return pem, jwk


def public_jwk_from_pem(private_key_pem: str, kid: str) -> dict:
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    numbers = key.public_key().public_numbers()
    return {"kty": "RSA", "alg": "RS384", "use": "sig", "kid": kid, "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}


def emr_connection_keypair_ensure(*, connection: EmrConnection) -> dict:
    """The connection's public JWKS (to register with the EMR), generating a key pair when it has
    none. SMART Backend Services connections only."""
    creds = emr_connection_credentials(connection=connection)
    if creds.get("private_key_pem") and creds.get("kid"):
        return {"keys": [public_jwk_from_pem(creds["private_key_pem"], creds["kid"])]}
    pem, jwk = rsa_keypair_new()
    emr_connection_credentials_update(
        connection=connection, changes={"auth": creds.get("auth") or AuthMode.SMART_BACKEND, "private_key_pem": pem, "kid": jwk["kid"]}
    )
    return {"keys": [jwk]}


@transaction.atomic
def sandbox_client_ensure(*, connection: EmrConnection) -> SandboxClient:
    """Register the sandbox connection with the sandbox EMR: a client id and a key pair whose
    public half the sandbox's token endpoint verifies assertions against. Done on first use, so
    creating a connection stays cheap."""
    creds = emr_connection_credentials(connection=connection)
    changes = {}
    if not creds.get("client_id"):
        changes["client_id"] = f"sandbox-{connection.pk.hex}"
    if not creds.get("scope"):
        changes["scope"] = SANDBOX_SCOPE
    if changes:
        emr_connection_credentials_update(connection=connection, changes=changes)
        creds.update(changes)
    jwks = emr_connection_keypair_ensure(connection=connection)
    client, _ = SandboxClient.objects.update_or_create(
        client_id=creds["client_id"], defaults={"jwks": jwks, "emr_connection": connection}
    )
    return client


def connection_config(*, connection: EmrConnection) -> ConnectionConfig:
    """The adapter's view of a connection (credentials decrypted); sandbox connections are
    registered with the sandbox first."""
    if connection.vendor == Vendor.SANDBOX:
        creds = emr_connection_credentials(connection=connection)
        if not (creds.get("client_id") and creds.get("private_key_pem")):
            sandbox_client_ensure(connection=connection)
    creds = emr_connection_credentials(connection=connection)
    rate = creds.get("rate_per_minute") or VENDOR_RATE_LIMITS.get(connection.vendor)
    return ConnectionConfig(
        key=str(connection.pk),
        vendor=connection.vendor,
        base_url=connection.base_url,
        timezone=connection.timezone,
        auth=creds.get("auth") or AuthMode.SMART_BACKEND,
        client_id=creds.get("client_id", ""),
        client_secret=creds.get("client_secret", ""),
        private_key_pem=creds.get("private_key_pem", ""),
        kid=creds.get("kid", ""),
        token_url=creds.get("token_url", ""),
        scope=creds.get("scope") or "system/*.read",
        mrn_system=creds.get("mrn_system", ""),
        page_size=settings.EMR_PAGE_SIZE,
        max_pages=settings.EMR_MAX_PAGES,
        rate_per_minute=int(rate) if rate else None,
        timeout_seconds=settings.EMR_TIMEOUT_SECONDS,
        transient_retries=10 if connection.vendor == Vendor.SANDBOX else 3,
    )


def connection_adapter(*, connection: EmrConnection, **kwargs):
    """The adapter for a connection, with its shared rate-limit bucket."""
    from emr.adapters import adapter_build
    from emr.ratelimit import connection_throttle

    if not vendor_has_adapter(connection.vendor):
        raise EmrNotConfigured(f"There is no live-fetch adapter for {vendor_label(connection.vendor)}.")
    config = connection_config(connection=connection)
    throttle = connection_throttle(connection_key=config.key, limit_per_minute=config.rate_per_minute)
    return adapter_build(config, throttle=throttle, **kwargs)


# --- health ------------------------------------------------------------------------------------


def emr_connection_login_required(*, connection: EmrConnection, error: str) -> bool:
    """Record that the EMR rejected the connection's credentials; emits
    ``access_token.login_required`` once per outage. Returns whether the event was emitted."""
    now = timezone.now()
    with transaction.atomic():
        flipped = EmrConnection.objects.filter(pk=connection.pk, login_required_at__isnull=True).update(
            login_required_at=now, last_error=error[:2000]
        )
        if not flipped:
            EmrConnection.objects.filter(pk=connection.pk).update(last_error=error[:2000])
            return False
        event_emit(
            organization_id=connection.organization_id,
            type="access_token.login_required",
            access_token_reference_id=connection.access_token_reference_id,
            data={
                "access_token_reference_id": connection.access_token_reference_id,
                "emr": connection.vendor,
                "emr_name": vendor_label(connection.vendor),
                "connection_name": connection.name,
                "reason": error,
            },
        )
    connection.login_required_at = now
    return True


def emr_connection_healthy(*, connection: EmrConnection) -> None:
    """The EMR accepted the credentials again: clear the login-required state."""
    if connection.login_required_at is not None or connection.last_error:
        EmrConnection.objects.filter(pk=connection.pk).update(login_required_at=None, last_error="")
        connection.login_required_at, connection.last_error = None, ""
