"""Clients for external calendars: an iCalendar feed URL, or a CalDAV calendar.

No ORM here: URLs and credentials in, typed busy intervals out. Busy means an event that is not
cancelled and not transparent ("free"); recurring events are expanded. All-day events and floating
times are read in the zone given (the resource's).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import httpx
import icalendar
import recurring_ical_events

MAX_FEED_BYTES = 10 * 1024 * 1024
MAX_EVENTS = 20000
SUMMARY_LENGTH = 200


class CalendarFetchError(Exception):
    """The calendar could not be read; the message says why (shown in the admin)."""


@dataclass(frozen=True)
class BusyEvent:
    start: datetime  # aware, UTC
    end: datetime
    summary: str = ""


def _as_instant(value, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=zone).astimezone(UTC)
    raise CalendarFetchError(f"Unsupported date value {value!r}.")


def ical_busy_parse(data: bytes, *, start: datetime, end: datetime, zone: str) -> list[BusyEvent]:
    """The busy events of an iCalendar document overlapping ``[start, end)``."""
    tz = ZoneInfo(zone)
    try:
        calendar = icalendar.Calendar.from_ical(data)
        occurrences = recurring_ical_events.of(calendar).between(start, end)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the feed's fault
        raise CalendarFetchError(f"Not a readable iCalendar document: {exc}") from exc
    out = []
    for event in occurrences:
        if event.name != "VEVENT":
            continue
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            continue
        if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
            continue
        dtstart = event.get("DTSTART")
        if dtstart is None:
            continue
        begins = _as_instant(dtstart.dt, tz)
        if event.get("DTEND") is not None:
            ends = _as_instant(event.get("DTEND").dt, tz)
        elif event.get("DURATION") is not None:
            ends = begins + event.get("DURATION").dt
        elif isinstance(dtstart.dt, datetime):
            ends = begins  # RFC 5545: no end, no duration: an instant
        else:
            ends = _as_instant(dtstart.dt + timedelta(days=1), tz)
        if ends <= begins:
            continue
        out.append(BusyEvent(begins, ends, str(event.get("SUMMARY", ""))[:SUMMARY_LENGTH]))
        if len(out) > MAX_EVENTS:
            raise CalendarFetchError(f"More than {MAX_EVENTS} busy events in the sync window.")
    out.sort(key=lambda e: (e.start, e.end))
    return out


def url_check(url: str, *, allow_private: bool) -> str:
    """The URL to fetch (``webcal://`` read as ``https://``), refusing hosts on private or loopback
    addresses unless ``allow_private``."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "webcal":
        parts = parts._replace(scheme="https")
    elif scheme not in ("http", "https"):
        raise CalendarFetchError("The calendar URL must be http(s) or webcal.")
    if not parts.hostname:
        raise CalendarFetchError("The calendar URL has no host.")
    if not allow_private:
        try:
            infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            raise CalendarFetchError(f"Cannot resolve {parts.hostname}: {exc}") from exc
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if not address.is_global:
                raise CalendarFetchError(f"{parts.hostname} resolves to a private address ({address}).")
    return urlunsplit(parts)


def ical_busy_fetch(
    *, url: str, start: datetime, end: datetime, zone: str, timeout: float, allow_private: bool = False
) -> list[BusyEvent]:
    """Download an iCalendar feed and read its busy events."""
    target = url_check(url, allow_private=allow_private)
    try:
        with httpx.Client(timeout=timeout, follow_redirects=True, max_redirects=3) as client:
            with client.stream("GET", target, headers={"Accept": "text/calendar"}) as response:
                if response.status_code != 200:
                    raise CalendarFetchError(f"The feed answered HTTP {response.status_code}.")
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > MAX_FEED_BYTES:
                        raise CalendarFetchError(f"The feed is larger than {MAX_FEED_BYTES} bytes.")
                    chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise CalendarFetchError(f"Could not fetch the feed: {exc.__class__.__name__}: {exc}") from exc
    return ical_busy_parse(b"".join(chunks), start=start, end=end, zone=zone)


def caldav_busy_fetch(
    *, url: str, username: str, password: str, start: datetime, end: datetime, zone: str, timeout: float,
    allow_private: bool = False,
) -> list[BusyEvent]:
    """Read the busy events of one CalDAV calendar (a time-range REPORT), expanding recurrences
    ourselves so both kinds of calendar are read the same way."""
    import caldav

    target = url_check(url, allow_private=allow_private)
    try:
        with caldav.DAVClient(
            url=target,
            username=username or None,
            password=password or None,
            timeout=max(1, int(timeout)),
        ) as client:
            calendar = client.calendar(url=target)
            objects = calendar.search(start=start, end=end, event=True, expand=False)
            documents = [obj.data for obj in objects]
    except Exception as exc:  # noqa: BLE001 - the library raises many kinds
        raise CalendarFetchError(f"CalDAV request failed: {exc.__class__.__name__}: {exc}") from exc
    out: list[BusyEvent] = []
    for document in documents:
        if document:
            out.extend(ical_busy_parse(document.encode() if isinstance(document, str) else document, start=start, end=end, zone=zone))
    out.sort(key=lambda e: (e.start, e.end))
    return out
