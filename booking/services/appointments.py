"""Appointments through ``/v3/``: book, hold, reserve, confirm, cancel, reschedule.

Race-free by construction: every write that takes time on resources runs in one transaction that
first locks the resources' rows (``resources_lock``: ``SELECT ... FOR UPDATE`` ordered by primary
key, so two requests can't deadlock), then re-reads the data and re-checks the candidate with the
availability engine (``engine.candidate_is_valid``, the same predicate the listing uses). On
PostgreSQL the lock holds across processes and machines; on SQLite the IMMEDIATE transaction mode
(settings) serializes writers.

Every change emits its event through ``appointment_event_emit`` and ends by invalidating cached
availability (``availability_invalidate``) inside the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.db import transaction
from django.utils import timezone

from booking.availability import engine, wallclock
from booking.availability.loader import availability_inputs_load, resource_rows, service_in
from booking.models import Appointment, AppointmentResource, Location, Resource, Service
from booking.services.invalidation import availability_invalidate
from tenants.errors import Conflict, InvalidInput
from tenants.events import event_emit
from tenants.models import ApiClient, Organization

Status = Appointment.Status
LIVE_STATUSES = (Status.BOOKED, Status.RESERVED, Status.HOLD)


@dataclass(frozen=True)
class Customer:
    name: str = ""
    email: str = ""
    phone: str = ""


# --------------------------------------------------------------------------------------------
# Representation and events
# --------------------------------------------------------------------------------------------


def appointment_zone(appointment: Appointment) -> str:
    """Times are shown in the appointment's location's zone (UTC without a location)."""
    return appointment.location.timezone if appointment.location_id and appointment.location else "UTC"


def appointment_v3_representation(appointment: Appointment) -> dict:
    """The appointment as ``/v3/`` shows it and as its events carry it."""
    zone = appointment_zone(appointment)

    def render(moment: datetime | None) -> str | None:
        if moment is None:
            return None
        return wallclock.instant(wallclock.epoch(moment), zone).isoformat()

    return {
        "id": str(appointment.pk),
        "status": appointment.status,
        "startTime": render(appointment.start),
        "endTime": render(appointment.end),
        "duration": int((appointment.end - appointment.start).total_seconds() // 60),
        "timezone": zone,
        "ServiceId": str(appointment.service_id) if appointment.service_id else None,
        "LocationId": str(appointment.location_id) if appointment.location_id else None,
        "ResourceIds": [str(link.resource_id) for link in sorted(appointment.resource_links.all(), key=lambda l: l.pk)],
        "source": appointment.source,
        "customer": {
            "name": appointment.customer_name,
            "email": appointment.customer_email,
            "phone": appointment.customer_phone,
        },
        "patientMrn": appointment.patient_mrn,
        "notes": appointment.notes,
        "expiresAt": render(appointment.expires_at),
        "cancelledAt": render(appointment.cancelled_at),
        "ehrAppointmentId": appointment.ehr_appointment_id,
        "createdAt": render(appointment.created_at),
        "updatedAt": render(appointment.updated_at),
    }


def appointment_event_emit(*, appointment: Appointment, type: str) -> None:
    """The one place appointment events leave from: ``appointment.created|updated|cancelled``."""
    event_emit(organization_id=appointment.organization_id, type=type, data=appointment_v3_representation(appointment))


# --------------------------------------------------------------------------------------------
# Locking and checking
# --------------------------------------------------------------------------------------------


def resources_lock(*, resource_ids) -> list:
    """Row-lock the resources, always in primary-key order (no deadlocks between two bookings
    that share resources). Must run inside ``transaction.atomic``."""
    return list(Resource.objects.select_for_update().filter(pk__in=list(resource_ids)).order_by("pk").values_list("pk", flat=True))


def duration_check(*, service: Service, minutes: int | None, field: str = "duration") -> int:
    """The appointment length: the service's, or an allowed ``duration`` (400 otherwise)."""
    if minutes is None:
        return service.duration
    error = engine.override_duration_error(service_in(service), minutes)
    if error:
        raise InvalidInput({field: [error]})
    return minutes


