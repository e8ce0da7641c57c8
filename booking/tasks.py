"""Background work run by django-q2 (schedules are created by migration ``0002``)."""

from __future__ import annotations

from booking.services.appointments import appointment_holds_expire
from booking.services.external_calendars import external_calendar_sync, external_calendars_sync_all


def external_calendars_sync() -> dict:
    """Every 15 minutes (``EXTERNAL_CALENDAR_SYNC_MINUTES``): sync every external calendar."""
    return external_calendars_sync_all()


def external_calendar_sync_one(calendar_id: str) -> bool:
    """On demand (the admin's "Sync now")."""
    from booking.models import ExternalCalendar

    calendar = ExternalCalendar.objects.select_related("resource", "organization").filter(pk=calendar_id).first()
    return bool(calendar) and external_calendar_sync(calendar=calendar)


def holds_expire() -> int:
    """Every minute: lapsed holds become cancelled (their time was already free)."""
    return appointment_holds_expire()
