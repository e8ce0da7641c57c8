"""Providers and locations from the EMR (the sync) and their management through ``/v1/``.

The sync reads the EMR's practitioners, locations and schedules and writes them as provider
resources, locations, shifts and visit-type rules of the connection:

* A location or provider is matched by EHR id among the connection's rows (``ehr_rows``). One the
  organization already has without a connection (created by hand or through ``/v3/`` with that EHR
  id) is linked to this connection; a provider without an EHR id is also matched by NPI. Another
  connection's rows are never touched: each connection has its own namespace of EHR ids.
* Names, NPI, addresses and zones follow the EMR; status and ``hide_in_availability`` are set
  from the EMR only when the row is created, afterwards they are managed here.
* A provider the EMR publishes a schedule for gets its shifts replaced by the schedule's, unless
  its hours were set through ``PATCH /v1/providers`` (``LocalHours``), and with them its
  ``timezone``: the zone the adapter read the schedule's Slots in (``EmrProvider.timezone``), so
  the shifts' wall times mean the same hours wherever they are read (``resource_zone``: sync,
  ``/v1/providers``, ``/v1/availability``, ``/v3/availability``). A provider created without a
  schedule has no zone of its own (it follows its first location's, else the organization's).
"""

from __future__ import annotations

from datetime import date, time
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from booking.models import ActiveStatus, Location, Resource, Shift, VisitTypeRule
from booking.services.invalidation import availability_invalidate
from emr.adapters.base import EmrLocation, EmrProvider
from emr.models import EmrConnection, LocalHours
from emr.selectors import ehr_rows
from emr.services.appointments import StoreResult, ehr_references_resolve, visit_types_resolve
from emr.services.connections import connection_adapter
from emr.services.settings import visit_type_descriptions_fill


def _weekday_sunday0(weekday_monday0: int) -> int:
    return (weekday_monday0 + 1) % 7


