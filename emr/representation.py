"""How ``/v1/`` renders cached appointments (Cobalt's field names), shared by the API and the
events the EMR integration emits."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from booking.models import Appointment
from emr.models import EmrConnection, VisitType

# FHIR R4 Appointment.status, the statuses a FHIR EMR reports (``GET /v1/settings``).
FHIR_APPOINTMENT_STATUSES = (
    ("proposed", "Proposed"),
    ("pending", "Pending"),
    ("booked", "Booked"),
    ("arrived", "Arrived"),
    ("checked-in", "Checked in"),
    ("fulfilled", "Fulfilled (checked out)"),
    ("cancelled", "Cancelled"),
    ("noshow", "No show"),
    ("entered-in-error", "Entered in error"),
    ("waitlist", "Waitlist"),
)

STATUS_TEXT = {
    Appointment.Status.BOOKED: "booked",
    Appointment.Status.RESERVED: "pending",
    Appointment.Status.HOLD: "hold",
    Appointment.Status.CANCELLED: "cancelled",
}


def render_local(moment: datetime | None, zone: ZoneInfo, *, millis: bool = False) -> str | None:
    """ISO 8601 in ``zone`` with its offset (``2025-01-15T10:00:00-05:00``; with ``millis``:
    ``2025-01-15T10:00:00.000-05:00``)."""
    if moment is None:
        return None
    local = moment.astimezone(zone).replace(microsecond=0)
    if not millis:
        return local.isoformat()
    return local.strftime("%Y-%m-%dT%H:%M:%S.000") + local.isoformat()[19:]


def visit_type_descriptions(*, connection: EmrConnection) -> dict[str, str]:
    return dict(VisitType.objects.filter(emr_connection=connection).values_list("code", "description"))


def appointment_type_text(code: str, descriptions: dict[str, str]) -> str:
    """``OV (Office Visit)`` when the visit type has a description, else the code."""
    description = descriptions.get(code, "")
    if code and description and description != code:
        return f"{code} ({description})"
    return code


def appointment_status_text(appointment: Appointment) -> str:
    return appointment.ehr_status or STATUS_TEXT.get(appointment.status, appointment.status)


def _related(appointment: Appointment, attr: str, cache: dict | None):
    pk = getattr(appointment, f"{attr}_id")
    if pk is None:
        return None
    if cache is not None and pk in cache:
        return cache[pk]
    return getattr(appointment, attr)


def appointment_v1_representation(
    appointment: Appointment,
    *,
    connection: EmrConnection,
    descriptions: dict[str, str],
    resources: dict | None = None,
    locations: dict | None = None,
    millis: bool = False,
) -> dict:
    zone = ZoneInfo(connection.timezone)
    primary = _related(appointment, "primary_provider", resources)
    secondary = _related(appointment, "secondary_provider", resources)
    location = _related(appointment, "location", locations)
    return {
        "id": str(appointment.pk),
        "ehr_appointment_id": appointment.ehr_appointment_id,
        "datetime": render_local(appointment.start, zone, millis=millis),
        "duration": int((appointment.end - appointment.start).total_seconds() // 60),
        "status": appointment_status_text(appointment),
        "appointment_type": appointment_type_text(appointment.appointment_type, descriptions),
        "provider_ehr_id": primary.ehr_id if primary is not None else None,
        "secondary_provider_ehr_id": secondary.ehr_id if secondary is not None else None,
        "location": location.name if location is not None else (appointment.ehr_location_name or None),
        "location_ehr_id": location.ehr_id if location is not None else None,
        "patient_mrn": appointment.patient_mrn or None,
        "patient_name": appointment.patient_name or None,
        "reason": appointment.reason or None,
        "locked": appointment.ehr_locked,
        "created_at": render_local(appointment.ehr_created_at, zone, millis=millis),
        "created_by": appointment.ehr_created_by or None,
        "object_metadata": {"source": appointment.source},
    }
