"""Rows → engine inputs, set-based.

``availability_inputs_load`` reads everything the engine needs in a fixed number of queries
(``LOADER_QUERIES``), whatever the number of resources and days: one per kind of row, each
filtered to the candidate resources and to the engine's horizon around the request window. The
six row kinds are read by the SQL of ``loader_sql`` on one cursor (the ORM's query building cost
more than the rows). ``GET /v3/availability`` reads the location, the service and the resource rows
in one statement too (``request_inputs``); callers holding the model objects use the ORM query
``resource_rows``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import OuterRef, Q, Subquery

from booking.availability import engine, wallclock
from booking.availability.loader_sql import as_date, as_list, as_time, loader_rows, request_rows
from booking.availability.wallclock import RecurringRule, WeeklyWindow
from booking.models import (
    ActiveStatus,
    Location,
    Resource,
    ResourceService,
    Service,
)
from booking.selectors import resource_first_location_zone, resource_zone
from booking.validators import parse_wall_time
from tenants.models import Organization

LOADER_QUERIES = 7  # resources (with the location and service: request_inputs), shifts, allocations, blocks, recurring blocks, appointments, external busy


@dataclass(frozen=True)
class ResourceRow:
    id: str
    name: str
    linked: bool
    zone: str
    capacity: int | None
    active: bool
    hidden: bool


def location_in(location: Location) -> engine.LocationIn:
    return engine.LocationIn(
        id=str(location.pk),
        zone=location.timezone,
        weekly=tuple(weekly_json_windows(location.weekly_availability or [])),
        active=location.status == ActiveStatus.ACTIVE,
    )


def service_in(service: Service) -> engine.ServiceIn:
    return engine.ServiceIn(
        id=str(service.pk),
        duration=service.duration,
        padding=service.padding,
        capacity=service.bookings_per_slot,
        booking_interval=service.booking_interval,
        round_robin=service.round_robin,
        duration_select=service.duration_select,
        duration_min=service.duration_min,
        duration_max=service.duration_max,
        duration_interval=service.duration_interval,
    )


def weekly_json_windows(items: list[dict]) -> list[wallclock.WeeklyWindow]:
    """A location's ``weeklyAvailability`` JSON, as ``booking.validators.validate_weekly_windows``
    accepts it (``HH:MM:SS``; end ``24:00:00`` or ``00:00:00`` = midnight at the end of the day)."""
    return [
        wallclock.WeeklyWindow(
            day_of_week=item["dayOfWeek"],
            start=parse_wall_time(item["startTime"]),
            end=parse_wall_time(item["endTime"], end=True),
        )
        for item in items
    ]


def resource_rows(
    *, organization: Organization, location: Location, service: Service, resource_ids: list | None
) -> list[ResourceRow]:
    """The resources to consider, in answer order (name, id), each with whether it offers the
    service at the location and its effective zone: its own, else the zone of the first location it
    was linked to, else the organization's. ``resource_ids`` None: every linked one. One query."""
    linked = ResourceService.objects.filter(resource=OuterRef("pk"), service=service, location=location)
    qs = Resource.objects.filter(organization=organization)
    qs = qs.filter(pk__in=resource_ids) if resource_ids is not None else qs.filter(Q(pk__in=linked.values("resource")))
    rows = qs.annotate(first_zone=resource_first_location_zone(), linked_id=Subquery(linked.values("id")[:1])).order_by(
        "name", "id"
    )
    return [
        ResourceRow(
            id=str(pk),
            name=name,
            linked=link is not None,
            zone=resource_zone(own=own_zone, first_location=first, organization_zone=organization.timezone),
            capacity=capacity,
            active=status == ActiveStatus.ACTIVE,
            hidden=hidden,
        )
        for pk, name, own_zone, first, link, capacity, status, hidden in rows.values_list(
            "pk", "name", "timezone", "first_zone", "linked_id", "bookings_per_slot", "status", "hide_in_availability"
        )
    ]


def request_inputs(
    *, organization: Organization, location_id, service_id, resource_ids: list | None
) -> tuple[engine.LocationIn | None, engine.ServiceIn | None, list[ResourceRow]]:
    """The request's location and service as the engine reads them (None when the organization has
    no such one) and ``resource_rows``' rows, from one statement (``loader_sql.request_rows``)."""
    read = request_rows(
        organization_id=organization.pk, location_id=location_id, service_id=service_id, resource_ids=resource_ids
    )
    location = service = None
    if read.location is not None:
        pk, zone, weekly, status = read.location
        location = engine.LocationIn(
            id=pk, zone=zone, weekly=tuple(weekly_json_windows(as_list(weekly))), active=status == ActiveStatus.ACTIVE
        )
    if read.service is not None:
        pk, duration, padding, capacity, interval, round_robin, select, low, high, step = read.service
        service = engine.ServiceIn(
            id=pk, duration=duration, padding=padding, capacity=capacity, booking_interval=interval,
            round_robin=round_robin, duration_select=bool(select), duration_min=low, duration_max=high,
            duration_interval=step,
        )
    rows = [
        ResourceRow(
            id=pk,
            name=name,
            linked=bool(linked),
            zone=resource_zone(own=own_zone, first_location=first, organization_zone=read.organization_zone),
            capacity=capacity,
            active=status == ActiveStatus.ACTIVE,
            hidden=bool(hidden),
        )
        for pk, name, own_zone, capacity, status, hidden, first, linked in read.resources
    ]
    return location, service, rows


