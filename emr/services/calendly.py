"""Writes for the Calendly integration: the organization's connection (token encrypted at rest),
and the sync of Calendly's users and event types as a job.

The sync asks Calendly first (no transaction held open over HTTP), then writes everything in one
transaction: users upserted by uri and linked to the provider whose email matches (unless staff
chose the link), event types upserted by uri, the vanished ones marked inactive, and the
connection's ``cache_version`` bumped so no cached available time outlives it.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from booking.models import Resource
from emr.calendly import CalendlyClient, CalendlyError
from emr.models import CALENDLY_API_URL, CalendlyConnection, CalendlyEventType, CalendlyUser, Job
from tenants.crypto import DecryptionError, decrypt_text, encrypt_text
from tenants.models import Organization

logger = logging.getLogger(__name__)

SYNC_DEADLINE_SECONDS = 120.0
SANDBOX_PREFIX = "sandbox/calendly"


class CalendlyNotConfigured(CalendlyError):
    """The connection has no usable token (none stored, or not decryptable with the keys)."""


def sandbox_calendly_base_url() -> str:
    return f"{settings.SITE_URL}/{SANDBOX_PREFIX}"


def _validate_base_url(base_url: str) -> str:
    base_url = (base_url or "").strip().rstrip("/")
    try:
        URLValidator(schemes=["http", "https"])(base_url)
    except ValidationError:
        raise ValueError(f"Not an http(s) URL: {base_url!r}.") from None
    return base_url


def calendly_connect(*, organization: Organization, token: str, base_url: str | None = None) -> CalendlyConnection:
    """Store (or replace) the organization's Calendly connection. A new token or base URL forgets
    what was learnt from the old one until the next sync, and invalidates cached times."""
    token = (token or "").strip()
    if not token or any(ch.isspace() for ch in token) or len(token) > 4000:
        raise ValueError("The token must be a non-empty string without spaces.")
    base_url = _validate_base_url(base_url or CALENDLY_API_URL)
    with transaction.atomic():
        connection = CalendlyConnection.objects.select_for_update().filter(organization=organization).first()
        if connection is None:
            connection = CalendlyConnection(organization=organization)
        connection.base_url = base_url
        connection.token_encrypted = encrypt_text(token)
        connection.is_active = True
        connection.calendly_organization_uri = connection.calendly_user_uri = ""
        connection.last_error = ""
        connection.cache_version = (connection.cache_version or 0) + 1
        connection.full_clean()
        connection.save()
    return connection


def calendly_connect_sandbox(*, organization: Organization) -> CalendlyConnection:
    """Connect the organization to the built-in sandbox Calendly (served at ``SITE_URL``), whose
    users are the organization's own providers."""
    from emr.sandbox.calendly import sandbox_calendly_token

    return calendly_connect(
        organization=organization, token=sandbox_calendly_token(organization), base_url=sandbox_calendly_base_url()
    )


def calendly_connection_update(*, connection: CalendlyConnection, token: str | None = None, base_url: str | None = None,
                               is_active: bool | None = None) -> CalendlyConnection:
    """The admin's edit: a blank token keeps the stored one."""
    changes: dict = {}
    if base_url is not None and _validate_base_url(base_url) != connection.base_url:
        changes["base_url"] = _validate_base_url(base_url)
    if token:
        token = token.strip()
        if any(ch.isspace() for ch in token):
            raise ValueError("The token must not contain spaces.")
        changes["token_encrypted"] = encrypt_text(token)
    if is_active is not None:
        changes["is_active"] = is_active
    if changes:
        if "base_url" in changes or "token_encrypted" in changes:
            changes.update(calendly_organization_uri="", calendly_user_uri="")
        CalendlyConnection.objects.filter(pk=connection.pk).update(cache_version=F("cache_version") + 1, **changes)
        connection.refresh_from_db()
    return connection


def calendly_token(*, connection: CalendlyConnection) -> str:
    try:
        token = decrypt_text(connection.token_encrypted)
    except DecryptionError:
        raise CalendlyNotConfigured(
            "The Calendly token cannot be decrypted with the configured FIELD_ENCRYPTION_KEYS."
        ) from None
    if not token:
        raise CalendlyNotConfigured("The organization's Calendly connection has no token.")
    return token


def calendly_client(*, connection: CalendlyConnection, deadline: float | None = None) -> CalendlyClient:
    return CalendlyClient(
        token=calendly_token(connection=connection),
        base_url=connection.base_url,
        timeout=settings.CALENDLY_TIMEOUT_SECONDS,
        deadline=settings.CALENDLY_DEADLINE_SECONDS if deadline is None else deadline,
        concurrency=settings.CALENDLY_CONCURRENCY,
        chunk_days=settings.CALENDLY_CHUNK_DAYS,
    )


# --- the sync ------------------------------------------------------------------------------------


def _providers_by_email(organization_id) -> dict[str, Resource]:
    """Resources by lowercased email; where several share one, providers first, then by name."""
    out: dict[str, Resource] = {}
    rows = Resource.objects.filter(organization_id=organization_id).exclude(email="")
    for resource in sorted(rows, key=lambda r: (r.type != Resource.Type.PROVIDER, r.name, str(r.pk))):
        out.setdefault(resource.email.strip().lower(), resource)
    return out


