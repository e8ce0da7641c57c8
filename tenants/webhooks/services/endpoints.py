"""Webhook endpoints: URL and event-type checks, creation, secret rotation, disabling."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tenants.crypto import decrypt_text, encrypt_text
from tenants.models import Delivery, Organization, WebhookEndpoint
from tenants.url_guard import UnsafeUrl, url_check
from tenants.webhooks.signing import secret_generate

EVENT_TYPES = (
    "appointment.live_fetch_completed",
    "availability.live_fetch_completed",
    "appointment.created",
    "appointment.updated",
    "appointment.cancelled",
    "access_token.login_required",
)
ROTATION_OVERLAP = timedelta(hours=24)
MAX_ENDPOINTS_PER_ORGANIZATION = 20


class EndpointConflict(Exception):
    """The organization already has a live endpoint with this URL."""


@dataclass(frozen=True)
class IssuedEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once


def webhook_url_validate(*, url: str) -> str:
    """The URL, stripped, if we may POST to it; ``ValidationError({"url": …})`` otherwise."""
    if not isinstance(url, str):
        raise ValidationError({"url": "must be a string."})
    url = url.strip()
    try:
        url_check(
            url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE_URLS, allowed_networks=settings.OUTBOUND_ALLOWED_NETWORKS
        )
    except UnsafeUrl as exc:
        raise ValidationError({"url": exc.message}) from None
    return url


def webhook_event_types_validate(*, event_types: Iterable[str] | None) -> list[str]:
    if event_types is None:
        return []
    if isinstance(event_types, str) or not isinstance(event_types, (list, tuple)):
        raise ValidationError({"event_types": "must be a list of event types."})
    cleaned: list[str] = []
    for value in event_types:
        if value not in EVENT_TYPES:
            raise ValidationError({"event_types": f"unknown event type {str(value)[:64]!r}; known: {', '.join(EVENT_TYPES)}."})
        if value not in cleaned:
            cleaned.append(value)
    return cleaned


def _live_endpoints(organization_id) -> Q:
    return Q(organization_id=organization_id, deleted_at__isnull=True)


def webhook_endpoint_create(
    *, organization: Organization, url: str, event_types: Iterable[str] | None = None
) -> IssuedEndpoint:
    url = webhook_url_validate(url=url)
    types = webhook_event_types_validate(event_types=event_types)
    secret = secret_generate()
    with transaction.atomic():
        # One creation at a time per organization, so the limit and the duplicate check hold.
        Organization.objects.select_for_update().filter(pk=organization.pk).first()
        live = WebhookEndpoint.objects.filter(_live_endpoints(organization.pk))
        if live.filter(url=url).exists():
            raise EndpointConflict("A webhook with this URL is already registered.")
        if live.count() >= MAX_ENDPOINTS_PER_ORGANIZATION:
            raise ValidationError({"url": f"an organization can register at most {MAX_ENDPOINTS_PER_ORGANIZATION} webhooks."})
        endpoint = WebhookEndpoint.objects.create(
            organization=organization, url=url, event_types=types, secret_encrypted=encrypt_text(secret)
        )
    return IssuedEndpoint(endpoint=endpoint, secret=secret)


def webhook_endpoint_update(*, endpoint: WebhookEndpoint, url: str, event_types: Iterable[str] | None) -> WebhookEndpoint:
    url = webhook_url_validate(url=url)
    types = webhook_event_types_validate(event_types=event_types)
    if WebhookEndpoint.objects.filter(_live_endpoints(endpoint.organization_id), url=url).exclude(pk=endpoint.pk).exists():
        raise EndpointConflict("A webhook with this URL is already registered.")
    endpoint.url, endpoint.event_types = url, types
    endpoint.save(update_fields=["url", "event_types", "updated_at"])
    return endpoint


def webhook_endpoint_secrets(*, endpoint: WebhookEndpoint, now: datetime | None = None) -> list[str]:
    """The secrets that sign now: the current one, then the previous one while it is still valid."""
    now = now or timezone.now()
    valid = [decrypt_text(endpoint.secret_encrypted)]
    if endpoint.previous_secret_encrypted and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        valid.append(decrypt_text(endpoint.previous_secret_encrypted))
    return valid


def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint, now: datetime | None = None) -> IssuedEndpoint:
    """A new secret; the current one keeps signing beside it for ``ROTATION_OVERLAP``. Rotating
    again within that window retires the oldest secret at once (only two are ever valid)."""
    now = now or timezone.now()
    secret = secret_generate()
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.previous_secret_encrypted = locked.secret_encrypted
        locked.previous_secret_expires_at = now + ROTATION_OVERLAP
        locked.secret_encrypted = encrypt_text(secret)
        locked.save(update_fields=["previous_secret_encrypted", "previous_secret_expires_at", "secret_encrypted", "updated_at"])
    return IssuedEndpoint(endpoint=locked, secret=secret)


def _pending_deliveries_fail(*, endpoint_id, error: str, now: datetime) -> int:
    return Delivery.objects.filter(endpoint_id=endpoint_id, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.FAILED, last_error=error, next_attempt_at=None, completed_at=now, updated_at=timezone.now()
    )


def webhook_endpoint_disable(*, endpoint: WebhookEndpoint, reason: str, now: datetime | None = None) -> None:
    """Stop sending to the endpoint; its waiting deliveries fail (staff can redeliver later)."""
    now = now or timezone.now()
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
            is_active=False, disabled_reason=reason[:500], disabled_at=now, updated_at=timezone.now()
        )
        _pending_deliveries_fail(endpoint_id=endpoint.pk, error=f"Endpoint disabled: {reason}", now=now)
    endpoint.refresh_from_db()


def webhook_endpoint_enable(*, endpoint: WebhookEndpoint) -> None:
    WebhookEndpoint.objects.filter(pk=endpoint.pk, deleted_at__isnull=True).update(
        is_active=True, disabled_reason="", disabled_at=None, updated_at=timezone.now()
    )
    endpoint.refresh_from_db()


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, now: datetime | None = None) -> None:
    """Nothing more is sent to it; the endpoint and its delivery history stay for the admin."""
    now = now or timezone.now()
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk, deleted_at__isnull=True).update(
            deleted_at=now, is_active=False, previous_secret_encrypted="", updated_at=timezone.now()
        )
        _pending_deliveries_fail(endpoint_id=endpoint.pk, error="Endpoint deleted.", now=now)
    endpoint.refresh_from_db()

