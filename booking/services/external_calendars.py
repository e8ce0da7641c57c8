"""Syncing resources' external calendars into busy intervals (rule 3, ``syncExternal``).

A sync reads the busy events of the next ``EXTERNAL_CALENDAR_SYNC_DAYS`` days and replaces the
calendar's ``ExternalBusy`` rows in one transaction, invalidating cached availability when they
changed. A calendar that fails keeps its last good rows and records the error (shown in the admin).
"""

from __future__ import annotations

import logging
import time as monotonic_time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from booking.availability.selectors import AvailabilityParams, availability_sync_candidates
from booking.external_calendars import BusyEvent, CalendarFetchError, caldav_busy_fetch, ical_busy_fetch
from booking.models import ExternalBusy, ExternalCalendar
from booking.services.invalidation import availability_invalidate
from tenants.crypto import DecryptionError, decrypt_text, encrypt_text
from tenants.models import Organization

logger = logging.getLogger(__name__)


def _resource_zone(calendar: ExternalCalendar) -> str:
    resource = calendar.resource
    if resource.timezone:
        return resource.timezone
    link = resource.service_links.select_related("location").order_by("created_at", "id").first()
    return link.location.timezone if link else calendar.organization.timezone


def external_calendar_password_set(*, calendar: ExternalCalendar, password: str) -> None:
    """Store a CalDAV password encrypted at rest."""
    calendar.password_encrypted = encrypt_text(password)
    calendar.save(update_fields=["password_encrypted", "updated_at"])


def _fetch(calendar: ExternalCalendar, *, timeout: float) -> list[BusyEvent]:
    now = timezone.now()
    start = now - timedelta(days=1)
    end = now + timedelta(days=settings.EXTERNAL_CALENDAR_SYNC_DAYS)
    zone = _resource_zone(calendar)
    guard = {"allow_private": settings.WEBHOOK_ALLOW_PRIVATE_URLS, "allowed_networks": settings.OUTBOUND_ALLOWED_NETWORKS}
    if calendar.kind == ExternalCalendar.Kind.CALDAV:
        try:
            password = decrypt_text(calendar.password_encrypted)
        except DecryptionError as exc:
            raise CalendarFetchError(str(exc)) from exc
        return caldav_busy_fetch(
            url=calendar.url, username=calendar.username, password=password, start=start, end=end, zone=zone,
            timeout=timeout, **guard,
        )
    return ical_busy_fetch(url=calendar.url, start=start, end=end, zone=zone, timeout=timeout, **guard)


def external_calendar_sync(*, calendar: ExternalCalendar, timeout: float | None = None) -> bool:
    """Sync one calendar; True when it succeeded."""
    timeout = timeout if timeout is not None else settings.EXTERNAL_CALENDAR_TIMEOUT_SECONDS
    try:
        events = _fetch(calendar, timeout=timeout)
    except CalendarFetchError as exc:
        ExternalCalendar.objects.filter(pk=calendar.pk).update(last_error=str(exc)[:2000], updated_at=timezone.now())
        calendar.last_error = str(exc)[:2000]
        logger.info("external calendar %s failed to sync: %s", calendar.pk, exc)
        return False
    with transaction.atomic():
        locked = ExternalCalendar.objects.select_for_update().get(pk=calendar.pk)
        before = set(locked.busy.values_list("start", "end", "summary"))
        after = {(event.start, event.end, event.summary) for event in events}
        changed = before != after
        if changed:
            locked.busy.all().delete()
            ExternalBusy.objects.bulk_create(
                [
                    ExternalBusy(calendar=locked, resource_id=locked.resource_id, start=s, end=e, summary=summary)
                    for s, e, summary in sorted(after)
                ]
            )
        now = timezone.now()
        ExternalCalendar.objects.filter(pk=locked.pk).update(last_synced_at=now, last_error="", updated_at=now)
        calendar.last_synced_at, calendar.last_error = now, ""
        if changed:
            availability_invalidate(organization_id=locked.organization_id)
    return True


def external_calendars_sync_for_resources(*, resource_ids: list[str], budget_seconds: float | None = None) -> bool:
    """``syncExternal=true``: sync the candidate resources' calendars within a bounded time. True
    when every one of them synced (a calendar left out for lack of time counts as failed)."""
    budget = budget_seconds if budget_seconds is not None else settings.SYNC_EXTERNAL_BUDGET_SECONDS
    deadline = monotonic_time.monotonic() + budget
    calendars = list(
        ExternalCalendar.objects.filter(resource_id__in=resource_ids)
        .select_related("resource", "organization")
        .order_by("pk")
    )
    ok = True
    for calendar in calendars:
        remaining = deadline - monotonic_time.monotonic()
        if remaining <= 0.05:
            ok = False
            continue
        ok = external_calendar_sync(calendar=calendar, timeout=min(remaining, settings.EXTERNAL_CALENDAR_TIMEOUT_SECONDS)) and ok
    return ok


def availability_external_sync(*, organization: Organization, params: AvailabilityParams) -> bool:
    """``syncExternal=true`` (v3-api.md rule 12): sync the request's candidate resources' calendars
    before its answer is read. False when a sync failed: the answer is then computed from the last
    synced data and not cached. The organization's data version is read again, as the sync may
    have changed it."""
    ok = external_calendars_sync_for_resources(
        resource_ids=availability_sync_candidates(organization=organization, params=params)
    )
    organization.refresh_from_db(fields=["availability_version"])
    return ok


def external_calendars_sync_all() -> dict:
    """The periodic sync (django-q2 schedule): every calendar of every organization."""
    synced = failed = 0
    for calendar in ExternalCalendar.objects.select_related("resource", "organization").order_by("pk").iterator():
        if external_calendar_sync(calendar=calendar):
            synced += 1
        else:
            failed += 1
    return {"synced": synced, "failed": failed}
