"""Reads shared by the API, admin and tasks."""

from __future__ import annotations

import uuid

from django.db import models
from django.http import Http404

from tenants.models import Organization


def tenant_get(*, model: type[models.Model], organization: Organization, pk) -> models.Model:
    """The organization's object with that id; anything else (unknown, other tenant's) is 404."""
    try:
        pk = uuid.UUID(str(pk))
    except ValueError:
        raise Http404(f"{model._meta.verbose_name.capitalize()} not found.") from None
    obj = model.objects.filter(organization=organization, pk=pk).first()
    if obj is None:
        raise Http404(f"{model._meta.verbose_name.capitalize()} {pk} not found.")
    return obj
