"""Request authentication: the credential, not a user, is the API principal.

Every family resolves its credential to a ``Principal`` naming the organization; views start
their querysets from it. The ``/v1/`` family's header credentials live in ``emr/api/auth.py``
(they name an EMR connection). An unknown, malformed, revoked or expired credential is 401.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone
from rest_framework import authentication, exceptions

from tenants.credentials import hash_secret, secret_lookup, secret_matches
from tenants.models import ApiClient, OAuthToken, Organization
from tenants.shared_cache import (
    credential_fill,
    credential_key,
    credential_read,
    credential_tombstone,
    shared_redis,
    used_key,
)

logger = logging.getLogger(__name__)

LAST_USED_RESOLUTION = timedelta(minutes=1)
EPOCH = datetime.fromtimestamp(0, UTC)


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
    """The API client whose key ``value`` is, with its organization; None when unknown, revoked or
    of an inactive organization. Read from the shared cache when there is one
    (``tenants.shared_cache``: exact under revocation and rotation), else from the database."""
    lookup = secret_lookup("sk", value)
    if lookup is None:
        return None
    redis = shared_redis()
    client = _api_client_by_key_lookup(lookup) if redis is None else _api_client_by_key_cached(redis, lookup)
    if client is None or not secret_matches(value, client.api_key_hash) or not client.organization.is_active:
        return None
    return client


def _api_client_by_key_lookup(lookup: str) -> ApiClient | None:
    return ApiClient.objects.select_related("organization").filter(api_key_lookup=lookup, revoked_at__isnull=True).first()


# The API client and organization each API key lookup belongs to, once seen: a lookup never
# changes hands (a rotation makes a new one), so knowing it lets the generation be read with the
# credential, and a request be counted in its client's rate-limit window (``api_key_express``).
_holder_of_lookup: dict[str, tuple[object, object, str, str]] = {}  # with its credential and used keys


def _api_client_by_key_cached(redis, lookup: str) -> ApiClient | None:
    """The cached client, else the database's, stored for the next request unless a write changed
    the credential meanwhile; its ``last_used_at`` is the latest any worker recorded, and its
    organization's ``data_generation`` the one read with it (as the database's version was)."""
    key = credential_key("sk", lookup)
    holder = _holder_of_lookup.get(lookup)  # read once: another thread may change it
    organization_id = holder[1] if holder is not None else None
    try:
        read = credential_read(redis, key, used=used_key("sk", lookup), organization_id=organization_id)
    except Exception:  # noqa: BLE001 - a broken cache must not break authentication
        logger.warning("credential cache read failed", exc_info=True)
        return _api_client_by_key_lookup(lookup)
    if read.entry is not None:
        client = pickle.loads(read.entry)  # noqa: S301 - written by this code, in our own Redis
    else:
        client = _api_client_by_key_lookup(lookup)
        if client is None:
            return None
        if read.lease is not None:
            try:
                credential_fill(
                    redis, key, read.lease, pickle.dumps(client), secret_hash=client.api_key_hash,
                    active=client.organization.is_active, organization_id=client.organization_id,
                )
            except Exception:  # noqa: BLE001
                logger.warning("credential cache write failed", exc_info=True)
    if read.used is not None:
        client.last_used_at = max(client.last_used_at or EPOCH, datetime.fromtimestamp(float(read.used), UTC))
    else:
        client.last_use_unshared = True  # for api_client_touch
    if read.generation_known and client.organization_id == organization_id:
        client.organization.data_generation = read.generation
    if len(_holder_of_lookup) > 100_000:
        _holder_of_lookup.clear()
    _holder_of_lookup[lookup] = (client.pk, client.organization_id, key, used_key("sk", lookup))
    return client


@dataclass(frozen=True)
class ApiKeyExpress:
    """What ``shared_cache.express_read`` needs to accept an API key as ``api_client_by_key`` and
    ``api_client_touch`` would, without Python seeing the client: known only for a key whose lookup
    this process has resolved before."""

    api_client_id: object
    organization_id: object
    credential: str  # its ``credential_key``
    used: str  # its ``used_key``
    secret_hash: str  # the SHA-256 of the presented key
    used_since: float  # epoch seconds: a last use before this is due a new record (``touch_last_used``)


def api_key_express(value: str, *, now: datetime) -> ApiKeyExpress | None:
    """``value``'s lookup as this process knows it, or None."""
    lookup = secret_lookup("sk", value)
    holder = _holder_of_lookup.get(lookup) if lookup is not None else None
    if holder is None:
        return None
    return ApiKeyExpress(
        api_client_id=holder[0], organization_id=holder[1], credential=holder[2], used=holder[3],
        secret_hash=hash_secret(value), used_since=(now - LAST_USED_RESOLUTION).timestamp(),
    )


def api_client_touch(client: ApiClient) -> None:
    """``touch_last_used`` for a client found by its API key: with a shared cache the last use is
    kept there too (``_api_client_by_key_cached`` reads it), so the once-a-minute write holds
    across workers without reading the database. When the cache had lost it (expired, evicted,
    flushed) it is written back as read with the client, never later than the real last use, so
    the express read (``tenants.shared_cache.express_read``, which needs it) resumes at once
    instead of after the next write."""
    before = client.last_used_at
    touch_last_used(client)
    redis = shared_redis()
    if redis is None or client.last_used_at is None:
        return
    if client.last_used_at == before and not getattr(client, "last_use_unshared", False):
        return
    try:
        redis.set(
            used_key("sk", client.api_key_lookup), str(client.last_used_at.timestamp()),
            ex=int(2 * LAST_USED_RESOLUTION.total_seconds()),
        )
    except Exception:  # noqa: BLE001
        logger.warning("credential cache write failed", exc_info=True)


def api_key_lookups_locked(clients) -> list[str]:
    """The API keys of ``clients`` (an ``ApiClient`` queryset) for ``api_keys_forget``. Inside a
    transaction their rows stay locked until it ends, so a rotation cannot commit a key in between
    that this write never forgets; outside one the write has committed already, and any later
    rotation forgets its own old key."""
    if connection.in_atomic_block:
        clients = clients.select_for_update()
    return list(clients.values_list("api_key_lookup", flat=True))


def api_keys_forget(lookups) -> None:
    """Make every worker read these API keys' clients from the database again: called by every
    write that changes one (revocation, rotation, a save or delete of the client or of its
    organization) before its transaction commits, and once more after (``tenants.shared_cache``).
    Without a shared cache nothing is cached, so there is nothing to forget."""
    redis = shared_redis()
    lookups = [lookup for lookup in lookups if lookup]
    if redis is None or not lookups:
        return
    keys = [credential_key("sk", lookup) for lookup in lookups]
    credential_tombstone(redis, keys)  # raises, failing the write, when Redis is unreachable
    transaction.on_commit(lambda: credential_tombstone(redis, keys), robust=True)


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
        api_client_touch(client)
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