def appointment_choice_seed(
    *, organization: Organization, location: Location, service: Service, start: datetime, duration: int,
    resource_ids: tuple[str, ...] | None,
) -> str:
    """Rule 9's seed for a booking that leaves the choice of resource to ``roundRobin``: the
    booking's own normalized terms, so the same booking on the same data picks the same one."""
    return "|".join(
        ["book", str(organization.pk), str(location.pk), str(service.pk), str(wallclock.epoch(start)), str(duration),
         ",".join(sorted(resource_ids or ()))]
    )


def _day_query(
    *, organization: Organization, location: Location, service: Service, start: datetime, duration: int,
    resource_ids: tuple[str, ...] | None, allow_padding_overflow: bool,
) -> engine.Query:
    """One candidate as a request: its local day at the location (BALANCED counts that day's
    appointments) and a seed from the booking's own normalized terms."""
    day = wallclock.local_date(wallclock.epoch(start), location.timezone)
    seed = appointment_choice_seed(
        organization=organization, location=location, service=service, start=start, duration=duration,
        resource_ids=resource_ids,
    )
    return engine.Query(
        start=wallclock.instant(wallclock.wall_to_epoch(location.timezone, day, time(0), False)),
        end=wallclock.instant(wallclock.wall_to_epoch(location.timezone, day, time(23, 59, 59), True)),
        now=timezone.now(),
        zone=location.timezone,
        resource_ids=resource_ids,
        override_duration=duration,
        allow_padding_overflow=allow_padding_overflow,
        seed=seed,
    )


def _not_bookable(detail: str = "") -> Conflict:
    return Conflict("That time is not bookable" + (f": {detail}" if detail else "") + ".")


# --------------------------------------------------------------------------------------------
# Writes
# --------------------------------------------------------------------------------------------


def appointment_create(
    *,
    organization: Organization,
    service: Service,
    location: Location,
    start: datetime,
    status: str = Status.BOOKED,
    resource_ids: list[str] | None = None,
    duration: int | None = None,
    customer: Customer | None = None,
    patient_mrn: str = "",
    notes: str = "",
    allow_padding_overflow: bool = False,
    api_client: ApiClient | None = None,
) -> Appointment:
    """A new appointment (BK, IN or RS) at ``start``, if the resources can take it.

    ``resource_ids`` given: every one of them must offer the service at the location (else 400)
    and be free (else 409); the appointment occupies them all. Omitted: one resource is chosen as
    ``roundRobin`` would among those free at ``start`` (409 when none is).
    """
    minutes = duration_check(service=service, minutes=duration)
    mode = service.round_robin or engine.RANDOM
    requested = list(dict.fromkeys(str(r) for r in resource_ids)) if resource_ids else None
    if requested is None and mode == engine.COMBINED:
        raise InvalidInput({"ResourceIds": ["Required: the service books its resources together (roundRobin COMBINED)."]})
    customer = customer or Customer()
    start = start.replace(microsecond=0)

    with transaction.atomic():
        rows = resource_rows(organization=organization, location=location, service=service, resource_ids=requested)
        if requested is not None:
            linked = {row.id for row in rows if row.linked}
            missing = [rid for rid in requested if rid not in linked]
            if missing:
                raise InvalidInput(
                    {"ResourceIds": [f"Resource {rid} does not offer this service at this location." for rid in missing]}
                )
        else:
            rows = [row for row in rows if row.active and row.linked and not row.hidden]
        if not rows:
            raise _not_bookable("no resource offers this service here")
        resources_lock(resource_ids=[row.id for row in rows])
        query = _day_query(
            organization=organization, location=location, service=service, start=start, duration=minutes,
            resource_ids=tuple(requested) if requested else None, allow_padding_overflow=allow_padding_overflow,
        )
        inputs = availability_inputs_load(
            organization=organization, location=location, service=service, query=query, rows=rows
        )
        if requested is not None:
            chosen = tuple(requested) if engine.candidate_is_valid(inputs, requested, start) else None
        else:
            chosen = engine.candidate_resources_choose(inputs, start)
        if not chosen:
            raise _not_bookable()
        now = timezone.now()
        appointment = Appointment.objects.create(
            organization=organization,
            status=status,
            start=start,
            end=start + timedelta(minutes=minutes),
            expires_at=now + timedelta(minutes=location.hold_expiration_minutes) if status == Status.HOLD else None,
            service=service,
            location=location,
            source=Appointment.Source.API,
            customer_name=customer.name,
            customer_email=customer.email,
            customer_phone=customer.phone,
            patient_mrn=patient_mrn,
            notes=notes,
            created_by_client=api_client,
        )
        AppointmentResource.objects.bulk_create(
            [AppointmentResource(appointment=appointment, resource_id=rid) for rid in chosen]
        )
        appointment = _reloaded(appointment.pk)
        appointment_event_emit(appointment=appointment, type="appointment.created")
        availability_invalidate(organization_id=organization.pk)
    return appointment


