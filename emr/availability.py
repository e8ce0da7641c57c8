"""Reads for ``GET /v1/availability`` and the live availability fetch: rows → the pure
calculation (``booking.availability.calculation``) → windows.

``availability_compute`` is the one code path of both: the GET calls it on the cache, the live
fetch's job calls it after writing what the EMR answered into that same cache.

What it reads, in a fixed number of queries whatever the range (5):

- the providers the connection sees (``emr.selectors.providers_visible``'s rule), active and not
  hidden, narrowed by ``provider_ids`` (EHR ids), each with its zone (``resource_zone``: its own,
  else its first linked location's, else the organization's — the zone its hours are read in
  everywhere);
- their shifts (with the facility) and the shifts' visit-type rules;
- the appointments occupying them: the same rows (``AppointmentResource`` links of BK/RS
  appointments and unexpired holds) that block ``/v3/`` availability. With
  ``provider_type=primary`` an appointment counts for its primary provider (a ``/v3/`` booking,
  which has no EMR roles, for every resource it occupies); with ``secondary``, for its secondary
  provider. Its visit type is the EMR's code, or the booked service's ``visit_type``; its
  facility is its location.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import CharField, F, FloatField, Func, Q
from django.db.models.functions import Cast
from django.utils import timezone

from booking.availability import calculation as calc
from booking.availability.loader_sql import uuid_text
from booking.availability.wallclock import WeeklyWindow
from booking.models import ActiveStatus, Appointment, AppointmentResource, Resource, Shift, VisitTypeRule
from booking.selectors import resource_first_location_zone, resource_zone
from booking.validators import parse_wall_time
from emr.models import EmrConnection

PRIMARY, SECONDARY = "primary", "secondary"
AVAILABILITY_QUERIES = 5


class Epoch(Func):
    """An instant as seconds since the epoch, computed by the database (no datetime per row).
    SQLite's value is rounded to the millisecond its ``julianday`` keeps."""

    output_field = FloatField()

    def as_sql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template="EXTRACT(EPOCH FROM %(expressions)s)::float8", **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(
            compiler, connection, template="ROUND((julianday(%(expressions)s) - 2440587.5) * 86400.0, 3)", **extra
        )


def _text(field: str) -> Cast:
    """A UUID column as text (``uuid_text`` reads SQLite's and PostgreSQL's forms)."""
    return Cast(F(field), output_field=CharField())


@dataclass(frozen=True)
class AvailabilityRequest:
    """A validated ``GET /v1/availability`` query or live-fetch body (also a job's ``params``)."""

    first: date  # local dates, in each provider's zone
    last: date
    clip_start: datetime | None = None  # date-time bounds: the instants the answer is cut to
    clip_end: datetime | None = None
    provider_ids: tuple[str, ...] | None = None  # EHR ids; None: every provider
    provider_type: str = PRIMARY
    options: calc.Options = field(default_factory=calc.Options)

    def params(self) -> dict:
        o = self.options
        return {
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "clip_start": self.clip_start.isoformat() if self.clip_start else None,
            "clip_end": self.clip_end.isoformat() if self.clip_end else None,
            "provider_ids": list(self.provider_ids) if self.provider_ids is not None else None,
            "provider_type": self.provider_type,
            "calculation_method": o.method,
            "buffer": o.buffer,
            "visit_type": o.visit_type,
            "daily_appointment_limit": o.daily_limit,
            "daily_limit_type": o.daily_limit_type,
            "max_slot_duration": o.max_slot_duration,
            "facility_scoped_scheduling": o.facility_scoped,
            "location_ids": sorted(o.location_ids) if o.location_ids is not None else None,
            "fallback_to_default_hours": o.fallback_to_default_hours,
        }

    @classmethod
    def from_params(cls, params: dict) -> AvailabilityRequest:
        instant = lambda v: datetime.fromisoformat(v) if v else None
        return cls(
            first=date.fromisoformat(params["first"]),
            last=date.fromisoformat(params["last"]),
            clip_start=instant(params.get("clip_start")),
            clip_end=instant(params.get("clip_end")),
            provider_ids=tuple(params["provider_ids"]) if params.get("provider_ids") is not None else None,
            provider_type=params.get("provider_type") or PRIMARY,
            options=calc.Options(
                method=params.get("calculation_method") or calc.GAPS,
                buffer=int(params.get("buffer") or 0),
                visit_type=params.get("visit_type") or calc.ALL,
                daily_limit=params.get("daily_appointment_limit"),
                daily_limit_type=params.get("daily_limit_type"),
                max_slot_duration=params.get("max_slot_duration"),
                facility_scoped=bool(params.get("facility_scoped_scheduling")),
                location_ids=frozenset(params["location_ids"]) if params.get("location_ids") is not None else None,
                fallback_to_default_hours=bool(params.get("fallback_to_default_hours")),
            ),
        )


def default_hours_windows(items: list[dict]) -> tuple[WeeklyWindow, ...]:
    """``Organization.default_hours`` (a location's ``weekly_availability`` JSON shape)."""
    return tuple(
        WeeklyWindow(item["dayOfWeek"], parse_wall_time(item["startTime"]), parse_wall_time(item["endTime"], end=True))
        for item in items
    )


def facility_id_of(ehr_id: str | None, pk) -> str:
    """A facility is named by its location's EHR id, or our id for a location without one."""
    return ehr_id or str(pk)


