"""Writes for EMR connections."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from emr.models import EmrConnection, Vendor
from tenants.credentials import secret_new
from tenants.crypto import encrypt_json
from tenants.models import Organization


@dataclass(frozen=True)
class IssuedConnection:
    connection: EmrConnection
    access_token: str  # shown once


def sandbox_base_url() -> str:
    return f"{settings.SITE_URL}/sandbox/fhir/r4"


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
        name=name or Vendor(vendor).label if vendor in Vendor.values else (name or vendor),
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
