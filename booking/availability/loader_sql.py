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
from datetime import date, datetime, time

from django.db import connection

from booking.availability.wallclock import MIDNIGHT
from booking.models import (
    Allocation,
    Appointment,
    AppointmentResource,
    Block,
    ExternalBusy,
    RecurringBlock,
    Service,
    Shift,
)


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _col(model, field: str, alias: str) -> str:
    return f"{alias}.{connection.ops.quote_name(model._meta.get_field(field).column)}"


def _epoch(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM {column})::float8"
    return f"ROUND((julianday({column}) - 2440587.5) * 86400.0, 3)"


def _text(column: str) -> str:
    return f"{column}::text" if connection.vendor == "postgresql" else column


def uuid_text(raw) -> str:
    """SQLite keeps 32 hex digits, PostgreSQL answers the dashed form (integer keys as they are)."""
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
    out: dict[str, list[tuple]] = {}
    with connection.cursor() as cursor:
        s = "s"
        cursor.execute(
            f"SELECT {_text(_col(Shift, 'resource', s))}, {_col(Shift, 'day_of_week', s)}, {_col(Shift, 'start_time', s)}, "
            f"{_col(Shift, 'end_time', s)}, {_col(Shift, 'valid_from', s)}, {_col(Shift, 'valid_until', s)}, "
            f"{_col(Shift, 'recur_every_weeks', s)}, {_text(_col(Shift, 'id', s))} FROM {_table(Shift)} s "
            f"WHERE {_col(Shift, 'organization', s)} = %s AND {_col(Shift, 'resource', s)} IN ({_in(rids)}) "
            f"AND ({_col(Shift, 'location', s)} IS NULL OR {_col(Shift, 'location', s)} = %s) "
            f"AND ({_col(Shift, 'valid_until', s)} IS NULL OR {_col(Shift, 'valid_until', s)} >= %s) "
            f"AND ({_col(Shift, 'valid_from', s)} IS NULL OR {_col(Shift, 'valid_from', s)} <= %s)",
            [org, *rids, loc, _day(first_date), _day(last_date)],
        )
        out["shifts"] = cursor.fetchall()
        a = "a"
        cursor.execute(
            f"SELECT {_text(_col(Allocation, 'resource', a))}, {_epoch(_col(Allocation, 'start', a))}, "
            f"{_epoch(_col(Allocation, 'end', a))}, {_text(_col(Allocation, 'id', a))} FROM {_table(Allocation)} a "
            f"WHERE {_col(Allocation, 'organization', a)} = %s AND {_col(Allocation, 'resource', a)} IN ({_in(rids)}) "
            f"AND {_col(Allocation, 'start', a)} < %s AND {_col(Allocation, 'end', a)} > %s "
            f"AND ({_col(Allocation, 'location', a)} IS NULL OR {_col(Allocation, 'location', a)} = %s)",
            [org, *rids, _instant(end), _instant(start), loc],
        )
        out["allocations"] = cursor.fetchall()
        b = "b"
        cursor.execute(
            f"SELECT {_text(_col(Block, 'resource', b))}, {_epoch(_col(Block, 'start', b))}, {_epoch(_col(Block, 'end', b))}, "
            f"{_text(_col(Block, 'id', b))} FROM {_table(Block)} b "
            f"WHERE {_col(Block, 'organization', b)} = %s AND {_col(Block, 'start', b)} < %s AND {_col(Block, 'end', b)} > %s "
            f"AND ({_col(Block, 'resource', b)} IN ({_in(rids)}) OR {_col(Block, 'location', b)} = %s "
            f"OR {_col(Block, 'service', b)} = %s)",
            [org, _instant(end), _instant(start), *rids, loc, svc],
        )
        out["blocks"] = cursor.fetchall()
        r = "r"
        fields = ("resource", "frequency", "interval", "start_date", "end_date", "start_time", "end_time", "timezone",
                  "weekdays", "month_day", "id")
        columns = [_text(_col(RecurringBlock, f, r)) if f in ("resource", "id") else _col(RecurringBlock, f, r) for f in fields]
        cursor.execute(
            f"SELECT {', '.join(columns)} FROM {_table(RecurringBlock)} r "
            f"WHERE {_col(RecurringBlock, 'organization', r)} = %s AND {_col(RecurringBlock, 'start_date', r)} <= %s "
            f"AND ({_col(RecurringBlock, 'end_date', r)} IS NULL OR {_col(RecurringBlock, 'end_date', r)} >= %s) "
            f"AND ({_col(RecurringBlock, 'resource', r)} IN ({_in(rids)}) OR {_col(RecurringBlock, 'location', r)} = %s "
            f"OR {_col(RecurringBlock, 'service', r)} = %s)",
            [org, _day(last_date), _day(first_date), *rids, loc, svc],
        )
        out["recurring"] = cursor.fetchall()
        chaining = sorted({row[0] for row in out["allocations"]} | {row[0] for row in out["shifts"] if as_time(row[3]) == MIDNIGHT})
        link, ap, sv = "l", "p", "v"
        reach = f"{_col(Appointment, 'end', ap)} > %s"
        params: list = [org, *rids, _instant(end), _instant(near)]
        if chaining:
            reach = (f"({reach} OR ({_col(AppointmentResource, 'resource', link)} IN ({_in(chaining)}) "
                     f"AND {_col(Appointment, 'end', ap)} > %s))")
            params += [*(_id(uuid_text(c)) for c in chaining), _instant(far)]
        status = _col(Appointment, "status", ap)
        expires = _col(Appointment, "expires_at", ap)
        sql = (
            f"SELECT {_text(_col(AppointmentResource, 'resource', link))}, {_text(_col(AppointmentResource, 'appointment', link))}, "
            f"{_epoch(_col(Appointment, 'start', ap))}, {_epoch(_col(Appointment, 'end', ap))}, {status}, "
            f"{_epoch(expires)}, {_col(Service, 'padding', sv)} "
            f"FROM {_table(AppointmentResource)} l "
            f"INNER JOIN {_table(Appointment)} p ON {_col(Appointment, 'id', ap)} = {_col(AppointmentResource, 'appointment', link)} "
            f"LEFT OUTER JOIN {_table(Service)} v ON {_col(Service, 'id', sv)} = {_col(Appointment, 'service', ap)} "
            f"WHERE {_col(Appointment, 'organization', ap)} = %s AND {_col(AppointmentResource, 'resource', link)} IN ({_in(rids)}) "
            f"AND {_col(Appointment, 'start', ap)} < %s AND {reach} "
            f"AND ({status} IN (%s, %s) OR ({status} = %s AND ({expires} IS NULL OR {expires} > %s)))"
        )
        params += [Appointment.Status.BOOKED, Appointment.Status.RESERVED, Appointment.Status.HOLD, _instant(now)]
        if exclude_appointment_id is not None:
            sql += f" AND {_col(AppointmentResource, 'appointment', link)} <> %s"
            params.append(_id(exclude_appointment_id))
        cursor.execute(sql, params)
        out["appointments"] = cursor.fetchall()
        x = "x"
        cursor.execute(
            f"SELECT {_text(_col(ExternalBusy, 'resource', x))}, {_text(_col(ExternalBusy, 'calendar', x))}, "
            f"{_epoch(_col(ExternalBusy, 'start', x))}, {_epoch(_col(ExternalBusy, 'end', x))} FROM {_table(ExternalBusy)} x "
            f"WHERE {_col(ExternalBusy, 'resource', x)} IN ({_in(rids)}) "
            f"AND {_col(ExternalBusy, 'start', x)} < %s AND {_col(ExternalBusy, 'end', x)} > %s",
            [*rids, _instant(end), _instant(start)],
        )
        out["busy"] = cursor.fetchall()
    return out
