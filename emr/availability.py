"""Reads for ``GET /v1/availability`` and the live availability fetch: rows → the pure
calculation (``booking.availability.calculation``) → windows.

``availability_compute`` is the one code path of both: the GET calls it on the cache, the live
fetch's job calls it after writing what the EMR answered into that same cache.

What it reads, in a fixed number of queries whatever the range (3; the organization comes with
the connection, ``EmrCredentialsAuthentication`` reads them together):

- the providers the connection sees (``emr.selectors.providers_visible``'s rule), active and not
  hidden, narrowed by ``provider_ids`` (EHR ids), each with its zone (``resource_zone``: its own,
  else its first linked location's, else the organization's — the zone its hours are read in
  everywhere);
- their shifts (with the facility) joined with the shifts' visit-type rules;
- the appointments that count for them: of the same rows (``AppointmentResource`` links of BK/RS
  appointments and unexpired holds) that block ``/v3/`` availability, with
  ``provider_type=primary`` those of an appointment's primary provider (a ``/v3/`` booking,
  which has no EMR roles, for every resource it occupies); with ``secondary``, those of its
  secondary provider (the database picks them: ``_COUNTED_SQL``). Its visit type is the EMR's
  code, or the booked service's ``visit_type``; its facility is its location.

Ids are compared as the database writes them as text (SQLite's 32 hex digits, PostgreSQL's dashed
form); only the ones that reach the answer (a provider or facility without an EHR id) are
normalized (``uuid_text``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import groupby

from django.db import connection as db_connection
from django.db.models import CharField, F, Q
from django.db.models.functions import Cast
from django.utils import timezone

from booking.availability import calculation as calc
from booking.availability.loader_sql import uuid_text
from booking.availability.wallclock import WeeklyWindow
from booking.models import ActiveStatus, Appointment, Resource
from booking.selectors import resource_first_location_zone, resource_zone
from booking.validators import parse_wall_time
from emr.models import EmrConnection

PRIMARY, SECONDARY = "primary", "secondary"
AVAILABILITY_QUERIES = 3  # and the organization, unless it came with the connection


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
    """(id as the database writes it as text, EHR id, own zone, first location's zone, id)."""
    qs = (
        Resource.objects.filter(organization_id=connection.organization_id, status=ActiveStatus.ACTIVE, hide_in_availability=False)
        .filter(Q(emr_connection=connection) | Q(emr_connection__isnull=True, type=Resource.Type.PROVIDER))
        .annotate(first_zone=resource_first_location_zone())
    )
    if provider_ids is not None:
        qs = qs.filter(ehr_id__in=list(provider_ids))
    rows = qs.values_list(_text("pk"), "ehr_id", "timezone", "first_zone").order_by("pk")
    return [(pk, *rest, uuid_text(pk)) for pk, *rest in rows]


# The shifts and the appointments are read with SQL written out here rather than compiled by the
# ORM: compiling their querysets took as long as running them. Every statement names its tenant
# filter (the organization) and the candidate providers (already the organization's, from
# ``_providers``), whose ids it takes as the database writes them as text.

_SHIFTS_SQL = """
    SELECT s.id, CAST(s.resource_id AS text), s.day_of_week, s.start_time, s.end_time, s.valid_from, s.valid_until,
           s.recur_every_weeks, CAST(s.location_id AS text), loc.ehr_id, loc.name,
           r.start_time, r.end_time, r.total_visits, r.visit_type_id
    FROM booking_shift s
    LEFT JOIN booking_location loc ON loc.id = s.location_id
    LEFT JOIN booking_visittyperule r ON r.shift_id = s.id
    WHERE s.organization_id = %s AND s.resource_id IN ({ids})
      AND (s.valid_until IS NULL OR s.valid_until >= %s) AND (s.valid_from IS NULL OR s.valid_from <= %s)
    ORDER BY s.resource_id, s.day_of_week, s.start_time, s.id, r.start_time, r.id
"""

_VISITS_SQL = """
    SELECT CAST(l.resource_id AS text), {start}, {end}, a.appointment_type, svc.visit_type,
           CAST(a.location_id AS text), loc.ehr_id
    FROM booking_appointmentresource l
    JOIN booking_appointment a ON a.id = l.appointment_id
    LEFT JOIN booking_location loc ON loc.id = a.location_id
    LEFT JOIN booking_service svc ON svc.id = a.service_id
    WHERE a.organization_id = %s AND l.resource_id IN ({ids})
      AND a.start < %s AND a."end" > %s
      AND (a.status IN (%s, %s) OR a.status = %s AND (a.expires_at IS NULL OR a.expires_at > %s))
      AND {counted}
"""

# Whether an appointment counts for the provider of a link (see the module docstring): with
# ``primary``, the provider is its primary provider, or it has none and the provider is not its
# secondary one; with ``secondary``, the provider is its secondary provider.
_COUNTED_SQL = {
    PRIMARY: "(a.primary_provider_id = l.resource_id OR a.primary_provider_id IS NULL"
    " AND (a.secondary_provider_id IS NULL OR a.secondary_provider_id <> l.resource_id))",
    SECONDARY: "a.secondary_provider_id = l.resource_id",
}


def _rows(sql: str, params: list) -> list[tuple]:
    with db_connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _uuid_params(values) -> list:
    """UUIDs as the database driver takes them (PostgreSQL: uuid, SQLite: 32 hex digits)."""
    return [Resource._meta.pk.get_db_prep_value(value, db_connection) for value in values]


def _epoch_sql(column: str) -> str:
    """An instant as seconds since the epoch, computed by the database (SQLite's rounded to the
    millisecond its ``julianday`` keeps)."""
    if db_connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM {column})::float8"
    return f"ROUND((julianday({column}) - 2440587.5) * 86400.0, 3)"


