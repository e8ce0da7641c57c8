"""Reads for ``GET /api/v1/provider-availability``: which of the organization's providers match,
their synced Calendly event types, and (for a time window) their open start times from Calendly.

A provider matches when it is an active resource of type provider, licensed in at least one
requested state and, when asked, has that email. Items are ordered by provider name, then event
type name. With a window, Calendly's ``/event_type_available_times`` is asked for every matching
event type at once (``CalendlyClient.available_times_many``: chunks of at most ``CALENDLY_CHUNK_DAYS``
days, bounded concurrency); answers are cached for ``CALENDLY_CACHE_SECONDS`` under the connection's
``cache_version`` (bumped by every sync). Any upstream failure fails the whole answer: a list is
never presented as complete when part of it could not be read.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from booking.models import ActiveStatus, Resource
from emr.calendly import CalendlyNotFound
from emr.models import CalendlyConnection, CalendlyEventType
from tenants.models import Organization

# Calendly refuses a start_time in the past; the window is asked from a little after now, so a
# request that left here "now" is not "the past" when it arrives (clocks differ by a little too).
START_MARGIN = timedelta(seconds=5)
MESSAGE = "Providers Availability link fetched successfully"


@dataclass(frozen=True)
class DirectoryQuery:
    """A validated request: states upper-cased, the email trimmed and lowercased, and the window
    (both ends or neither) as aware instants."""

    states: frozenset[str]
    email: str | None = None
    event_type_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class _Match:
    resource: Resource
    event_type: CalendlyEventType


def _matches(*, organization: Organization, connection: CalendlyConnection, query: DirectoryQuery) -> list[_Match]:
    rows = CalendlyEventType.objects.filter(
        organization=organization,
        connection=connection,
        active=True,
        calendly_user__resource__type=Resource.Type.PROVIDER,
        calendly_user__resource__status=ActiveStatus.ACTIVE,
        calendly_user__resource__organization=organization,
    ).select_related("calendly_user__resource").only(
        # What matching, ordering and the answer read, and no more: the cached answer's query.
        "uri", "name", "scheduling_url", "event_type_id", "calendly_user__id",
        "calendly_user__resource__id", "calendly_user__resource__name", "calendly_user__resource__email",
        "calendly_user__resource__licensed_states",
    )
    if query.event_type_id is not None:
        rows = rows.filter(event_type_id=query.event_type_id)
    out = []
    for row in rows:
        resource = row.calendly_user.resource
        states = {str(code).strip().upper() for code in resource.licensed_states or ()}
        if not states & query.states:
            continue
        if query.email is not None and resource.email.strip().lower() != query.email:
            continue
        out.append(_Match(resource, row))
    out.sort(key=lambda m: (m.resource.name, m.event_type.name, str(m.resource.pk), m.event_type.uri))
    return out


def _utc(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``; the link's form ends ``+00:00`` instead of ``Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cache_key(connection: CalendlyConnection, uri: str) -> str:
    digest = hashlib.sha256(uri.encode()).hexdigest()[:32]
    return f"calendly-times:{connection.organization_id}:{connection.cache_version}:{digest}"


def available_times_for(
    *, connection: CalendlyConnection, uris: list[str], start: datetime, end: datetime
) -> dict[str, list[int]]:
    """Open start times (epoch seconds, sorted) in ``[start, end]`` per event type uri: from the
    cache when a fresh entry covers the window, else from Calendly (all missing ones at once).
    Raises ``CalendlyError`` (404 for an event type gone since the sync: no times)."""
    from emr.services.calendly import calendly_client

    lo, hi = math.ceil(start.timestamp()), math.floor(end.timestamp())
    keys = {uri: _cache_key(connection, uri) for uri in uris}
    cached = cache.get_many(list(keys.values())) if settings.CALENDLY_CACHE_SECONDS > 0 else {}
    out: dict[str, list[int]] = {}
    missing = []
    for uri in uris:
        entry = cached.get(keys[uri])
        if entry is not None and entry[0] <= lo and hi <= entry[1]:
            out[uri] = [t for t in entry[2] if lo <= t <= hi]
        else:
            missing.append(uri)
    if not missing:
        return out
    with calendly_client(connection=connection) as client:
        try:
            answers = client.available_times_many([(uri, start, end) for uri in missing])
        except CalendlyNotFound:
            # One event type vanished since the sync: ask the others alone, so its absence
            # (no open times) doesn't fail the rest; each 404 just has no times.
            answers = []
            for uri in missing:
                try:
                    answers.append(client.available_times(event_type_uri=uri, start=start, end=end))
                except CalendlyNotFound:
                    answers.append([])
    fresh = {}
    for uri, times in zip(missing, answers, strict=False):
        epochs = sorted({int(t.start.timestamp()) for t in times})
        out[uri] = epochs
        fresh[keys[uri]] = (lo, hi, epochs)
    if settings.CALENDLY_CACHE_SECONDS > 0:
        cache.set_many(fresh, timeout=settings.CALENDLY_CACHE_SECONDS)
    return out


def provider_directory(*, organization: Organization, query: DirectoryQuery, now: datetime | None = None) -> list[dict]:
    """The ``data`` of the answer. Raises ``CalendlyError`` when Calendly could not be read."""
    connection = CalendlyConnection.objects.filter(organization=organization, is_active=True).first()
    if connection is None:
        return []
    matches = _matches(organization=organization, connection=connection, query=query)
    if query.start is None:
        return [
            {"providerName": m.resource.name, "calendlyLink": m.event_type.scheduling_url, "eventTypeId": m.event_type.event_type_id}
            for m in matches
        ]
    now = now or timezone.now()
    start = max(query.start, now + START_MARGIN)
    if not matches or query.end < start:
        return []
    uris = list(dict.fromkeys(m.event_type.uri for m in matches))
    times = available_times_for(connection=connection, uris=uris, start=start, end=query.end)
    # Providers sharing an event type share most start times: each instant is formatted once.
    texts: dict[int, str] = {}

    def text(epoch: int) -> str:
        value = texts.get(epoch)
        if value is None:
            value = texts[epoch] = _utc(datetime.fromtimestamp(epoch, UTC))
        return value

    data = []
    for m in matches:
        epochs = times.get(m.event_type.uri, ())
        if not epochs:
            continue
        data.append(
            {
                "providerName": m.resource.name,
                "calendlyLink": f"{m.event_type.scheduling_url.rstrip('/')}/{text(epochs[0])[:-1]}+00:00",
                "startTime": [text(t) for t in epochs],
                "eventTypeId": m.event_type.event_type_id,
            }
        )
    return data
