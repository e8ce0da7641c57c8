"""Clients for external calendars: an iCalendar feed URL, or a CalDAV calendar.

No ORM here: URLs and credentials in, typed busy intervals out. Every request, each redirect hop
included, goes through the outbound guard webhooks use (``tenants.url_guard``). Busy means an event that is not
cancelled and not transparent ("free"); recurring events are expanded. All-day events and floating
times are read in the zone given (the resource's).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
import requests
import requests.adapters

from tenants.url_guard import UnsafeUrl, pinned_target, url_resolve

MAX_FEED_BYTES = 10 * 1024 * 1024
MAX_EVENTS = 20000
SUMMARY_LENGTH = 200
MAX_REDIRECTS = 3


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


def calendar_url(url: str) -> str:
    """The URL to fetch: ``webcal://`` read as ``https://``; only http(s) and webcal are accepted.
    Which addresses it may reach is the outbound guard's decision (``calendar_session``)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "webcal":
        parts = parts._replace(scheme="https")
    elif scheme not in ("http", "https"):
        raise CalendarFetchError("The calendar URL must be http(s) or webcal.")
    if not parts.hostname:
        raise CalendarFetchError("The calendar URL has no host.")
    return urlunsplit(parts)


class _GuardedAdapter(requests.adapters.HTTPAdapter):
    """Sends every request of a calendar session, each redirect hop included, to an address the
    outbound guard (``tenants.url_guard``) checked just before, keeping the URL's host for the
    ``Host`` header and for TLS (SNI and certificate verification)."""

    def __init__(self, *, allow_private: bool, allowed_networks: tuple[str, ...]):
        super().__init__()
        self.allow_private = allow_private
        self.allowed_networks = allowed_networks

    def send(self, request, **kwargs):
        url = request.url
        try:
            addresses = url_resolve(
                url, allow_private=self.allow_private, require_https=False, allowed_networks=self.allowed_networks
            )
        except UnsafeUrl as exc:
            raise CalendarFetchError(f"{url} is not allowed: it {exc.message}") from None
        had_host = "Host" in request.headers
        try:
            for index, address in enumerate(addresses):
                target = pinned_target(url, address)
                request.url = target.url
                request.headers["Host"] = target.host_header
                request.pinned_hostname = target.sni_hostname
                try:
                    response = super().send(request, **kwargs)
                    break
                except requests.ConnectionError:
                    if index == len(addresses) - 1:
                        raise
        finally:
            # The session resolves redirects against the URL asked for, never the pinned address.
            request.url = url
            if not had_host:
                request.headers.pop("Host", None)
        response.url = url
        return response

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        hostname = getattr(request, "pinned_hostname", None)
        if hostname and host_params.get("scheme") == "https":
            pool_kwargs["server_hostname"] = hostname
            pool_kwargs["assert_hostname"] = hostname
        return host_params, pool_kwargs


def calendar_session(session: requests.Session, *, allow_private: bool, allowed_networks=()) -> requests.Session:
    """``session`` with every request held to the outbound guard: up to ``MAX_REDIRECTS``
    redirects, each hop checked as the first one; no proxies from the environment (a proxy would
    resolve the name itself)."""
    adapter = _GuardedAdapter(allow_private=allow_private, allowed_networks=tuple(allowed_networks))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.max_redirects = MAX_REDIRECTS
    session.trust_env = False
    return session


def ical_busy_fetch(
    *, url: str, start: datetime, end: datetime, zone: str, timeout: float, allow_private: bool = False,
    allowed_networks=(),
) -> list[BusyEvent]:
    """Download an iCalendar feed and read its busy events."""
    target = calendar_url(url)
    try:
        with calendar_session(requests.Session(), allow_private=allow_private, allowed_networks=allowed_networks) as session:
            with session.get(target, headers={"Accept": "text/calendar"}, timeout=timeout, stream=True) as response:
                if response.status_code != 200:
                    raise CalendarFetchError(f"The feed answered HTTP {response.status_code}.")
                chunks, size = [], 0
                for chunk in response.iter_content(chunk_size=65536):
                    size += len(chunk)
                    if size > MAX_FEED_BYTES:
                        raise CalendarFetchError(f"The feed is larger than {MAX_FEED_BYTES} bytes.")
                    chunks.append(chunk)
    except requests.RequestException as exc:
        raise CalendarFetchError(f"Could not fetch the feed: {exc.__class__.__name__}: {exc}") from exc
    return ical_busy_parse(b"".join(chunks), start=start, end=end, zone=zone)


def caldav_busy_fetch(
    *, url: str, username: str, password: str, start: datetime, end: datetime, zone: str, timeout: float,
    allow_private: bool = False, allowed_networks=(),
) -> list[BusyEvent]:
    """Read the busy events of one CalDAV calendar (a time-range REPORT), expanding recurrences
    ourselves so both kinds of calendar are read the same way."""
    import caldav

    target = calendar_url(url)
    try:
        with caldav.DAVClient(
            url=target,
            username=username or None,
            password=password or None,
            timeout=max(1, int(timeout)),
        ) as client:
            calendar_session(client.session, allow_private=allow_private, allowed_networks=allowed_networks)
            calendar = client.calendar(url=target)
            objects = calendar.search(start=start, end=end, event=True, expand=False)
            documents = [obj.data for obj in objects]
    except CalendarFetchError:
        raise
    except Exception as exc:  # noqa: BLE001 - the library raises many kinds
        raise CalendarFetchError(f"CalDAV request failed: {exc.__class__.__name__}: {exc}") from exc
    out: list[BusyEvent] = []
    for document in documents:
        if document:
            out.extend(ical_busy_parse(document.encode() if isinstance(document, str) else document, start=start, end=end, zone=zone))
    out.sort(key=lambda e: (e.start, e.end))
    return out
