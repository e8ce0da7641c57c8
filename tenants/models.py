from __future__ import annotations

import uuid
import zoneinfo
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from tenants.credentials import public_id_new
from tenants.weekly_windows import validate_weekly_windows


def validate_timezone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(f"'{value}' is not a known IANA time zone.")


_ZONES: frozenset[str] | None = None
# Files in the tz database directory that are not IANA zones: the host's own zone (whatever the
# machine is set to), the "-00" placeholder, and the POSIX-TZ rules template.
NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})


def available_timezones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = (frozenset(zoneinfo.available_timezones()) | {"UTC"}) - NOT_ZONES
    return _ZONES


def default_hours() -> list[dict]:
    """Monday to Friday, 09:00 to 17:00 (dayOfWeek 0 = Sunday)."""
    return [{"dayOfWeek": day, "startTime": "09:00:00", "endTime": "17:00:00"} for day in range(1, 6)]


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Organization(TimeStampedModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    default_hours = models.JSONField(
        default=default_hours,
        blank=True,
        validators=[validate_weekly_windows],
        help_text="Weekly hours used when a provider has none and a request asks for default hours "
        '([{"dayOfWeek": 1, "startTime": "09:00:00", "endTime": "17:00:00"}, …], 0 = Sunday).',
    )
    is_active = models.BooleanField(default=True)
    # Bumped by every write that can change availability; part of every availability cache key.
    availability_version = models.BigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TenantOwnedModel(TimeStampedModel):
    """A row that belongs to exactly one organization."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True

    def clean(self):
        """Nothing may point at another organization's objects (checked by admin forms)."""
        super().clean()
        errors = {}
        for field in self._meta.concrete_fields:
            if not field.is_relation or field.name == "organization" or not issubclass(field.related_model, TenantOwnedModel):
                continue
            related = getattr(self, field.name, None)
            if related is not None and self.organization_id and related.organization_id != self.organization_id:
                errors[field.name] = "Belongs to another organization."
        if errors:
            raise ValidationError(errors)


class Membership(TimeStampedModel):
    class Role(models.TextChoices):
        ADMIN = "admin", "Administrator (read and write)"
        FRONTDESK = "frontdesk", "Front desk (appointments, blocks, allocations; read the rest)"
        VIEWER = "viewer", "Viewer (read only)"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ADMIN)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization}"


class ApiClient(TenantOwnedModel):
    """An API principal: a ``client_id``/``client_secret`` pair and an API key, all revocable."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, default="API client")
    client_id = models.CharField(max_length=64, unique=True, editable=False)
    client_secret_lookup = models.CharField(max_length=16, unique=True, editable=False)
    client_secret_hash = models.CharField(max_length=64, editable=False)
    api_key_lookup = models.CharField(max_length=16, unique=True, editable=False)
    api_key_hash = models.CharField(max_length=64, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API client"

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class OAuthToken(TimeStampedModel):
    """A bearer token from ``POST /v3/oauth/token`` (client credentials grant)."""

    api_client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="tokens")
    lookup = models.CharField(max_length=16, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, editable=False)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"bearer token {self.lookup}… of {self.api_client_id}"

    @classmethod
    def expiry_from_now(cls):
        return timezone.now() + timedelta(seconds=settings.API_TOKEN_TTL_SECONDS)


def event_id_new() -> str:
    return public_id_new("evt")


class Event(models.Model):
    """Something that happened in an organization; stored first, then delivered to webhooks."""

    id = models.CharField(primary_key=True, max_length=40, default=event_id_new, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=64, db_index=True)
    payload = models.JSONField(help_text="The event's JSON payload (parsed from ``body``).")
    body = models.TextField(
        blank=True,
        default="",
        editable=False,
        help_text="The exact bytes (UTF-8) POSTed to webhook endpoints and signed; serialized once.",
    )
    job_id = models.CharField(max_length=40, null=True, blank=True, db_index=True)
    # The EMR connection an event speaks for (echoed in live-fetch payloads); events that carry one
    # are visible only through that connection's access token.
    access_token_reference_id = models.CharField(max_length=40, null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "job_id", "created_at"])]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


def webhook_endpoint_id_new() -> str:
    return public_id_new("wh")


class WebhookEndpoint(TenantOwnedModel):
    """Where an organization wants its events POSTed, and the secret they are signed with.

    The secret must be usable for signing, so it is stored encrypted (``tenants.crypto``), not
    hashed. After a rotation the previous secret keeps signing (beside the new one) until
    ``previous_secret_expires_at``. Deleting through the API only marks the endpoint deleted so
    its delivery history stays readable.
    """

    id = models.CharField(primary_key=True, max_length=40, default=webhook_endpoint_id_new, editable=False)
    url = models.CharField(max_length=2000)
    secret_encrypted = models.TextField(editable=False)
    previous_secret_encrypted = models.TextField(blank=True, default="", editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    event_types = models.JSONField(
        default=list, blank=True, help_text="Only these event types are sent; empty means every type."
    )
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "webhook endpoint"
        indexes = [models.Index(fields=["organization", "is_active"])]

    def __str__(self) -> str:
        return self.url

    @property
    def status(self) -> str:
        if self.deleted_at is not None:
            return "deleted"
        return "active" if self.is_active else "disabled"

    @property
    def is_deliverable(self) -> bool:
        return self.is_active and self.deleted_at is None

    def accepts(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class Delivery(TenantOwnedModel):
    """One event on its way to one endpoint: the state machine the workers share.

    ``pending`` waits for ``next_attempt_at``; ``sending`` is owned by the worker holding
    ``claim_token`` until ``lease_expires_at`` (after that any worker may take it over: the first
    one died); ``succeeded`` and ``failed`` are final until staff redeliver.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "In flight"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts started (the last webhook-attempt sent).")
    cycle_attempts = models.PositiveIntegerField(
        default=0, editable=False, help_text="Attempts since the delivery was (re)queued; indexes the retry schedule."
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    claim_token = models.CharField(max_length=32, blank=True, default="", editable=False)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="delivery_event_endpoint_unique")]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["status", "lease_expires_at"]),
            models.Index(fields=["organization", "status", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id} ({self.status})"


class DeliveryAttempt(models.Model):
    """One HTTP POST of a delivery (or a claimed attempt whose worker died before finishing)."""

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded"
        RETRY = "retry", "Failed, will retry"
        FAILED = "failed", "Failed, no retry"
        LOST = "lost", "Lost (worker stopped)"

    tenant_path = "delivery__organization"  # for admin scoping

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_rows")
    number = models.PositiveIntegerField(help_text="The webhook-attempt header sent (1-based).")
    url = models.CharField(max_length=2000)
    started_at = models.DateTimeField(db_index=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True, default="", help_text="The first 1 KB of the response body.")
    error = models.TextField(blank=True, default="")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)

    class Meta:
        ordering = ["started_at", "id"]
        indexes = [models.Index(fields=["delivery", "number"])]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"


class RateLimitWindow(models.Model):
    """One rate-limit window of one credential, when ``REDIS_URL`` is empty: ``hits`` requests
    counted since the window opened, until ``expires_at`` (Unix seconds). Updated by one atomic
    upsert per request (``tenants.api.throttling``), so every web worker shares the count."""

    bucket = models.CharField(max_length=200, primary_key=True)
    hits = models.PositiveIntegerField()
    expires_at = models.FloatField(db_index=True)

    def __str__(self) -> str:
        return f"{self.bucket}: {self.hits}"
