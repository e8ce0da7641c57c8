"""Reads shared by the API, admin and tasks."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import OuterRef, Subquery

from tenants.errors import NotFound
from tenants.models import Organization


def tenant_get(*, model: type[models.Model], organization: Organization, pk) -> models.Model:
    """The organization's object with that id; anything else (unknown, other tenant's) is 404."""
    try:
        pk = uuid.UUID(str(pk))
    except ValueError:
        raise NotFound(f"{model._meta.verbose_name.capitalize()} not found.") from None
    obj = model.objects.filter(organization=organization, pk=pk).first()
    if obj is None:
        raise NotFound(f"{model._meta.verbose_name.capitalize()} {pk} not found.")
    return obj


def resource_first_location_zone() -> Subquery:
    """For annotating resources: the zone of the first location each was linked to, the zone its
    working hours are read in when it has none of its own (``resource_zone``)."""
    from booking.models import ResourceService

    return Subquery(
        ResourceService.objects.filter(resource=OuterRef("pk")).order_by("created_at", "id").values("location__timezone")[:1]
    )


def resource_zone(*, own: str | None, first_location: str | None, organization_zone: str) -> str:
    """A resource's effective zone (v3-api.md, resources ``timezone``): its own, else its first
    linked location's, else the organization's. Availability, ``/v3/`` and ``/v1/`` all read a
    resource's wall-clock hours in this zone."""
    return own or first_location or organization_zone


def resource_zone_get(*, resource) -> str:
    """``resource_zone`` for one resource object (two small queries at most)."""
    if resource.timezone:
        return resource.timezone
    from booking.models import ResourceService

    first = (
        ResourceService.objects.filter(resource=resource).order_by("created_at", "id").values_list("location__timezone", flat=True).first()
    )
    return resource_zone(own=None, first_location=first, organization_zone=_organization_zone(resource.organization_id))


def _organization_zone(organization_id) -> str:
    return Organization.objects.filter(pk=organization_id).values_list("timezone", flat=True).first() or "UTC"


def scoped_zone_get(*, resource=None, location=None, organization_id=None) -> str:
    """The zone a block, allocation or appointment happens in (admin.md, "Time"): its location's;
    a resource-scoped one's resource's; otherwise the organization's."""
    if location is not None:
        return location.timezone
    if resource is not None:
        return resource_zone_get(resource=resource)
    return _organization_zone(organization_id)