def calendly_sync(*, connection: CalendlyConnection, client: CalendlyClient | None = None) -> dict:
    """Sync users and event types from Calendly (see the module docstring): the counts. Raises
    ``CalendlyError``."""
    own = client is None
    client = client or calendly_client(connection=connection, deadline=SYNC_DEADLINE_SECONDS)
    try:
        me = client.current_user()
        members = client.organization_members(organization_uri=me.organization_uri)
        event_types = client.event_types(organization_uri=me.organization_uri)
    finally:
        if own:
            client.close()
    org_id = connection.organization_id
    counts = {"users": 0, "users_linked": 0, "users_left": 0, "event_types": 0, "event_types_active": 0,
              "event_types_deactivated": 0, **client.stats.as_dict()}
    with transaction.atomic():
        by_email = _providers_by_email(org_id)
        users = {u.uri: u for u in CalendlyUser.objects.select_for_update().filter(connection=connection)}
        seen_users = set()
        for member in members:
            if member.user_uri in seen_users:
                continue
            seen_users.add(member.user_uri)
            email = member.email.strip().lower()
            user = users.get(member.user_uri) or CalendlyUser(organization_id=org_id, connection=connection, uri=member.user_uri)
            user.email, user.name, user.is_member = email[:254], member.name[:200], True
            if not user.linked_manually:
                user.resource = by_email.get(email) if email else None
            user.save()
            users[user.uri] = user
            counts["users"] += 1
            counts["users_linked"] += user.resource_id is not None
        left = CalendlyUser.objects.filter(connection=connection, is_member=True).exclude(uri__in=seen_users)
        counts["users_left"] = left.update(is_member=False, updated_at=timezone.now())

        existing = {e.uri: e for e in CalendlyEventType.objects.select_for_update().filter(connection=connection)}
        seen_types = set()
        for item in event_types:
            if item.uri in seen_types:
                continue
            seen_types.add(item.uri)
            row = existing.get(item.uri) or CalendlyEventType(organization_id=org_id, connection=connection, uri=item.uri)
            owner = users.get(item.owner_uri)
            row.event_type_id = item.uuid[:64]
            row.name = item.name[:255]
            row.scheduling_url = item.scheduling_url[:500]
            row.duration = item.duration if item.duration is None or item.duration >= 0 else None
            row.active = item.active
            row.owner_uri = item.owner_uri[:500]
            row.calendly_user = owner
            row.save()
            counts["event_types"] += 1
            counts["event_types_active"] += item.active
        vanished = CalendlyEventType.objects.filter(connection=connection, active=True).exclude(uri__in=seen_types)
        counts["event_types_deactivated"] = vanished.update(active=False, updated_at=timezone.now())

        CalendlyConnection.objects.filter(pk=connection.pk).update(
            calendly_organization_uri=me.organization_uri[:500],
            calendly_user_uri=me.uri[:500],
            last_synced_at=timezone.now(),
            last_error="",
            cache_version=F("cache_version") + 1,
        )
    connection.refresh_from_db()
    return counts


def calendly_user_link(*, user: CalendlyUser, resource: Resource | None) -> CalendlyUser:
    """Staff's choice of provider for a Calendly user (None unlinks): kept by later syncs. Cached
    available times are invalidated, since the directory now lists another provider."""
    if resource is not None and resource.organization_id != user.organization_id:
        raise ValueError("The provider belongs to another organization.")
    with transaction.atomic():
        CalendlyUser.objects.filter(pk=user.pk).update(resource=resource, linked_manually=True, updated_at=timezone.now())
        CalendlyConnection.objects.filter(pk=user.connection_id).update(cache_version=F("cache_version") + 1)
    user.resource, user.linked_manually = resource, True
    return user


# --- jobs ------------------------------------------------------------------------------------------


def calendly_sync_start(*, connection: CalendlyConnection) -> Job:
    from emr.services.live_fetch import job_enqueue

    with transaction.atomic():
        job = Job.objects.create(
            organization_id=connection.organization_id,
            calendly_connection=connection,
            kind=Job.Kind.CALENDLY_SYNC,
            params={},
        )
        job_enqueue(job=job)
    return job


def calendly_sync_job_run(job: Job) -> None:
    """The runner of ``calendly.sync`` jobs (through ``job_run``, so retries work from the admin)."""
    from emr.services.live_fetch import job_finish

    connection = job.calendly_connection
    if connection is None or not connection.is_active:
        job_finish(job=job, status=Job.Status.FAILED, error="The Calendly connection of this job is inactive or was deleted.")
        return
    try:
        counts = calendly_sync(connection=connection)
    except CalendlyError as exc:
        CalendlyConnection.objects.filter(pk=connection.pk).update(last_error=str(exc)[:2000])
        job_finish(job=job, status=Job.Status.FAILED, error=str(exc))
        return
    job_finish(job=job, status=Job.Status.SUCCEEDED, counts=counts)


def calendly_sync_all() -> list[str]:
    """The schedule's body: one sync job per active connection; their ids."""
    return [calendly_sync_start(connection=c).pk for c in CalendlyConnection.objects.filter(is_active=True, organization__is_active=True)]


def calendly_jobs_register() -> None:
    from emr.services.live_fetch import job_runner_register

    job_runner_register(Job.Kind.CALENDLY_SYNC, calendly_sync_job_run)
