from __future__ import annotations

import uuid
import zoneinfo
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from tenants.credentials import public_id_new


def validate_timezone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(f"'{value}' is not a known IANA time zone.")


_ZONES: frozenset[str] | None = None


def available_timezones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(zoneinfo.available_timezones()) | {"UTC"}
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
        help_text="Weekly hours used when a provider has none and a request asks for default hours.",
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
    payload = models.JSONField(help_text="The exact JSON body sent to webhook endpoints.")
    job_id = models.CharField(max_length=40, null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"
