"""The loader's statements as SQL, built from the ORM's own table and column names.

The ORM spent most of an uncached availability request building and compiling the loader's
querysets and turning rows into Python values (issue 14); these statements read the same rows on
one cursor, with instants as epoch seconds and ids as text computed by the database. Every
statement names its tenant filter: the organization, and the candidate resources (already the
organization's, from ``resource_rows``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import cache, lru_cache

from django.db import connection, models

from booking.availability.wallclock import MIDNIGHT
from booking.models import (
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
from tenants.models import Organization

# The names below are worked out once per database vendor: the statements are rebuilt on every
# request (their IN lists vary), their table and column names never do.


def _table(model) -> str:
    return _quoted_table(model, connection.vendor)


@cache
def _quoted_table(model, vendor: str) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _col(model, field: str, alias: str) -> str:
    return _quoted_column(model, field, alias, connection.vendor)


@cache
def _quoted_column(model, field: str, alias: str, vendor: str) -> str:
    return f"{alias}.{connection.ops.quote_name(model._meta.get_field(field).column)}"


def _epoch(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM {column})::float8"
    return f"ROUND((julianday({column}) - 2440587.5) * 86400.0, 3)"


def _text(model, field: str, alias: str) -> str:
    """An id column (or a foreign key) as text computed by the database: a uuid in its dashed form
    (SQLite keeps 32 hex digits), an integer in decimal."""
    return _id_text(model, field, alias, connection.vendor)


@cache
def _id_text(model, field: str, alias: str, vendor: str) -> str:
    column = _col(model, field, alias)
    if vendor == "postgresql":
        return f"{column}::text"
    target = model._meta.get_field(field)
    target = target.target_field if target.is_relation else target
    if not isinstance(target, models.UUIDField):
        return f"CAST({column} AS TEXT)"
    parts = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
    return " || '-' || ".join(f"substr({column}, {start}, {length})" for start, length in parts)


def uuid_text(raw) -> str:
    """A uuid read without ``_text``: SQLite keeps 32 hex digits, PostgreSQL answers the dashed
    form (integer keys as they are)."""
    if not isinstance(raw, str):
        return str(raw)
    if len(raw) == 32:
        return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
    return raw


def _id(value) -> object:
    value = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    return value if connection.vendor == "postgresql" else value.hex


def _instant(value: datetime) -> object:
    return connection.ops.adapt_datetimefield_value(value)


def _day(value: date) -> object:
    return connection.ops.adapt_datefield_value(value)


def as_time(value) -> time:
    return time.fromisoformat(value) if isinstance(value, str) else value


def as_date(value) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


def as_list(value) -> list:
    return json.loads(value) if isinstance(value, str) else (value or [])


def _in(values: list) -> str:
    return ", ".join(["%s"] * len(values))


def loader_rows(
    *, organization_id, location_id, service_id, ids: list[str], start: datetime, end: datetime,
    first_date: date, last_date: date, now: datetime, near: datetime, far: datetime, exclude_appointment_id=None,
) -> dict[str, list[tuple]]:
    """Every row the engine needs, by kind: shifts, allocations, blocks, recurring blocks,
    appointments (as their resource links) and external busy times. Appointments end after
    ``near``, or after ``far`` for a resource whose working windows can chain across midnight (a
    shift ending at midnight, or any single allocation: ``engine.load_horizon_near``). External
    busy times have no organization of their own: the candidate resources scope them."""
    org, loc, svc = _id(organization_id), _id(location_id), _id(service_id)
    rids = [_id(r) for r in ids]
    sql = _loader_statements(connection.vendor, len(rids))
    out: dict[str, list[tuple]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql.shifts, [org, *rids, loc, _day(first_date), _day(last_date)])
        out["shifts"] = cursor.fetchall()
        cursor.execute(sql.allocations, [org, *rids, _instant(end), _instant(start), loc])
        out["allocations"] = cursor.fetchall()
        cursor.execute(sql.blocks, [org, _instant(end), _instant(start), *rids, loc, svc])
        out["blocks"] = cursor.fetchall()
        cursor.execute(sql.recurring, [org, _day(last_date), _day(first_date), *rids, loc, svc])
        out["recurring"] = cursor.fetchall()
        chaining = sorted({row[0] for row in out["allocations"]} | {row[0] for row in out["shifts"] if as_time(row[3]) == MIDNIGHT})
        params: list = [org, *rids, _instant(end), _instant(near)]
        if chaining:
            params += [*(_id(uuid_text(c)) for c in chaining), _instant(far)]
        params += [Appointment.Status.BOOKED, Appointment.Status.RESERVED, Appointment.Status.HOLD, _instant(now)]
        if exclude_appointment_id is not None:
            params.append(_id(exclude_appointment_id))
        cursor.execute(
            _appointments_statement(connection.vendor, len(rids), len(chaining), exclude_appointment_id is not None),
            params,
        )
        out["appointments"] = cursor.fetchall()
        cursor.execute(sql.busy, [*rids, _instant(end), _instant(start)])
        out["busy"] = cursor.fetchall()
    return out


@dataclass(frozen=True)
class _Statements:
    shifts: str
    allocations: str
    blocks: str
    recurring: str
    busy: str


@lru_cache(maxsize=512)
def _loader_statements(vendor: str, resources: int) -> _Statements:
    """``loader_rows``' statements for ``resources`` candidate resources, built once per database
    vendor and count (only their IN lists vary between requests)."""
    rids = [None] * resources
    s, a, b, r, x = "s", "a", "b", "r", "x"
    recurring_fields = ("resource", "frequency", "interval", "start_date", "end_date", "start_time", "end_time",
                        "timezone", "weekdays", "month_day", "id")
    recurring_columns = [
        _text(RecurringBlock, f, r) if f in ("resource", "id") else _col(RecurringBlock, f, r) for f in recurring_fields
    ]
    return _Statements(
        shifts=(
            f"SELECT {_text(Shift, 'resource', s)}, {_col(Shift, 'day_of_week', s)}, {_col(Shift, 'start_time', s)}, "
            f"{_col(Shift, 'end_time', s)}, {_col(Shift, 'valid_from', s)}, {_col(Shift, 'valid_until', s)}, "
            f"{_col(Shift, 'recur_every_weeks', s)}, {_text(Shift, 'id', s)} FROM {_table(Shift)} s "
            f"WHERE {_col(Shift, 'organization', s)} = %s AND {_col(Shift, 'resource', s)} IN ({_in(rids)}) "
            f"AND ({_col(Shift, 'location', s)} IS NULL OR {_col(Shift, 'location', s)} = %s) "
            f"AND ({_col(Shift, 'valid_until', s)} IS NULL OR {_col(Shift, 'valid_until', s)} >= %s) "
            f"AND ({_col(Shift, 'valid_from', s)} IS NULL OR {_col(Shift, 'valid_from', s)} <= %s)"
        ),
        allocations=(
            f"SELECT {_text(Allocation, 'resource', a)}, {_epoch(_col(Allocation, 'start', a))}, "
            f"{_epoch(_col(Allocation, 'end', a))}, {_text(Allocation, 'id', a)} FROM {_table(Allocation)} a "
            f"WHERE {_col(Allocation, 'organization', a)} = %s AND {_col(Allocation, 'resource', a)} IN ({_in(rids)}) "
            f"AND {_col(Allocation, 'start', a)} < %s AND {_col(Allocation, 'end', a)} > %s "
            f"AND ({_col(Allocation, 'location', a)} IS NULL OR {_col(Allocation, 'location', a)} = %s)"
        ),
        blocks=(
            f"SELECT {_text(Block, 'resource', b)}, {_epoch(_col(Block, 'start', b))}, {_epoch(_col(Block, 'end', b))}, "
            f"{_text(Block, 'id', b)} FROM {_table(Block)} b "
            f"WHERE {_col(Block, 'organization', b)} = %s AND {_col(Block, 'start', b)} < %s AND {_col(Block, 'end', b)} > %s "
            f"AND ({_col(Block, 'resource', b)} IN ({_in(rids)}) OR {_col(Block, 'location', b)} = %s "
            f"OR {_col(Block, 'service', b)} = %s)"
        ),
        recurring=(
            f"SELECT {', '.join(recurring_columns)} FROM {_table(RecurringBlock)} r "
            f"WHERE {_col(RecurringBlock, 'organization', r)} = %s AND {_col(RecurringBlock, 'start_date', r)} <= %s "
            f"AND ({_col(RecurringBlock, 'end_date', r)} IS NULL OR {_col(RecurringBlock, 'end_date', r)} >= %s) "
            f"AND ({_col(RecurringBlock, 'resource', r)} IN ({_in(rids)}) OR {_col(RecurringBlock, 'location', r)} = %s "
            f"OR {_col(RecurringBlock, 'service', r)} = %s)"
        ),
        busy=(
            f"SELECT {_text(ExternalBusy, 'resource', x)}, {_text(ExternalBusy, 'calendar', x)}, "
            f"{_epoch(_col(ExternalBusy, 'start', x))}, {_epoch(_col(ExternalBusy, 'end', x))} FROM {_table(ExternalBusy)} x "
            f"WHERE {_col(ExternalBusy, 'resource', x)} IN ({_in(rids)}) "
            f"AND {_col(ExternalBusy, 'start', x)} < %s AND {_col(ExternalBusy, 'end', x)} > %s"
        ),
    )


@lru_cache(maxsize=512)
def _appointments_statement(vendor: str, resources: int, chaining: int, excluding: bool) -> str:
    """The appointments' statement: their resource links, for ``resources`` candidates of which
    ``chaining`` reach further back, leaving one appointment out when ``excluding``. After the
    resource, the columns are ``engine.Booked``'s fields in order (padding 0 without a service)."""
    link, ap, sv = "l", "p", "v"
    reach = f"{_col(Appointment, 'end', ap)} > %s"
    if chaining:
        reach = (f"({reach} OR ({_col(AppointmentResource, 'resource', link)} IN ({_in([None] * chaining)}) "
                 f"AND {_col(Appointment, 'end', ap)} > %s))")
    status = _col(Appointment, "status", ap)
    expires = _col(Appointment, "expires_at", ap)
    sql = (
        f"SELECT {_text(AppointmentResource, 'resource', link)}, {_text(AppointmentResource, 'appointment', link)}, "
        f"{_epoch(_col(Appointment, 'start', ap))}, {_epoch(_col(Appointment, 'end', ap))}, {status}, "
        f"COALESCE({_col(Service, 'padding', sv)}, 0), {_epoch(expires)} "
        f"FROM {_table(AppointmentResource)} l "
        f"INNER JOIN {_table(Appointment)} p ON {_col(Appointment, 'id', ap)} = {_col(AppointmentResource, 'appointment', link)} "
        f"LEFT OUTER JOIN {_table(Service)} v ON {_col(Service, 'id', sv)} = {_col(Appointment, 'service', ap)} "
        f"WHERE {_col(Appointment, 'organization', ap)} = %s AND {_col(AppointmentResource, 'resource', link)} IN ({_in([None] * resources)}) "
        f"AND {_col(Appointment, 'start', ap)} < %s AND {reach} "
        f"AND ({status} IN (%s, %s) OR ({status} = %s AND ({expires} IS NULL OR {expires} > %s)))"
    )
    if excluding:
        sql += f" AND {_col(AppointmentResource, 'appointment', link)} <> %s"
    return sql


