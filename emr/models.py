from __future__ import annotations

import uuid

from django.db import models

from tenants.credentials import public_id_new
from tenants.models import TenantOwnedModel, validate_timezone


class Vendor(models.TextChoices):
    ECW = "ecw", "eClinicalWorks"
    FHIR = "fhir", "FHIR R4 server"
    SANDBOX = "sandbox", "Sandbox EMR"
    ATHENAHEALTH = "athenahealth", "athenahealth"
    EPIC = "epic", "Epic"
    PRACTICE_FUSION = "practice_fusion", "Practice Fusion"
    CERNER = "cerner", "Oracle Health (Cerner)"
    NEXTGEN = "nextgen", "NextGen"
    ELATION = "elation", "Elation"
    DRCHRONO = "drchrono", "DrChrono"


def reference_id_new() -> str:
    return public_id_new("user")


class EmrConnection(TenantOwnedModel):
    """An organization's link to its EMR, named by the ``access_token`` API clients send."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, default="EMR")
    vendor = models.CharField(max_length=32, choices=Vendor.choices, default=Vendor.SANDBOX)
    base_url = models.URLField(max_length=500, blank=True, default="")
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    access_token_lookup = models.CharField(max_length=16, unique=True, editable=False)
    access_token_hash = models.CharField(max_length=64, editable=False)
    access_token_reference_id = models.CharField(max_length=40, unique=True, default=reference_id_new, editable=False)
    credentials_encrypted = models.TextField(blank=True, default="", editable=False)
    is_active = models.BooleanField(default=True)
    # Set when the EMR rejected the stored credentials (``access_token.login_required`` was
    # emitted); cleared by the next call that gets through.
    login_required_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, default="", editable=False)
    last_synced_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Last provider and location sync."
    )

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "EMR connection"

    def __str__(self) -> str:
        return f"{self.name} ({self.get_vendor_display()})"


def job_id_new() -> str:
    return public_id_new("job")


class Job(TenantOwnedModel):
    """A background operation a client or staff asked for (live fetches, syncs): its parameters,
    status, timings, counts and error, visible in the admin and retryable from there."""

    class Kind(models.TextChoices):
        APPOINTMENTS_FETCH = "appointments.fetch", "Live fetch of appointments"
        AVAILABILITY_FETCH = "availability.fetch", "Live fetch of availability"
        PROVIDERS_SYNC = "providers.sync", "Provider and location sync"
        CALENDLY_SYNC = "calendly.sync", "Calendly users and event types sync"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.CharField(primary_key=True, max_length=40, default=job_id_new, editable=False)
    emr_connection = models.ForeignKey(EmrConnection, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs")
    calendly_connection = models.ForeignKey(
        "emr.CalendlyConnection", null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True, help_text="e.g. fetched, created, updated, cancelled.")
    error = models.TextField(blank=True, default="")
    task_id = models.CharField(max_length=64, blank=True, default="", help_text="django-q2 task id.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.id} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class VisitType(TenantOwnedModel):
    """A visit type (appointment type) of one EMR connection, as seen in its appointments and
    schedules. Each is also a ``booking.Service`` (``service.visit_type`` = ``code``)."""

    emr_connection = models.ForeignKey(EmrConnection, on_delete=models.CASCADE, related_name="visit_types")
    code = models.CharField(max_length=128)
    description = models.CharField(max_length=255, blank=True, default="")
    service = models.ForeignKey(
        "booking.Service", null=True, blank=True, on_delete=models.SET_NULL, related_name="emr_visit_types"
    )

    class Meta:
        ordering = ["code"]
        constraints = [models.UniqueConstraint(fields=["emr_connection", "code"], name="visit_type_code_unique")]

    def __str__(self) -> str:
        return f"{self.code} ({self.description})" if self.description else self.code


class VisitStatus(TenantOwnedModel):
    """An appointment status of one EMR connection (``GET /v1/settings`` ``visit_statuses``): the
    statuses its fetched appointments carry, with a description staff can edit."""

    emr_connection = models.ForeignKey(EmrConnection, on_delete=models.CASCADE, related_name="visit_statuses")
    code = models.CharField(max_length=128)
    description = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "visit statuses"
        constraints = [models.UniqueConstraint(fields=["emr_connection", "code"], name="visit_status_code_unique")]

    def __str__(self) -> str:
        return f"{self.code} ({self.description})" if self.description else self.code


class LocalHours(TenantOwnedModel):
    """A provider whose hours were set through ``PATCH /v1/providers``: the EMR sync no longer
    replaces them (until this row is deleted)."""

    resource = models.OneToOneField("booking.Resource", on_delete=models.CASCADE, related_name="emr_local_hours")

    class Meta:
        verbose_name = "provider with locally managed hours"
        verbose_name_plural = "providers with locally managed hours"

    def __str__(self) -> str:
        return str(self.resource)


class SandboxClient(models.Model):
    """A client registered with the built-in sandbox EMR: the public keys its token endpoint
    verifies SMART Backend Services client assertions against (the EMR's side, not a tenant's)."""

    client_id = models.CharField(max_length=100, unique=True)
    jwks = models.JSONField(help_text="Public JSON Web Key Set.")
    emr_connection = models.OneToOneField(
        EmrConnection, null=True, blank=True, on_delete=models.CASCADE, related_name="sandbox_client"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "sandbox EMR client"

    def __str__(self) -> str:
        return self.client_id


CALENDLY_API_URL = "https://api.calendly.com"


class CalendlyConnection(TenantOwnedModel):
    """An organization's link to Calendly (one per organization): the personal access token,
    encrypted at rest, and the API base URL (Calendly's, or a local fake or the sandbox)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    base_url = models.URLField(max_length=500, default=CALENDLY_API_URL, help_text="Calendly API base URL.")
    token_encrypted = models.TextField(blank=True, default="", editable=False)
    is_active = models.BooleanField(default=True)
    calendly_organization_uri = models.CharField(max_length=500, blank=True, default="", editable=False)
    calendly_user_uri = models.CharField(max_length=500, blank=True, default="", editable=False)
    # Bumped by every sync: part of the key of every cached answer of Calendly's available times.
    cache_version = models.BigIntegerField(default=0, editable=False)
    last_synced_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, default="", editable=False)

    class Meta:
        verbose_name = "Calendly connection"
        constraints = [models.UniqueConstraint(fields=["organization"], name="calendly_connection_one_per_organization")]

    def __str__(self) -> str:
        return f"Calendly ({self.base_url})"