def appointment_book(**kwargs) -> Appointment:
    """``POST /v3/appointments``: a booked (BK) appointment."""
    return appointment_create(status=Status.BOOKED, **kwargs)


def appointment_hold(**kwargs) -> Appointment:
    """``POST /v3/appointments/hold``: a hold (IN) that lapses after the location's
    ``holdExpirationMinutes``."""
    return appointment_create(status=Status.HOLD, **kwargs)


def appointment_reserve(**kwargs) -> Appointment:
    """``POST /v3/appointments/reserve``: a reservation (RS), no expiry."""
    return appointment_create(status=Status.RESERVED, **kwargs)


def _reloaded(pk) -> Appointment:
    return Appointment.objects.select_related("location", "service").prefetch_related("resource_links").get(pk=pk)


def _locked(appointment: Appointment) -> Appointment:
    return Appointment.objects.select_for_update().get(pk=appointment.pk)


def _hold_expired(appointment: Appointment, now: datetime) -> bool:
    return appointment.status == Status.HOLD and appointment.expires_at is not None and appointment.expires_at <= now


def _refuse_emr(appointment: Appointment) -> None:
    if appointment.source == Appointment.Source.EMR:
        raise Conflict("This appointment comes from the EMR; change it there.")


def appointment_confirm(*, appointment: Appointment) -> Appointment:
    """``PUT /v3/appointments/{id}/book``: a hold (IN) or reservation (RS) becomes booked (BK).

    They already occupy their time, so nothing needs re-checking; an expired hold has released its
    time and is refused (409), as is a cancelled appointment. Booking a booked one changes nothing.
    """
    with transaction.atomic():
        current = _locked(appointment)
        _refuse_emr(current)
        if current.status == Status.BOOKED:
            return _reloaded(current.pk)
        if current.status == Status.CANCELLED:
            raise Conflict("The appointment is cancelled.")
        if _hold_expired(current, timezone.now()):
            raise Conflict("The hold has expired.")
        current.status = Status.BOOKED
        current.expires_at = None
        current.save(update_fields=["status", "expires_at", "updated_at"])
        current = _reloaded(current.pk)
        appointment_event_emit(appointment=current, type="appointment.updated")
        availability_invalidate(organization_id=current.organization_id)
    return current


def appointment_cancel(*, appointment: Appointment) -> Appointment:
    """``PUT /v3/appointments/{id}/cancel``: → CN, and the time is free at once. Cancelling a
    cancelled appointment changes nothing."""
    with transaction.atomic():
        current = _locked(appointment)
        _refuse_emr(current)
        if current.status == Status.CANCELLED:
            return _reloaded(current.pk)
        current.status = Status.CANCELLED
        current.cancelled_at = timezone.now()
        current.save(update_fields=["status", "cancelled_at", "updated_at"])
        current = _reloaded(current.pk)
        appointment_event_emit(appointment=current, type="appointment.cancelled")
        availability_invalidate(organization_id=current.organization_id)
    return current