def _rule_minutes(start: time, end: time, visits: int) -> int:
    start_m = start.hour * 60 + start.minute
    end_m = (end.hour * 60 + end.minute) or 24 * 60
    return max(1, (end_m - start_m) // max(1, visits))


def _locations_upsert(*, connection: EmrConnection, items: list[EmrLocation], counts: dict) -> dict[str, Location]:
    org_id = connection.organization_id
    by_id = {item.ehr_id: item for item in items}
    existing = ehr_rows(model=Location, connection=connection, ehr_ids=by_id)
    to_create, to_update = [], []
    for ehr_id, item in by_id.items():
        current = existing.get(ehr_id)
        zone = item.timezone or connection.timezone
        if current is None:
            to_create.append(
                Location(
                    organization_id=org_id,
                    name=item.name[:200],
                    address=item.address,
                    timezone=zone,
                    ehr_id=ehr_id,
                    status=ActiveStatus.ACTIVE if item.active else ActiveStatus.INACTIVE,
                    emr_connection=connection,
                )
            )
            continue
        ours = current.emr_connection_id == connection.pk
        changes = {"emr_connection_id": connection.pk, "timezone": zone if item.timezone else current.timezone}
        if ours:
            changes.update(name=item.name[:200], address=item.address or current.address)
        if any(getattr(current, k) != v for k, v in changes.items()):
            for key, value in changes.items():
                setattr(current, key, value)
            to_update.append(current)
    Location.objects.bulk_create(to_create)
    if to_update:
        Location.objects.bulk_update(to_update, ["emr_connection", "timezone", "name", "address", "updated_at"])
    counts["locations_created"] += len(to_create)
    counts["locations_updated"] += len(to_update)
    return {loc.ehr_id: loc for loc in Location.objects.filter(emr_connection=connection, ehr_id__in=list(by_id))}


def _providers_upsert(*, connection: EmrConnection, items: list[EmrProvider], counts: dict) -> dict[str, Resource]:
    org_id = connection.organization_id
    by_id = {item.ehr_id: item for item in items}
    existing = ehr_rows(model=Resource, connection=connection, ehr_ids=by_id)
    # Providers entered by hand (no EHR id, no connection) are recognised by their NPI.
    npis = {item.npi: item for item in items if item.npi and item.ehr_id not in existing}
    adoptable = {
        r.npi: r
        for r in Resource.objects.filter(organization_id=org_id, ehr_id__isnull=True, emr_connection__isnull=True, npi__in=list(npis))
    }
    to_create, to_update = [], []
    for ehr_id, item in by_id.items():
        current = existing.get(ehr_id)
        if current is None and item.npi in adoptable:
            current = adoptable.pop(item.npi)
            current.ehr_id = ehr_id
            current.emr_connection = connection
            to_update.append(current)
            counts["providers_linked"] += 1
            continue
        if current is None:
            to_create.append(
                Resource(
                    organization_id=org_id,
                    name=item.name[:200],
                    type=Resource.Type.PROVIDER,
                    ehr_id=ehr_id,
                    npi=item.npi,
                    timezone=item.timezone if item.has_schedule else None,
                    status=ActiveStatus.ACTIVE if item.active else ActiveStatus.INACTIVE,
                    emr_connection=connection,
                )
            )
            continue
        changes = {"emr_connection_id": connection.pk}
        if current.emr_connection_id == connection.pk:
            changes.update(name=item.name[:200], npi=item.npi or current.npi)
        if any(getattr(current, k) != v for k, v in changes.items()):
            for key, value in changes.items():
                setattr(current, key, value)
            to_update.append(current)
            counts["providers_updated"] += 1
    Resource.objects.bulk_create(to_create)
    if to_update:
        Resource.objects.bulk_update(to_update, ["ehr_id", "emr_connection", "name", "npi", "updated_at"])
    counts["providers_created"] += len(to_create)
    return {r.ehr_id: r for r in Resource.objects.filter(emr_connection=connection, ehr_id__in=list(by_id))}


def shifts_replace(*, resource: Resource, shifts: list[dict]) -> int:
    """Replace all of a provider's shifts (and their visit-type rules).

    Each shift: ``day_of_week`` (0 = Sunday), ``start_time``, ``end_time``, ``location``,
    ``valid_from``, ``valid_until``, ``recur_every_weeks``, ``rules`` (``start_time``, ``end_time``,
    ``total_visits``, ``visit_type_id``, ``visit_type_desc``). The caller holds the transaction and
    invalidates availability. A rule without a description takes the organization's description
    of its code."""
    visit_type_descriptions_fill(
        organization_id=resource.organization_id,
        rules=[rule for shift in shifts for rule in shift.get("rules", ())],
        connection_id=resource.emr_connection_id,
    )
    Shift.objects.filter(resource=resource).delete()
    rows = [
        Shift(
            organization_id=resource.organization_id,
            resource=resource,
            location=shift.get("location"),
            day_of_week=shift["day_of_week"],
            start_time=shift["start_time"],
            end_time=shift["end_time"],
            valid_from=shift.get("valid_from"),
            valid_until=shift.get("valid_until"),
            recur_every_weeks=shift.get("recur_every_weeks") or 1,
        )
        for shift in shifts
    ]
    created = Shift.objects.bulk_create(rows)
    rules = [
        VisitTypeRule(
            organization_id=resource.organization_id,
            shift=row,
            start_time=rule["start_time"],
            end_time=rule["end_time"],
            total_visits=rule["total_visits"],
            visit_type_id=rule["visit_type_id"],
            visit_type_desc=rule.get("visit_type_desc", ""),
        )
        for row, shift in zip(created, shifts, strict=False)
        for rule in shift.get("rules", ())
    ]
    VisitTypeRule.objects.bulk_create(rules)
    return len(created)


def providers_sync(*, connection: EmrConnection, today: date | None = None) -> dict:
    """Read practitioners, locations and schedules from the EMR and store them (see the module
    docstring). Raises ``AdapterError``; returns counts."""
    zone = ZoneInfo(connection.timezone)
    today = today or timezone.now().astimezone(zone).date()
    with connection_adapter(connection=connection) as adapter:
        emr_locations = adapter.locations()
        emr_providers = adapter.providers(horizon_start=today, horizon_days=settings.EMR_SCHEDULE_HORIZON_DAYS)
        stats = adapter.stats
    counts = {
        "providers": len(emr_providers),
        "locations": len(emr_locations),
        "providers_created": 0,
        "providers_updated": 0,
        "providers_linked": 0,
        "locations_created": 0,
        "locations_updated": 0,
        "shifts": 0,
        "visit_types_created": 0,
        "providers_with_local_hours": 0,
    }
    with transaction.atomic():
        locations = _locations_upsert(connection=connection, items=emr_locations, counts=counts)
        resources = _providers_upsert(connection=connection, items=emr_providers, counts=counts)
        unknown_locations = {
            shift.location_ehr_id: ""
            for provider in emr_providers
            for shift in provider.shifts
            if shift.location_ehr_id and shift.location_ehr_id not in locations
        }
        locations.update(ehr_references_resolve(model=Location, connection=connection, names=unknown_locations))
        seen_types = {
            rule.visit_type_code: (rule.visit_type_display, _rule_minutes(rule.start_time, rule.end_time, rule.total_visits))
            for provider in emr_providers
            for shift in provider.shifts
            for rule in shift.rules
        }
        tally = StoreResult()
        visit_types_resolve(connection=connection, seen=seen_types, result=tally)
        counts["visit_types_created"] = tally.visit_types_created

        local = set(LocalHours.objects.filter(resource__in=list(resources.values())).values_list("resource_id", flat=True))
        for provider in emr_providers:
            resource = resources.get(provider.ehr_id)
            if resource is None or not provider.has_schedule:
                continue
            if resource.pk in local:
                counts["providers_with_local_hours"] += 1
                continue
            if provider.timezone and resource.timezone != provider.timezone:
                Resource.objects.filter(pk=resource.pk).update(timezone=provider.timezone, updated_at=timezone.now())
            counts["shifts"] += shifts_replace(
                resource=resource,
                shifts=[
                    {
                        "day_of_week": _weekday_sunday0(shift.weekday),
                        "start_time": shift.start_time,
                        "end_time": shift.end_time,
                        "location": locations.get(shift.location_ehr_id) if shift.location_ehr_id else None,
                        "valid_from": shift.valid_from,
                        "valid_until": shift.valid_until,
                        "recur_every_weeks": shift.every_weeks,
                        "rules": [
                            {
                                "start_time": rule.start_time,
                                "end_time": rule.end_time,
                                "total_visits": rule.total_visits,
                                "visit_type_id": rule.visit_type_code,
                                "visit_type_desc": rule.visit_type_display,
                            }
                            for rule in shift.rules
                        ],
                    }
                    for shift in provider.shifts
                ],
            )
        EmrConnection.objects.filter(pk=connection.pk).update(last_synced_at=timezone.now())
        availability_invalidate(organization_id=connection.organization_id)
    counts["requests"] = stats.requests
    return counts


# --- /v1/ management -------------------------------------------------------------------------


def provider_update(*, resource: Resource, data: dict) -> Resource:
    """``PATCH /v1/providers``: ``status``, ``hide_in_availability`` and ``hours`` (already
    validated: a list of shifts as ``shifts_replace`` takes them). Setting hours marks them as
    managed here, so the EMR sync keeps them."""
    with transaction.atomic():
        fields = []
        for key in ("status", "hide_in_availability"):
            if key in data:
                setattr(resource, key, data[key])
                fields.append(key)
        if fields:
            resource.save(update_fields=[*fields, "updated_at"])
        if "hours" in data:
            shifts_replace(resource=resource, shifts=data["hours"])
            LocalHours.objects.get_or_create(resource=resource, defaults={"organization_id": resource.organization_id})
        availability_invalidate(organization_id=resource.organization_id)
    return resource


def location_update(*, location: Location, data: dict) -> Location:
    with transaction.atomic():
        if "status" in data:
            location.status = data["status"]
            location.save(update_fields=["status", "updated_at"])
        availability_invalidate(organization_id=location.organization_id)
    return location