# --- the request's own rows ----------------------------------------------------------------------

LOCATION_FIELDS = ("id", "timezone", "weekly_availability", "status")
SERVICE_FIELDS = ("id", "duration", "padding", "bookings_per_slot", "booking_interval", "round_robin", "duration_select",
                  "duration_min", "duration_max", "duration_interval")
RESOURCE_FIELDS = ("id", "name", "timezone", "bookings_per_slot", "status", "hide_in_availability")


@dataclass(frozen=True)
class RequestRows:
    """What ``request_rows`` read: the organization's zone, the location and the service (None when
    the organization has no such one), and the resource rows (``RESOURCE_FIELDS``, then the zone of
    the first location each was linked to and whether it offers the service at the location)."""

    organization_zone: str
    location: tuple | None  # LOCATION_FIELDS
    service: tuple | None  # SERVICE_FIELDS
    resources: list[tuple]


def request_rows(*, organization_id, location_id, service_id, resource_ids: list | None) -> RequestRows:
    """The organization's zone, its location and service named by the request, and the resources to
    consider in answer order (name, id): ``resource_ids`` if given, else every resource linked to
    the service at the location. One statement: the organization's row, with the location, the
    service and the resources joined to it, each filtered to the organization."""
    org, loc, svc = _id(organization_id), _id(location_id), _id(service_id)
    if resource_ids is None:
        ids = [org, svc, loc]
    else:
        ids = [_id(i) for i in resource_ids]
    sql = _request_statement(connection.vendor, None if resource_ids is None else len(ids))
    params = [svc, loc]  # the SELECT's (``linked``); then the joins', the resources', the organization's
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, loc, svc, *ids, org])
        rows = cursor.fetchall()
    if not rows:
        raise LookupError(f"organization {organization_id} not found")
    n_loc, n_svc = len(LOCATION_FIELDS), len(SERVICE_FIELDS)
    first = rows[0]
    location = first[1 : 1 + n_loc]
    service = first[1 + n_loc : 1 + n_loc + n_svc]
    resources = [row[1 + n_loc + n_svc :] for row in rows if row[1 + n_loc + n_svc] is not None]
    return RequestRows(
        organization_zone=first[0],
        location=location if location[0] is not None else None,
        service=service if service[0] is not None else None,
        resources=resources,
    )


