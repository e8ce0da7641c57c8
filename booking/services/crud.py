"""Writes for the plain ``/v3/`` collections: create, update, delete, each one transaction that
ends by invalidating cached availability."""

from __future__ import annotations

from django.db import models, transaction
from django.utils import timezone

from booking.models import Appointment, Location, Resource, Service
from booking.services.invalidation import availability_invalidate
from tenants.errors import Conflict
from tenants.models import Organization

ACTIVE_STATUSES = (Appointment.Status.BOOKED, Appointment.Status.RESERVED, Appointment.Status.HOLD)


def tenant_object_save(*, instance: models.Model) -> models.Model:
    """Save an object its caller has filled and validated (the API's serializers, an admin form)."""
    with transaction.atomic():
        instance.save()
        availability_invalidate(organization_id=instance.organization_id)
    return instance


def tenant_object_create(*, model: type[models.Model], organization: Organization, data: dict) -> models.Model:
    return tenant_object_save(instance=model(organization=organization, **data))


def tenant_object_update(*, instance: models.Model, data: dict) -> models.Model:
    for field, value in data.items():
        setattr(instance, field, value)
    return tenant_object_save(instance=instance)


def _upcoming_appointments(instance: models.Model) -> int:
    now = timezone.now()
    qs = Appointment.objects.filter(organization_id=instance.organization_id, end__gt=now, status__in=ACTIVE_STATUSES)
    if isinstance(instance, Resource):
        qs = qs.filter(resource_links__resource=instance)
    elif isinstance(instance, Service):
        qs = qs.filter(service=instance)
    elif isinstance(instance, Location):
        qs = qs.filter(location=instance)
    else:
        return 0
    return qs.count()


def tenant_objects_delete(*, instances) -> int:
    """Delete several (the admin's bulk delete): all of them, or, when one is refused, none."""
    with transaction.atomic():
        for instance in instances:
            tenant_object_delete(instance=instance)
    return len(instances)


def tenant_object_delete(*, instance: models.Model) -> None:
    """Delete; a location, service or resource with upcoming appointments is refused (409) so no
    booking silently loses its place, service or provider."""
    with transaction.atomic():
        upcoming = _upcoming_appointments(instance)
        if upcoming:
            raise Conflict(
                f"This {instance._meta.verbose_name} has {upcoming} upcoming appointment(s); cancel them "
                "first, or set it inactive."
            )
        organization_id = instance.organization_id
        instance.delete()
        availability_invalidate(organization_id=organization_id)
