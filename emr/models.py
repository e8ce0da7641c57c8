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

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "EMR connection"

    def __str__(self) -> str:
        return f"{self.name} ({self.get_vendor_display()})"