@lru_cache(maxsize=512)
def _request_statement(vendor: str, resources: int | None) -> str:
    """``request_rows``' statement for ``resources`` named resources (None: every linked one),
    built once per database vendor and count."""
    o, lo, v, r, k, f, fl = "o", "lo", "v", "r", "k", "f", "fl"
    # The subqueries name the organization too, though the resource they follow is already its own.
    linked = (f"EXISTS (SELECT 1 FROM {_table(ResourceService)} k WHERE {_col(ResourceService, 'organization', k)} = "
              f"{_col(Organization, 'id', o)} AND {_col(ResourceService, 'resource', k)} = {_col(Resource, 'id', r)} "
              f"AND {_col(ResourceService, 'service', k)} = %s AND {_col(ResourceService, 'location', k)} = %s)")
    first_zone = (f"(SELECT {_col(Location, 'timezone', fl)} FROM {_table(ResourceService)} f "
                  f"INNER JOIN {_table(Location)} fl ON {_col(Location, 'id', fl)} = {_col(ResourceService, 'location', f)} "
                  f"WHERE {_col(ResourceService, 'organization', f)} = {_col(Organization, 'id', o)} "
                  f"AND {_col(ResourceService, 'resource', f)} = {_col(Resource, 'id', r)} "
                  f"ORDER BY {_col(ResourceService, 'created_at', f)}, {_col(ResourceService, 'id', f)} LIMIT 1)")
    columns = (
        [_col(Organization, "timezone", o)]
        + [_text(Location, c, lo) if c == "id" else _col(Location, c, lo) for c in LOCATION_FIELDS]
        + [_text(Service, c, v) if c == "id" else _col(Service, c, v) for c in SERVICE_FIELDS]
        + [_text(Resource, c, r) if c == "id" else _col(Resource, c, r) for c in RESOURCE_FIELDS]
        + [first_zone, linked]
    )
    if resources is None:
        chosen = (f"{_col(Resource, 'id', r)} IN (SELECT {_col(ResourceService, 'resource', k)} FROM {_table(ResourceService)} k "
                  f"WHERE {_col(ResourceService, 'organization', k)} = %s AND {_col(ResourceService, 'service', k)} = %s "
                  f"AND {_col(ResourceService, 'location', k)} = %s)")
    elif resources:
        chosen = f"{_col(Resource, 'id', r)} IN ({_in([None] * resources)})"
    else:
        chosen = "1 = 0"
    return (
        f"SELECT {', '.join(columns)} FROM {_table(Organization)} o "
        f"LEFT OUTER JOIN {_table(Location)} lo ON {_col(Location, 'organization', lo)} = {_col(Organization, 'id', o)} "
        f"AND {_col(Location, 'id', lo)} = %s "
        f"LEFT OUTER JOIN {_table(Service)} v ON {_col(Service, 'organization', v)} = {_col(Organization, 'id', o)} "
        f"AND {_col(Service, 'id', v)} = %s "
        f"LEFT OUTER JOIN {_table(Resource)} r ON {_col(Resource, 'organization', r)} = {_col(Organization, 'id', o)} "
        f"AND {_col(Location, 'id', lo)} IS NOT NULL AND {_col(Service, 'id', v)} IS NOT NULL AND {chosen} "
        f"WHERE {_col(Organization, 'id', o)} = %s "
        f"ORDER BY {_col(Resource, 'name', r)}, {_col(Resource, 'id', r)}"
    )
