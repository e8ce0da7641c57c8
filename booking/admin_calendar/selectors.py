"""What a calendar shows, read in a fixed number of queries and positioned by local time.

A calendar is a list of days; each day has one *lane* per (resource, location) pair: the
resources linked at a location (the location's calendar), or the locations a resource is linked
at (the resource's calendar). A lane holds the working hours that apply there (shifts,
allocations), the location's opening hours, blocks and recurring blocks, external busy times, the
resource's appointments, and, for a chosen service, the starts ``GET /v3/availability`` lists
(``availability_answer``, the same call, with its cache), so the calendar never disagrees with the
API. Wall-clock data is expanded by ``booking.availability.wallclock``, as the engine does.

Times are shown in the wall-clock time of the place (``admin.md`` "Time"): the axis in the
calendar's zone, each item's label in its own zone (an appointment's or block's location, a
resource-scoped block's resource), with the zone named.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Q
from django.http import QueryDict
from django.urls import reverse
from rest_framework.exceptions import ValidationError

from booking.availability import wallclock
from booking.availability.selectors import availability_answer
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

DEFAULT_AXIS = (8 * 60, 18 * 60)  # minutes of the local day shown when nothing is scheduled


# --------------------------------------------------------------------------------------------
# Local time
# --------------------------------------------------------------------------------------------


def local(seconds: int, zone: str) -> datetime:
    return wallclock.instant(int(seconds), zone)


def clock(seconds: int, zone: str) -> str:
    """``14:20 EST``."""
    moment = local(seconds, zone)
    return f"{moment:%H:%M} {moment.tzname()}"


def clock_range(start: int, end: int, zone: str) -> str:
    """``09:00–09:20 EST``; across days ``Mon Dec 7 00:00 – Sat Dec 12 00:00 EST``."""
    a, b = local(start, zone), local(end, zone)
    if b.date() == a.date() or (b.date() == a.date() + timedelta(days=1) and b.time() == time(0)):
        tail = f"{b:%H:%M}" if b.date() == a.date() else "24:00"
        name = a.tzname() if a.tzname() == b.tzname() else f"{a.tzname()}/{b.tzname()}"
        return f"{a:%H:%M}–{tail} {name}"
    return f"{a:%a %b} {a.day} {a:%H:%M} – {b:%a %b} {b.day} {b:%H:%M} {b.tzname()}"


def week_monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def local_today(zone: str, now: datetime) -> date:
    return now.astimezone(wallclock.zone_get(zone)).date()


def day_bounds(zone: str, day: date) -> tuple[int, int]:
    """``[00:00, 24:00)`` of a local day (23 or 25 hours across a DST change)."""
    return wallclock.wall_to_epoch(zone, day, time(0), False), wallclock.wall_to_epoch(zone, day, time(0), True)


# --------------------------------------------------------------------------------------------
# The shape of a calendar
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppointmentRow:
    """What a calendar shows of an appointment (read as plain values: hundreds a week)."""

    pk: str
    status: str
    status_text: str
    source: str
    source_text: str
    person: str
    service_id: str | None
    service_name: str
    location_id: str | None
    location_name: str


@dataclass
class Item:
    """One thing on a lane: ``kind`` is hours | open | block | busy | appointment."""

    kind: str
    start: int
    end: int
    label: str  # its local times, zone named
    text: str  # what it is
    url: str
    css: str = ""
    appointment: AppointmentRow | None = None
    left: float = 0.0
    width: float = 0.0


@dataclass
class Start:
    """A bookable start the engine lists (a ``GET /v3/availability`` time)."""

    at: int
    end: int
    iso: str  # as ``/v3/`` renders it, in the calendar's zone
    resource_ids: tuple[str, ...]
    location_id: str
    label: str = ""
    left: float = 0.0


@dataclass
class Lane:
    resource: Resource
    location: Location
    zone: str  # the resource's effective zone
    offers_service: bool = False
    items: list[Item] = field(default_factory=list)
    starts: list[Start] = field(default_factory=list)


@dataclass
class DayLane:
    lane: Lane
    background: list[Item]
    items: list[Item]
    starts: list[Start]
    explain_url: str = ""


@dataclass
class Day:
    date: date
    lo: int
    hi: int
    ticks: list[tuple[float, str]]
    lanes: list[DayLane]
    appointments: list[Item]
    is_today: bool = False


@dataclass
class Calendar:
    zone: str
    zone_names: str  # "EST" or "EDT/EST" across a change
    first_day: date
    days: list[Day]
    service: Service | None
    lanes: list[Lane]
    error: str = ""
    starts_count: int = 0


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def location_resources(*, location: Location) -> list[Resource]:
    """The resources linked at the location (any service), by name, with their effective zone."""
    ids = ResourceService.objects.filter(location=location).values("resource_id")
    return list(
        Resource.objects.filter(organization_id=location.organization_id, pk__in=ids)
        .annotate(first_zone=resource_first_location_zone())
        .order_by("name", "id")
    )


def resource_locations(*, resource: Resource) -> list[Location]:
    ids = ResourceService.objects.filter(resource=resource).values("location_id")
    return list(Location.objects.filter(organization_id=resource.organization_id, pk__in=ids).order_by("name", "id"))


def effective_zone(resource: Resource, organization: Organization) -> str:
    first = getattr(resource, "first_zone", None)
    if first is None and not resource.timezone:
        first = (
            ResourceService.objects.filter(resource=resource).order_by("created_at", "id")
            .values_list("location__timezone", flat=True).first()
        )
    return resource_zone(own=resource.timezone, first_location=first, organization_zone=organization.timezone)


def services_at_location(*, location: Location) -> list[Service]:
    ids = ResourceService.objects.filter(location=location).values("service_id")
    return list(Service.objects.filter(organization_id=location.organization_id, pk__in=ids).order_by("name", "id"))


def services_of_resource(*, resource: Resource, location: Location | None = None) -> list[Service]:
    links = ResourceService.objects.filter(resource=resource)
    if location is not None:
        links = links.filter(location=location)
    return list(
        Service.objects.filter(organization_id=resource.organization_id, pk__in=links.values("service_id")).order_by("name", "id")
    )


def _admin_url_maker(name: str):
    """``pk -> its admin change page`` (one ``reverse`` per model, not per object)."""
    template = reverse(f"admin:booking_{name}_change", args=["__pk__"])
    return lambda pk: template.replace("__pk__", str(pk))


def _admin_url(name: str, pk) -> str:
    return _admin_url_maker(name)(pk)


def availability_starts(
    *, organization: Organization, location: Location, service: Service, first_day: date, last_day: date, zone: str,
    resource_ids: list[str] | None = None, linked_ids: list[str] | None = None,
) -> list[Start]:
    """The starts ``GET /v3/availability`` lists for the service at the location over those local
    days, asked exactly as the API is asked (the same parser, the same selector). Each start names
    every resource that can take it (``roundRobin=NONE``), so each lane shows its own; a
    ``COMBINED`` service is asked for all its resources together (a start lists them all)."""
    query = QueryDict(mutable=True)
    query.update({
        "LocationId": str(location.pk), "ServiceId": str(service.pk), "startDate": first_day.isoformat(),
        "endDate": last_day.isoformat(), "timezone": zone,
    })
    if service.round_robin == "COMBINED":
        for rid in resource_ids or linked_ids or []:
            query.appendlist("ResourceIds", rid)
    else:
        query["roundRobin"] = "NONE"
        for rid in resource_ids or []:
            query.appendlist("ResourceIds", rid)
    return starts_from_query(organization=organization, query=query)


def starts_from_query(*, organization: Organization, query: QueryDict) -> list[Start]:
    from booking.api.availability import availability_query_parse
    from tenants.errors import DomainError

    try:
        params = availability_query_parse(query)
    except ValidationError:
        raise
    except DomainError as exc:
        raise ValidationError({"query": [str(exc)]}) from None
    body = json.loads(availability_answer(organization=organization, params=params).body)
    return [
        Start(
            at=int(datetime.fromisoformat(t["start_time"]).timestamp()),
            end=int(datetime.fromisoformat(t["end_time"]).timestamp()),
            iso=t["start_time"],
            resource_ids=tuple(t["ResourceIds"]),
            location_id=t["LocationId"],
        )
        for t in body["availableTimes"]
    ]


def _linked_pairs(resources: list[Resource], locations: list[Location], service: Service | None) -> set[tuple[str, str]]:
    if service is None:
        return set()
    return {
        (str(r), str(loc))
        for r, loc in ResourceService.objects.filter(
            service=service, resource__in=resources, location__in=locations
        ).values_list("resource_id", "location_id")
    }


def calendar_build(
    *,
    organization: Organization,
    lanes: list[Lane],
    zone: str,
    first_day: date,
    days: int,
    service: Service | None,
    now: datetime,
    resource_calendar: bool = False,
) -> Calendar:
    """Fill ``lanes`` for ``days`` local days from ``first_day`` in ``zone`` and lay them out."""
    last_day = first_day + timedelta(days=days - 1)
    lo, hi = day_bounds(zone, first_day)[0], day_bounds(zone, last_day)[1]
    resources = list({lane.resource.pk: lane.resource for lane in lanes}.values())
    locations = list({lane.location.pk: lane.location for lane in lanes}.values())
    resource_ids = [r.pk for r in resources]
    location_ids = [loc.pk for loc in locations]
    lanes_of_resource: dict[str, list[Lane]] = defaultdict(list)
    lanes_of_location: dict[str, list[Lane]] = defaultdict(list)
    for lane in lanes:
        lanes_of_resource[str(lane.resource.pk)].append(lane)
        lanes_of_location[str(lane.location.pk)].append(lane)
    zone_of = {str(lane.resource.pk): lane.zone for lane in lanes}
    location_of = {str(loc.pk): loc for loc in locations}
    # Wall-clock data is expanded a day beyond the window on each side (zones differ).
    first_wide, last_wide = first_day - timedelta(days=1), last_day + timedelta(days=1)

    def add(lanes_: list[Lane], item: Item, location_id=None) -> None:
        for lane in lanes_:
            if location_id is None or str(lane.location.pk) == str(location_id):
                lane.items.append(item)

    location_rows = {
        pk: (name, tz) for pk, name, tz in Location.objects.filter(organization=organization).values_list("pk", "name", "timezone")
    }
    shift_url = _admin_url_maker("shift")

    # Working hours: shifts (weekly, in the resource's zone) and single allocations.
    for shift in Shift.objects.filter(resource_id__in=resource_ids).exclude(valid_until__lt=first_wide).exclude(
        valid_from__gt=last_wide
    ):
        rid = str(shift.resource_id)
        window = wallclock.WeeklyWindow(
            shift.day_of_week, shift.start_time, shift.end_time, shift.valid_from, shift.valid_until,
            shift.recur_every_weeks, str(shift.pk),
        )
        for s, e, _ in wallclock.weekly_windows_expand([window], zone_of[rid], first_wide, last_wide):
            if e > lo and s < hi:
                item = Item("hours", s, e, clock_range(s, e, zone_of[rid]), "Shift", shift_url(shift.pk), "hours")
                add(lanes_of_resource[rid], item, shift.location_id)
    for allocation in Allocation.objects.filter(resource_id__in=resource_ids, start__lt=_dt(hi), end__gt=_dt(lo)):
        rid = str(allocation.resource_id)
        s, e = _epoch(allocation.start), _epoch(allocation.end)
        zone_ = location_rows[allocation.location_id][1] if allocation.location_id else zone_of[rid]
        item = Item("hours", s, e, clock_range(s, e, zone_), "Allocation", _admin_url("allocation", allocation.pk), "hours allocation")
        add(lanes_of_resource[rid], item, allocation.location_id)
    # The location's opening hours (empty: no restriction, nothing drawn).
    for location in locations:
        windows = [
            wallclock.WeeklyWindow(w["dayOfWeek"], parse_wall_time(w["startTime"]), parse_wall_time(w["endTime"], end=True))
            for w in location.weekly_availability or []
        ]
        url = _admin_url("location", location.pk)
        for s, e, _ in wallclock.weekly_windows_expand(windows, location.timezone, first_wide, last_wide):
            if e > lo and s < hi:
                text = "Open" if location.status == ActiveStatus.ACTIVE else "Open (location inactive)"
                add(lanes_of_location[str(location.pk)], Item("open", s, e, clock_range(s, e, location.timezone), text, url, "open"))

    # Blocks scoped to a resource, a location, or (when one is chosen) the service.
    scope = Q(resource_id__in=resource_ids) | Q(location_id__in=location_ids)
    if service is not None:
        scope |= Q(service=service)
    for block in Block.objects.filter(organization=organization, start__lt=_dt(hi), end__gt=_dt(lo)).filter(scope):
        s, e = _epoch(block.start), _epoch(block.end)
        text = f"Block: {block.reason}" if block.reason else "Block"
        url = _admin_url("block", block.pk)
        if block.resource_id:
            rid = str(block.resource_id)
            add(lanes_of_resource[rid], Item("block", s, e, clock_range(s, e, zone_of[rid]), text, url, "block"))
        elif block.location_id:
            loc = location_of[str(block.location_id)]
            add(lanes_of_location[str(loc.pk)], Item("block", s, e, clock_range(s, e, loc.timezone), text, url, "block"))
        else:
            for lane in lanes:
                lane.items.append(Item("block", s, e, clock_range(s, e, lane.location.timezone), f"{text} ({service})", url, "block"))
    for rule in RecurringBlock.objects.filter(organization=organization, start_date__lte=last_wide).filter(
        Q(end_date__isnull=True) | Q(end_date__gte=first_wide)
    ).filter(scope):
        text = f"Recurring block: {rule.reason}" if rule.reason else "Recurring block"
        url = _admin_url("recurringblock", rule.pk)
        if rule.resource_id:
            targets = [(lane, rule.timezone or zone_of[str(rule.resource_id)]) for lane in lanes_of_resource[str(rule.resource_id)]]
        elif rule.location_id:
            loc = location_of[str(rule.location_id)]
            targets = [(lane, rule.timezone or loc.timezone) for lane in lanes_of_location[str(loc.pk)]]
        else:
            targets = [(lane, rule.timezone or lane.location.timezone) for lane in lanes]
        for lane, rule_zone in targets:
            expanded = wallclock.recurring_rules_expand([_rule(rule, rule_zone)], lo, hi)
            for s, e, _ in expanded:
                lane.items.append(Item("block", s, e, clock_range(s, e, rule_zone), text, url, "block recurring"))

    # External calendars' busy times.
    for busy in ExternalBusy.objects.filter(resource_id__in=resource_ids, start__lt=_dt(hi), end__gt=_dt(lo)).select_related("calendar"):
        rid = str(busy.resource_id)
        s, e = _epoch(busy.start), _epoch(busy.end)
        url = reverse("admin:booking_externalcalendar_change", args=[busy.calendar_id])
        text = f"Busy: {busy.calendar}"
        add(lanes_of_resource[rid], Item("busy", s, e, clock_range(s, e, zone_of[rid]), text, url, "busy"))

    # The resources' appointments, at any location (they occupy the resource wherever they are).
    statuses, sources = dict(Appointment.Status.choices), dict(Appointment.Source.choices)
    service_names = dict(Service.objects.filter(organization=organization).values_list("pk", "name"))
    rows = (
        AppointmentResource.objects.filter(
            resource_id__in=resource_ids, appointment__organization=organization,
            appointment__start__lt=_dt(hi), appointment__end__gt=_dt(lo),
        )
        .order_by("appointment__start", "appointment_id")
        .values_list(
            "resource_id", "appointment_id", "appointment__start", "appointment__end", "appointment__status",
            "appointment__source", "appointment__expires_at", "appointment__patient_name", "appointment__customer_name",
            "appointment__service_id", "appointment__location_id",
        )
    )
    appointment_url = _admin_url_maker("appointment")
    made: dict = {}
    for rid, pk, start, end, status, source, expires_at, patient, customer, service_id, location_id in rows:
        if pk not in made:
            lapsed = status == Appointment.Status.HOLD and expires_at is not None and expires_at <= now
            location_name, location_zone = location_rows.get(location_id, ("", zone))
            row = AppointmentRow(
                pk=str(pk), status=status, status_text=statuses.get(status, status) + (" (lapsed)" if lapsed else ""),
                source=source, source_text=sources.get(source, source), person=patient or customer or "(no name)",
                service_id=str(service_id) if service_id else None, service_name=service_names.get(service_id, ""),
                location_id=str(location_id) if location_id else None, location_name=location_name,
            )
            s_, e_ = _epoch(start), _epoch(end)
            css = f"appointment status-{status} source-{source}" + (" expired" if lapsed else "")
            text = row.person + (f" · {row.service_name}" if row.service_name else "")
            made[pk] = Item("appointment", s_, e_, clock_range(s_, e_, location_zone), text, appointment_url(pk), css, row)
        item = made[pk]
        for lane in lanes_of_resource[str(rid)]:
            if resource_calendar and item.appointment.location_id and item.appointment.location_id != str(lane.location.pk):
                continue  # a resource's calendar shows each appointment on the lane of its location
            lane.items.append(item)

    # The chosen service's bookable starts.
    error = ""
    starts_count = 0
    if service is not None:
        linked = _linked_pairs(resources, locations, service)
        for lane in lanes:
            lane.offers_service = (str(lane.resource.pk), str(lane.location.pk)) in linked
        for location in locations:
            location_lanes = lanes_of_location[str(location.pk)]
            offering = [str(lane.resource.pk) for lane in location_lanes if lane.offers_service]
            if not offering:
                continue
            try:
                starts = availability_starts(
                    organization=organization, location=location, service=service, first_day=first_day,
                    last_day=last_day, zone=zone, resource_ids=offering if resource_calendar else None,
                    linked_ids=offering,
                )
            except ValidationError as exc:
                error = "; ".join(str(m) for messages in exc.detail.values() for m in messages) if isinstance(exc.detail, dict) else str(exc.detail)
                continue
            by_resource = {str(lane.resource.pk): lane for lane in location_lanes}
            for start in starts:
                starts_count += 1
                for rid in start.resource_ids:
                    lane = by_resource.get(rid)
                    if lane is not None:
                        lane.starts.append(start)

    return _layout(lanes, zone, first_day, days, service, now, error, starts_count)


def _rule(rule: RecurringBlock, zone: str) -> wallclock.RecurringRule:
    return wallclock.RecurringRule(
        frequency=rule.frequency, start_date=rule.start_date, start=rule.start_time, end=rule.end_time, zone=zone,
        interval=rule.interval, end_date=rule.end_date, weekdays=tuple(rule.weekdays or ()), month_day=rule.month_day,
        ref=str(rule.pk),
    )


def _epoch(moment: datetime) -> int:
    return wallclock.epoch(moment)


def _dt(seconds: int) -> datetime:
    return wallclock.instant(seconds)


def appointment_person(appointment: Appointment) -> str:
    return appointment.patient_name or appointment.customer_name or "(no name)"


def appointment_title(appointment: Appointment) -> str:
    parts = [appointment_person(appointment)]
    if appointment.service_id:
        parts.append(appointment.service.name)
    return " · ".join(parts)


def appointment_css(appointment: Appointment, now: datetime) -> str:
    css = f"appointment status-{appointment.status} source-{appointment.source}"
    if appointment.status == Appointment.Status.HOLD and appointment.expires_at and appointment.expires_at <= now:
        css += " expired"
    return css


def appointment_status_text(appointment: Appointment, now: datetime) -> str:
    text = appointment.get_status_display()
    if appointment.status == Appointment.Status.HOLD and appointment.expires_at and appointment.expires_at <= now:
        text += " (lapsed)"
    return text


# --------------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------------


def _wall_minutes(seconds: int, zone: str, day_start: int) -> int:
    moment = local(seconds, zone)
    return moment.hour * 60 + moment.minute if seconds - day_start < 86400 else 1440


def _axis(lanes: list[Lane], zone: str, first_day: date, days: int) -> tuple[int, int]:
    """The part of the local day shown: from the earliest hour anything but a block or busy time
    starts to the latest it ends, over the whole range (whole hours; 08:00–18:00 when empty)."""
    lows, highs = [], []
    bounds = [day_bounds(zone, first_day + timedelta(days=i)) for i in range(days)]
    for lane in lanes:
        things = [(i.start, i.end) for i in lane.items if i.kind not in ("block", "busy")]
        things += [(s.at, s.end) for s in lane.starts]
        for day_lo, day_hi in bounds:
            inside = [(max(s, day_lo), e) for s, e in things if e > day_lo and s < day_hi]
            if not inside:
                continue
            if day_hi - day_lo != 86400:
                # A DST change: the wall clock is not monotonic in the instant, so every one counts.
                picked = inside
            else:
                # Otherwise the earliest start and the latest end give the extremes of the day.
                picked = [(min(s for s, _ in inside), max(e for _, e in inside))]
            for s, e in picked:
                lows.append(_wall_minutes(s, zone, day_lo))
                highs.append(1440 if e >= day_hi else _wall_minutes(e, zone, day_lo))
    if not lows:
        return DEFAULT_AXIS
    low, high = min(lows) // 60 * 60, min(1440, -(-max(highs) // 60) * 60)
    if high - low < 120:
        low, high = max(0, low - 60), min(1440, high + 60)
    return low, high


def _wall(minutes: int) -> time:
    return time(0) if minutes >= 1440 else time(minutes // 60, minutes % 60)


def _position(item, lo: int, hi: int) -> bool:
    start, end = (item.at, item.end) if isinstance(item, Start) else (item.start, item.end)
    if end <= lo or start >= hi:
        return False
    span = hi - lo
    item.left = (max(start, lo) - lo) * 100 / span  # rendered with two decimals
    if not isinstance(item, Start):
        item.width = max((min(end, hi) - max(start, lo)) * 100 / span, 0.4)
    return True


def _layout(
    lanes: list[Lane], zone: str, first_day: date, days: int, service: Service | None, now: datetime, error: str,
    starts_count: int,
) -> Calendar:
    axis_lo, axis_hi = _axis(lanes, zone, first_day, days)
    today = local_today(zone, now)
    names = []
    out_days = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        day_lo, day_hi = day_bounds(zone, day)
        lo = wallclock.wall_to_epoch(zone, day, _wall(axis_lo), False)
        hi = wallclock.wall_to_epoch(zone, day, _wall(axis_hi), True)
        for moment in (lo, hi - 1):
            name = local(moment, zone).tzname()
            if name not in names:
                names.append(name)
        ticks = []
        for minutes in range(axis_lo, axis_hi + 1, 60):
            at = wallclock.wall_to_epoch(zone, day, _wall(minutes), minutes >= 1440)
            if lo <= at <= hi:
                ticks.append((round((at - lo) * 100 / (hi - lo), 3), "24:00" if minutes >= 1440 else f"{minutes // 60:02d}:00"))
        day_lanes, agenda, seen = [], [], {}
        for lane in lanes:
            background, items, starts = [], [], []
            for item in lane.items:
                if item.kind in ("hours", "open"):
                    positioned = _positioned(item, lo, hi)
                    if positioned is not None:
                        background.append(positioned)
                elif item.end > day_lo and item.start < day_hi:
                    positioned = _positioned(item, lo, hi)
                    if positioned is not None:
                        items.append(positioned)
                    if item.kind == "appointment" and item.start >= day_lo:
                        if item.appointment.pk not in seen:
                            entry = seen[item.appointment.pk] = _copy(item)
                            entry.resource_names = []
                            agenda.append(entry)
                        seen[item.appointment.pk].resource_names.append(lane.resource.name)
            for start in lane.starts:
                if day_lo <= start.at < day_hi:
                    copy = Start(start.at, start.end, start.iso, start.resource_ids, start.location_id,
                                 f"{local(start.at, zone):%H:%M}")
                    if _position(copy, lo, hi):
                        starts.append(copy)
            items.sort(key=lambda i: (i.kind != "block", i.start))
            day_lanes.append(DayLane(lane, background, items, starts))
        agenda.sort(key=lambda i: (i.start, i.appointment.pk))
        for entry in agenda:
            entry.resource_names = ", ".join(dict.fromkeys(entry.resource_names))
        out_days.append(Day(day, lo, hi, ticks, day_lanes, agenda, is_today=day == today))
    return Calendar(zone, "/".join(names), first_day, out_days, service, lanes, error, starts_count)


def _copy(item: Item) -> Item:
    return Item(item.kind, item.start, item.end, item.label, item.text, item.url, item.css, item.appointment)


def _positioned(item: Item, lo: int, hi: int) -> Item | None:
    copy = _copy(item)
    return copy if _position(copy, lo, hi) else None
