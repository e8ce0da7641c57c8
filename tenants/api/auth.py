"""Request authentication: the credential, not a user, is the API principal.

Every family resolves its credential to a ``Principal`` naming the organization; views start
their querysets from it. The ``/v1/`` family's header credentials live in ``emr/api/auth.py``
(they name an EMR connection). An unknown, malformed, revoked or expired credential is 401.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from tenants.credentials import secret_lookup, secret_matches
from tenants.models import ApiClient, OAuthToken, Organization

LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass
class Principal:
    organization: Organization
    api_client: ApiClient
    emr_connection: object | None = None  # emr.EmrConnection for the /v1/ family

    is_authenticated = True
    is_anonymous = False

    @property
    def pk(self):
        return self.api_client.pk


def request_header(request, *names: str) -> str | None:
    """A header by any of its spellings (``client_id`` arrives as ``HTTP_CLIENT_ID``)."""
    for name in names:
        value = request.META.get("HTTP_" + name.upper().replace("-", "_"))
        if value is not None:
            return value.strip()
    return None


def touch_last_used(obj, field: str = "last_used_at") -> None:
    """Record use at most once a minute per credential, so reads don't each cost a write."""
    now = timezone.now()
    last = getattr(obj, field)
    if last is None or now - last > LAST_USED_RESOLUTION:
        type(obj).objects.filter(pk=obj.pk).update(**{field: now})
        setattr(obj, field, now)


def api_client_by_key(value: str) -> ApiClient | None:
    lookup = secret_lookup("sk", value)
    if lookup is None:
        return None
    client = (
        ApiClient.objects.select_related("organization").filter(api_key_lookup=lookup, revoked_at__isnull=True).first()
    )
    if client is None or not secret_matches(value, client.api_key_hash) or not client.organization.is_active:
        return None
    return client


def api_client_by_secret(client_id: str, client_secret: str) -> ApiClient | None:
    lookup = secret_lookup("cs", client_secret)
    # client_id goes into a query: PostgreSQL text cannot hold NUL, so such a value is simply unknown.
    if lookup is None or not client_id or len(client_id) > 64 or "\x00" in client_id:
        return None
    client = (
        ApiClient.objects.select_related("organization")
        .filter(client_id=client_id, client_secret_lookup=lookup, revoked_at__isnull=True)
        .first()
    )
    if client is None or not secret_matches(client_secret, client.client_secret_hash) or not client.organization.is_active:
        return None
    return client


class CredentialAuthentication(authentication.BaseAuthentication):
    """The base of every family's authentication: answers 401 (not 403) without a credential."""

    scheme = "ApiKey"

    def authenticate_header(self, request) -> str:
        # Present so DRF answers 401 (not 403) when no credential is sent.
        return self.scheme


class ApiKeyAuthentication(CredentialAuthentication):
    """``x-api-key: <api key>`` (the ``/v3/`` family)."""

    header = "x-api-key"

    def authenticate(self, request):
        value = request_header(request, self.header)
        if value is None:
            return None
        client = api_client_by_key(value)
        if client is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        touch_last_used(client)
        return Principal(organization=client.organization, api_client=client), client


class CvApiKeyAuthentication(ApiKeyAuthentication):
    """``cv-api-key: <api key>`` (the provider directory)."""

    header = "cv-api-key"


class BearerTokenAuthentication(CredentialAuthentication):
    """``Authorization: Bearer <token>`` from ``POST /v3/oauth/token``."""

    scheme = 'Bearer realm="api"'

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != "bearer":
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        value = parts[1]
        lookup = secret_lookup("at", value)
        token = None
        if lookup is not None:
            token = (
                OAuthToken.objects.select_related("api_client__organization")
                .filter(lookup=lookup, expires_at__gt=timezone.now(), api_client__revoked_at__isnull=True)
                .first()
            )
        if token is None or not secret_matches(value, token.token_hash) or not token.api_client.organization.is_active:
            raise exceptions.AuthenticationFailed("Invalid or expired access token.")
        client = token.api_client
        touch_last_used(client)
        return Principal(organization=client.organization, api_client=client), token