DETAIL_FIELDS = ("customer_name", "customer_email", "customer_phone", "patient_name", "patient_mrn", "notes", "reason")


def appointment_details_update(*, appointment: Appointment, changes: dict) -> Appointment:
    """Correct who an appointment is for and its notes (the admin): no time or resource changes,
    so availability is untouched; emits ``appointment.updated`` when something changed."""
    unknown = set(changes) - set(DETAIL_FIELDS)
    if unknown:
        raise ValueError(f"Not an appointment detail: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        current = _locked(appointment)
        changed = [name for name, value in changes.items() if getattr(current, name) != value]
        if not changed:
            return current
        for name in changed:
            setattr(current, name, changes[name])
        current.save(update_fields=[*changed, "updated_at"])
        current = _reloaded(current.pk)
        appointment_event_emit(appointment=current, type="appointment.updated")
    return current


def appointment_reschedule(
    *, appointment: Appointment, start: datetime, allow_padding_overflow: bool = False
) -> Appointment:
    """``PUT /v3/appointments/{id}/reschedule``: move to ``start``, keeping its length and
    resources. The old time is freed and the new one validated in one transaction (409 when the
    new time is not bookable, and the appointment stays where it was)."""
    start = start.replace(microsecond=0)
    with transaction.atomic():
        current = _locked(appointment)
        _refuse_emr(current)
        if current.status == Status.CANCELLED:
            raise Conflict("The appointment is cancelled.")
        if _hold_expired(current, timezone.now()):
            raise Conflict("The hold has expired.")
        if current.service_id is None or current.location_id is None:
            raise Conflict("The appointment's service or location no longer exists.")
        resource_ids = [str(pk) for pk in current.resource_links.order_by("resource_id").values_list("resource_id", flat=True)]
        if not resource_ids:
            raise Conflict("The appointment has no resources.")
        service, location = current.service, current.location
        minutes = int((current.end - current.start).total_seconds() // 60)
        rows = resource_rows(organization=current.organization, location=location, service=service, resource_ids=resource_ids)
        resources_lock(resource_ids=resource_ids)
        query = _day_query(
            organization=current.organization, location=location, service=service, start=start, duration=minutes,
            resource_ids=tuple(resource_ids), allow_padding_overflow=allow_padding_overflow,
        )
        inputs = availability_inputs_load(
            organization=current.organization, location=location, service=service, query=query, rows=rows,
            exclude_appointment_id=current.pk,
        )
        if not engine.candidate_is_valid(inputs, resource_ids, start):
            raise _not_bookable()
        current.start, current.end = start, start + timedelta(minutes=minutes)
        current.save(update_fields=["start", "end", "updated_at"])
        current = _reloaded(current.pk)
        appointment_event_emit(appointment=current, type="appointment.updated")
        availability_invalidate(organization_id=current.organization_id)
    return current


def appointment_holds_expire(*, organization: Organization | None = None, now: datetime | None = None) -> int:
    """Mark lapsed holds cancelled (their time stopped counting when they lapsed; this makes the
    status say so) and emit ``appointment.cancelled`` for each. Returns how many."""
    now = now or timezone.now()
    lapsed = Appointment.objects.filter(status=Status.HOLD, expires_at__lte=now)
    if organization is not None:
        lapsed = lapsed.filter(organization=organization)
    if not lapsed.exists():
        return 0
    count = 0
    with transaction.atomic():
        for appointment in lapsed.select_for_update().order_by("pk"):
            appointment.status = Status.CANCELLED
            appointment.cancelled_at = appointment.expires_at
            appointment.save(update_fields=["status", "cancelled_at", "updated_at"])
            appointment_event_emit(appointment=_reloaded(appointment.pk), type="appointment.cancelled")
            count += 1
    return count