def _shifts(*, connection: EmrConnection, request: AvailabilityRequest, ids: list[str]) -> dict[str, list[calc.ShiftIn]]:
    """The providers' shifts valid in the range, with their facility and their visit-type rules
    (one row per rule, joined), by provider id (as text)."""
    ops = db_connection.ops
    rows = _rows(
        _SHIFTS_SQL.format(ids=", ".join(["%s"] * len(ids))),
        [*_uuid_params([connection.organization_id]), *_uuid_params(ids),
         ops.adapt_datefield_value(request.first), ops.adapt_datefield_value(request.last)],
    )
    shifts: dict[str, list[calc.ShiftIn]] = defaultdict(list)
    for (pk, resource_id, *shift), rules in groupby(rows, key=lambda row: row[:11]):
        dow, start, end, valid_from, valid_until, every, location_id, loc_ehr, loc_name = shift
        shifts[resource_id].append(
            calc.ShiftIn(
                window=WeeklyWindow(
                    dow, _time(start), _time(end), _date(valid_from), _date(valid_until), every, str(pk)
                ),
                facility_id=facility_id_of(loc_ehr, uuid_text(location_id)) if location_id else None,
                facility_name=loc_name if location_id else None,
                rules=tuple(
                    calc.RuleIn(_time(r_start), _time(r_end), visits, code)
                    for *_, r_start, r_end, visits, code in rules
                    if r_start is not None  # a shift without rules: one row, its rule's columns empty
                ),
            )
        )
    return shifts


def _time(value: time | str) -> time:
    """A time column as the driver answers it (SQLite: ISO text)."""
    return time.fromisoformat(value) if isinstance(value, str) else value


def _date(value: date | str | None) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _visits(*, connection: EmrConnection, request: AvailabilityRequest, ids: list[str]) -> dict[str, list[calc.VisitIn]]:
    """The appointments that count for each provider (by id as text) around the range: the same
    rows (BK/RS appointments and unexpired holds) that block ``/v3/`` availability."""
    ops = db_connection.ops
    start = datetime.combine(request.first - timedelta(days=1), time(0), tzinfo=UTC)
    end = datetime.combine(request.last + timedelta(days=2), time(0), tzinfo=UTC)
    sql = _VISITS_SQL.format(
        start=_epoch_sql("a.start"), end=_epoch_sql('a."end"'), ids=", ".join(["%s"] * len(ids)),
        counted=_COUNTED_SQL[request.provider_type],
    )
    params = [
        *_uuid_params([connection.organization_id]), *_uuid_params(ids),
        ops.adapt_datetimefield_value(end), ops.adapt_datetimefield_value(start),
        Appointment.Status.BOOKED.value, Appointment.Status.RESERVED.value, Appointment.Status.HOLD.value,
        ops.adapt_datetimefield_value(timezone.now()),
    ]
    visits: dict[str, list[calc.VisitIn]] = defaultdict(list)
    for resource_id, a_start, a_end, code, service_code, location_id, loc_ehr in _rows(sql, params):
        facility = loc_ehr or (location_id and uuid_text(location_id))  # facility_id_of, for each of 1,000s of rows
        visits[resource_id].append(calc.VisitIn(a_start, a_end, code or service_code or "", facility))
    return visits


def availability_inputs(*, connection: EmrConnection, request: AvailabilityRequest) -> list[calc.ProviderIn]:
    """The providers of the request as the calculation takes them (see the module docstring)."""
    organization_zone = connection.organization.timezone
    rows = _providers(connection=connection, provider_ids=request.provider_ids)
    if not rows:
        return []
    ids = [key for key, *_ in rows]  # as the database writes them as text, like the queries below answer
    shifts = _shifts(connection=connection, request=request, ids=ids)
    visits = _visits(connection=connection, request=request, ids=ids)
    return [
        calc.ProviderIn(
            id=ehr_id or pk,
            zone=resource_zone(own=own_zone, first_location=first_zone, organization_zone=organization_zone),
            shifts=tuple(shifts[key]),
            visits=tuple(visits[key]),
        )
        for key, ehr_id, own_zone, first_zone, pk in rows
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
