"""Writes on a resource's sub-resources: service links, weekly schedule, single allocations."""

from __future__ import annotations

from django.db import transaction

from booking.models import Allocation, Location, Resource, ResourceService, Service, Shift
from booking.services.invalidation import availability_invalidate


def resource_service_link(*, resource: Resource, service: Service, location: Location) -> tuple[ResourceService, bool]:
    """Link (idempotent): returns the link and whether it was created."""
    with transaction.atomic():
        link, created = ResourceService.objects.get_or_create(
            resource=resource, service=service, location=location, defaults={"organization_id": resource.organization_id}
        )
        if created:
            availability_invalidate(organization_id=resource.organization_id)
    return link, created


def resource_service_unlink(*, resource: Resource, service: Service, location: Location | None) -> int:
    """Remove the link at ``location``, or at every location when it is None."""
    with transaction.atomic():
        qs = ResourceService.objects.filter(resource=resource, service=service)
        if location is not None:
            qs = qs.filter(location=location)
        deleted, _ = qs.delete()
        if deleted:
            availability_invalidate(organization_id=resource.organization_id)
    return deleted


def resource_schedule_replace(*, resource: Resource, windows: list[dict]) -> list[Shift]:
    """Replace all of the resource's weekly working hours."""
    with transaction.atomic():
        Shift.objects.filter(resource=resource).delete()
        shifts = Shift.objects.bulk_create(
            [
                Shift(
                    organization_id=resource.organization_id,
                    resource=resource,
                    location=window.get("location"),
                    day_of_week=window["dayOfWeek"],
                    start_time=window["startTime"],
                    end_time=window["endTime"],
                )
                for window in windows
            ]
        )
        availability_invalidate(organization_id=resource.organization_id)
    return shifts


def allocation_create(*, resource: Resource, data: dict) -> Allocation:
    with transaction.atomic():
        allocation = Allocation.objects.create(organization_id=resource.organization_id, resource=resource, **data)
        availability_invalidate(organization_id=resource.organization_id)
    return allocation


def allocation_delete(*, allocation: Allocation) -> None:
    with transaction.atomic():
        organization_id = allocation.organization_id
        allocation.delete()
        availability_invalidate(organization_id=organization_id)