def _providers(*, connection: EmrConnection, provider_ids) -> list[tuple]:
    qs = (
        Resource.objects.filter(organization_id=connection.organization_id, status=ActiveStatus.ACTIVE, hide_in_availability=False)
        .filter(Q(emr_connection=connection) | Q(emr_connection__isnull=True, type=Resource.Type.PROVIDER))
        .annotate(first_zone=resource_first_location_zone())
    )
    if provider_ids is not None:
        qs = qs.filter(ehr_id__in=list(provider_ids))
    rows = qs.values_list(_text("pk"), "ehr_id", "timezone", "first_zone").order_by("pk")
    return [(uuid_text(pk), *rest) for pk, *rest in rows]


def availability_inputs(*, connection: EmrConnection, request: AvailabilityRequest) -> list[calc.ProviderIn]:
    """The providers of the request as the calculation takes them (see the module docstring)."""
    organization_zone = connection.organization.timezone
    rows = _providers(connection=connection, provider_ids=request.provider_ids)
    if not rows:
        return []
    ids = [pk for pk, *_ in rows]  # text: compared with the text the queries below answer

    shifts: dict = defaultdict(list)
    shift_rows = list(
        Shift.objects.filter(resource_id__in=ids)
        .exclude(valid_until__lt=request.first)
        .exclude(valid_from__gt=request.last)
        .values_list(
            "pk", _text("resource_id"), "day_of_week", "start_time", "end_time", "valid_from", "valid_until",
            "recur_every_weeks", _text("location_id"), "location__ehr_id", "location__name",
        )
    )
    rules: dict = defaultdict(list)
    for shift_id, start, end, visits, code in (
        VisitTypeRule.objects.filter(shift_id__in=[row[0] for row in shift_rows])
        .order_by("start_time", "id")
        .values_list("shift_id", "start_time", "end_time", "total_visits", "visit_type_id")
    ):
        rules[shift_id].append(calc.RuleIn(start, end, visits, code))
    for pk, resource_id, dow, start, end, valid_from, valid_until, every, location_id, loc_ehr, loc_name in shift_rows:
        shifts[uuid_text(resource_id)].append(
            calc.ShiftIn(
                window=WeeklyWindow(dow, start, end, valid_from, valid_until, every, str(pk)),
                facility_id=facility_id_of(loc_ehr, uuid_text(location_id)) if location_id else None,
                facility_name=loc_name if location_id else None,
                rules=tuple(rules[pk]),
            )
        )

    visits: dict = defaultdict(list)
    now = timezone.now()
    start = datetime.combine(request.first - timedelta(days=1), time(0), tzinfo=UTC)
    end = datetime.combine(request.last + timedelta(days=2), time(0), tzinfo=UTC)
    live = Q(appointment__status__in=(Appointment.Status.BOOKED, Appointment.Status.RESERVED)) | Q(
        appointment__status=Appointment.Status.HOLD
    ) & (Q(appointment__expires_at__isnull=True) | Q(appointment__expires_at__gt=now))
    links = AppointmentResource.objects.filter(
        resource_id__in=ids,
        appointment__organization_id=connection.organization_id,
        appointment__start__lt=end,
        appointment__end__gt=start,
    ).filter(live)
    for resource_id, a_start, a_end, primary, secondary, code, service_code, location_id, loc_ehr in links.values_list(
        _text("resource_id"), Epoch("appointment__start"), Epoch("appointment__end"), _text("appointment__primary_provider_id"),
        _text("appointment__secondary_provider_id"), "appointment__appointment_type", "appointment__service__visit_type",
        _text("appointment__location_id"), "appointment__location__ehr_id",
    ):
        resource_id = uuid_text(resource_id)
        primary = uuid_text(primary) if primary is not None else None
        secondary = uuid_text(secondary) if secondary is not None else None
        if request.provider_type == SECONDARY:
            counts = secondary == resource_id
        else:
            counts = primary == resource_id or (primary is None and secondary != resource_id)
        if counts:
            visits[resource_id].append(
                calc.VisitIn(
                    a_start, a_end, code or service_code or "", facility_id_of(loc_ehr, uuid_text(location_id)) if location_id else None
                )
            )

    return [
        calc.ProviderIn(
            id=ehr_id or str(pk),
            zone=resource_zone(own=own_zone, first_location=first_zone, organization_zone=organization_zone),
            shifts=tuple(shifts[pk]),
            visits=tuple(visits[pk]),
        )
        for pk, ehr_id, own_zone, first_zone in rows
    ]


def availability_compute(*, connection: EmrConnection, request: AvailabilityRequest) -> list[dict]:
    """The answer's ``availability`` list (``GET /v1/availability`` and the live fetch)."""
    options = request.options
    if options.fallback_to_default_hours:
        options = replace(options, default_hours=default_hours_windows(connection.organization.default_hours))
    clip = None
    if request.clip_start is not None or request.clip_end is not None:
        clip = (
            int(request.clip_start.timestamp()) if request.clip_start else -(2**62),
            int(request.clip_end.timestamp()) if request.clip_end else 2**62,
        )
    providers = availability_inputs(connection=connection, request=request)
    windows = calc.availability_windows(providers, options, first=request.first, last=request.last, clip=clip)
    return calc.windows_render(windows)
