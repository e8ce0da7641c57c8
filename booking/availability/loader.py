"""Rows → engine inputs, set-based.

``availability_inputs_load`` reads everything the engine needs in a fixed number of queries
(``LOADER_QUERIES``), whatever the number of resources and days: one per kind of row, each
filtered to the candidate resources and to the engine's horizon around the request window.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import CharField, F, FloatField, Func, OuterRef, Q, Subquery
from django.db.models.functions import Cast

from booking.availability import engine, wallclock
from booking.models import (
    ActiveStatus,
    Allocation,
    Appointment,
    AppointmentResource,
    Block,
    ExternalBusy,
    Location,
    RecurringBlock,
    Resource,
    ResourceService,
    Service,
    Shift,
)
from booking.selectors import resource_first_location_zone, resource_zone
from booking.validators import parse_wall_time
from tenants.models import Organization

LOADER_QUERIES = 7  # resources, shifts, allocations, blocks, recurring blocks, appointments, external busy


class Epoch(Func):
    """An instant as seconds since the epoch, computed by the database: thousands of appointment
    times then cost no datetime parsing (the engine accepts epoch seconds). SQLite's value is
    rounded to the millisecond its ``julianday`` keeps."""

    output_field = FloatField()

    def as_sql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template="EXTRACT(EPOCH FROM %(expressions)s)::float8", **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(
            compiler, connection, template="ROUND((julianday(%(expressions)s) - 2440587.5) * 86400.0, 3)", **extra
        )


def _text(field: str) -> Cast:
    """A UUID column as text, without building a ``uuid.UUID`` per row (SQLite stores 32 hex
    digits, PostgreSQL answers the dashed form; ``uuid_text`` reads both)."""
    return Cast(F(field), output_field=CharField())


def uuid_text(raw: str) -> str:
    if len(raw) == 32:
        return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
    return raw


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
    location_input = location_in(location)
    service_input = service_in(service)
    if not rows:
        return engine.Inputs(location=location_input, service=service_input, resources=(), query=query)

    ids = [row.id for row in rows]
    zone_of = {row.id: row.zone for row in rows}
    start, end = engine.load_horizon(query)
    first_date, last_date = (start - timedelta(days=1)).date(), (end + timedelta(days=1)).date()
    at_location = Q(location__isnull=True) | Q(location=location)

    shifts = defaultdict(list)
    for resource_id, dow, s, e, valid_from, valid_until, every, pk in (
        Shift.objects.filter(resource_id__in=ids)
        .filter(at_location)
        .exclude(valid_until__lt=first_date)
        .exclude(valid_from__gt=last_date)
        .values_list("resource_id", "day_of_week", "start_time", "end_time", "valid_from", "valid_until", "recur_every_weeks", "pk")
    ):
        shifts[str(resource_id)].append(wallclock.WeeklyWindow(dow, s, e, valid_from, valid_until, every, str(pk)))

    allocations = defaultdict(list)
    for resource_id, s, e, pk in (
        Allocation.objects.filter(resource_id__in=ids, start__lt=end, end__gt=start)
        .filter(at_location)
        .values_list(_text("resource_id"), Epoch("start"), Epoch("end"), _text("pk"))
    ):
        allocations[uuid_text(resource_id)].append(engine.Span(s, e, uuid_text(pk)))

    own_blocks = defaultdict(list)
    shared_blocks = []
    for resource_id, s, e, pk in (
        Block.objects.filter(organization=organization, start__lt=end, end__gt=start)
        .filter(Q(resource_id__in=ids) | Q(location=location) | Q(service=service))
        .values_list(_text("resource_id"), Epoch("start"), Epoch("end"), _text("pk"))
    ):
        span = engine.Span(s, e, uuid_text(pk))
        if resource_id is None:
            shared_blocks.append(span)
        else:
            own_blocks[uuid_text(resource_id)].append(span)

    own_recurring = defaultdict(list)
    shared_recurring = []
    for row in (
        RecurringBlock.objects.filter(organization=organization, start_date__lte=last_date)
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=first_date))
        .filter(Q(resource_id__in=ids) | Q(location=location) | Q(service=service))
        .values_list(
            "resource_id", "frequency", "interval", "start_date", "end_date", "start_time", "end_time",
            "timezone", "weekdays", "month_day", "pk",
        )
    ):
        resource_id, frequency, interval, start_date, end_date, s, e, zone, weekdays, month_day, pk = row
        # Its own zone, else its scope entity's: the resource's, or the location's (a service has
        # none, so a service-scoped block is read in the zone of the location asked about).
        zone = zone or (zone_of[str(resource_id)] if resource_id is not None else location.timezone)
        rule = wallclock.RecurringRule(
            frequency=frequency, start_date=start_date, start=s, end=e, zone=zone, interval=interval,
            end_date=end_date, weekdays=tuple(weekdays or ()), month_day=month_day, ref=str(pk),
        )
        if resource_id is None:
            shared_recurring.append(rule)
        else:
            own_recurring[str(resource_id)].append(rule)

    appointments = defaultdict(list)
    live = Q(appointment__status__in=(Appointment.Status.BOOKED, Appointment.Status.RESERVED)) | Q(
        appointment__status=Appointment.Status.HOLD
    ) & (Q(appointment__expires_at__isnull=True) | Q(appointment__expires_at__gt=query.now))
    # Only a resource whose working windows can chain across midnight needs its appointments from
    # as far back as rule 7's grid can reach (``engine.load_horizon_near``).
    chaining = [rid for rid in ids if rid in allocations or any(w.end == wallclock.MIDNIGHT for w in shifts[rid])]
    reach = Q(appointment__end__gt=engine.load_horizon_near(query) - engine.MAX_PADDING)
    if chaining:
        reach |= Q(resource_id__in=chaining, appointment__end__gt=start - engine.MAX_PADDING)
    links = AppointmentResource.objects.filter(
        resource_id__in=ids,
        appointment__organization=organization,
        appointment__start__lt=end,
    ).filter(reach).filter(live)
    if exclude_appointment_id is not None:
        links = links.exclude(appointment_id=exclude_appointment_id)
    for resource_id, pk, s, e, status, expires_at, padding in links.values_list(
        _text("resource_id"), _text("appointment_id"), Epoch("appointment__start"), Epoch("appointment__end"),
        "appointment__status", Epoch("appointment__expires_at"), "appointment__service__padding",
    ):
        appointments[uuid_text(resource_id)].append(engine.Booked(uuid_text(pk), s, e, status, padding or 0, expires_at))

    busy = defaultdict(list)
    for resource_id, calendar_id, s, e in ExternalBusy.objects.filter(
        resource_id__in=ids, start__lt=end, end__gt=start
    ).values_list(_text("resource_id"), _text("calendar_id"), Epoch("start"), Epoch("end")):
        busy[uuid_text(resource_id)].append(engine.Span(s, e, uuid_text(calendar_id)))

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
        location=location_input,
        service=service_input,
        resources=resources,
        query=query,
        blocks=tuple(shared_blocks),
        recurring_blocks=tuple(shared_recurring),
    )