class CalendlyUser(TenantOwnedModel):
    """A user of the organization's Calendly account, linked to the provider (resource) whose
    email matches; staff may change the link, and the sync then keeps their choice."""

    connection = models.ForeignKey(CalendlyConnection, on_delete=models.CASCADE, related_name="users")
    uri = models.CharField(max_length=500)
    email = models.CharField(max_length=254, blank=True, default="")
    name = models.CharField(max_length=200, blank=True, default="")
    resource = models.ForeignKey(
        "booking.Resource", null=True, blank=True, on_delete=models.SET_NULL, related_name="calendly_users",
        help_text="The provider this Calendly user is. Set by email at each sync unless chosen here.",
    )
    linked_manually = models.BooleanField(
        default=False, help_text="Staff chose the provider: the sync no longer matches this user by email."
    )
    is_member = models.BooleanField(default=True, help_text="False once the user left the Calendly organization.")

    class Meta:
        ordering = ["name", "email", "id"]
        verbose_name = "Calendly user"
        constraints = [models.UniqueConstraint(fields=["connection", "uri"], name="calendly_user_uri_unique")]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email or self.uri


class CalendlyEventType(TenantOwnedModel):
    """A Calendly event type as last synced; ``active`` is False when Calendly says so or when
    it vanished from Calendly."""

    connection = models.ForeignKey(CalendlyConnection, on_delete=models.CASCADE, related_name="event_types")
    calendly_user = models.ForeignKey(
        CalendlyUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="event_types"
    )
    event_type_id = models.CharField(max_length=64, help_text="Calendly's UUID: the last segment of the uri.")
    uri = models.CharField(max_length=500)
    name = models.CharField(max_length=255, blank=True, default="")
    scheduling_url = models.CharField(max_length=500, blank=True, default="")
    duration = models.PositiveIntegerField(null=True, blank=True, help_text="Minutes.")
    active = models.BooleanField(default=True)
    owner_uri = models.CharField(max_length=500, blank=True, default="", help_text="profile.owner")

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "Calendly event type"
        constraints = [models.UniqueConstraint(fields=["connection", "uri"], name="calendly_event_type_uri_unique")]
        indexes = [models.Index(fields=["organization", "event_type_id"])]

    def __str__(self) -> str:
        return self.name or self.event_type_id