def availability_inputs_load(
    *,
    organization: Organization,
    location: Location,
    service: Service,
    query: engine.Query,
    resource_ids: list | None = None,
    exclude_appointment_id=None,
    rows: list[ResourceRow] | None = None,
) -> engine.Inputs:
    """Everything the engine needs for ``query``: the location, the service, the resources
    (``resource_ids``, else every resource linked to the service at the location) with their
    shifts, allocations, blocks, recurring blocks, active appointments and external busy times,
    plus the blocks scoped to the location or the service.

    ``rows`` (from ``resource_rows``) saves the first query when the caller already has them.
    ``exclude_appointment_id`` leaves one appointment out (rescheduling it frees its old time).
    """
    if rows is None:
        rows = resource_rows(organization=organization, location=location, service=service, resource_ids=resource_ids)
    return inputs_load(
        organization_id=organization.pk, location=location_in(location), service=service_in(service), query=query,
        rows=rows, exclude_appointment_id=exclude_appointment_id,
    )


def inputs_load(
    *, organization_id, location: engine.LocationIn, service: engine.ServiceIn, query: engine.Query,
    rows: list[ResourceRow], exclude_appointment_id=None,
) -> engine.Inputs:
    """``availability_inputs_load`` from the engine's view of the location and the service
    (``request_inputs``), for the organization's ``rows``."""
    if not rows:
        return engine.Inputs(location=location, service=service, resources=(), query=query)

    ids = [row.id for row in rows]
    zone_of = {row.id: row.zone for row in rows}
    start, end = engine.load_horizon(query)
    first_date, last_date = (start - timedelta(days=1)).date(), (end + timedelta(days=1)).date()

    rows_by_kind = loader_rows(
        organization_id=organization_id, location_id=location.id, service_id=service.id, ids=ids, start=start, end=end,
        first_date=first_date, last_date=last_date, now=query.now,
        near=engine.load_horizon_near(query) - engine.MAX_PADDING, far=start - engine.MAX_PADDING,
        exclude_appointment_id=exclude_appointment_id,
    )
    # Ids arrive as text (``loader_sql``); each row kind is grouped by its resource.
    shifts = defaultdict(list)
    for resource_id, dow, s, e, valid_from, valid_until, every, pk in rows_by_kind["shifts"]:
        shifts[resource_id].append(
            WeeklyWindow(dow, as_time(s), as_time(e), as_date(valid_from), as_date(valid_until), every, pk)
        )
    allocations = defaultdict(list)
    for resource_id, s, e, pk in rows_by_kind["allocations"]:
        allocations[resource_id].append(engine.Span(s, e, pk))
    own_blocks = defaultdict(list)
    shared_blocks = []
    for resource_id, s, e, pk in rows_by_kind["blocks"]:
        span = engine.Span(s, e, pk)
        if resource_id is None:
            shared_blocks.append(span)
        else:
            own_blocks[resource_id].append(span)
    own_recurring = defaultdict(list)
    shared_recurring = []
    for row in rows_by_kind["recurring"]:
        resource_id, frequency, interval, start_date, end_date, s, e, zone, weekdays, month_day, pk = row
        # Its own zone, else its scope entity's: the resource's, or the location's (a service has
        # none, so a service-scoped block is read in the zone of the location asked about).
        zone = zone or (zone_of[resource_id] if resource_id is not None else location.zone)
        rule = RecurringRule(
            frequency=frequency, start_date=as_date(start_date), start=as_time(s), end=as_time(e), zone=zone,
            interval=interval, end_date=as_date(end_date), weekdays=tuple(as_list(weekdays)), month_day=month_day,
            ref=pk,
        )
        if resource_id is None:
            shared_recurring.append(rule)
        else:
            own_recurring[resource_id].append(rule)
    appointments = defaultdict(list)
    booked, make = engine.Booked, tuple.__new__  # ``Booked._make`` without its Python-level call
    for row in rows_by_kind["appointments"]:  # the resource, then the fields of ``Booked``
        appointments[row[0]].append(make(booked, row[1:]))
    busy = defaultdict(list)
    for resource_id, calendar_id, s, e in rows_by_kind["busy"]:
        busy[resource_id].append(engine.Span(s, e, calendar_id))

    resources = tuple(
        engine.ResourceIn(
            id=row.id,
            zone=row.zone,
            capacity=row.capacity,
            active=row.active,
            hidden=row.hidden,
            linked=row.linked,
            weekly=tuple(shifts[row.id]),
            allocations=tuple(allocations[row.id]),
            blocks=tuple(own_blocks[row.id]),
            recurring_blocks=tuple(own_recurring[row.id]),
            appointments=tuple(appointments[row.id]),
            external_busy=tuple(busy[row.id]),
        )
        for row in rows
    )
    return engine.Inputs(
        location=location,
        service=service,
        resources=resources,
        query=query,
        blocks=tuple(shared_blocks),
        recurring_blocks=tuple(shared_recurring),
    )
