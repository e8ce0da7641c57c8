"""Calendly API v2 client: typed results, typed errors, no ORM and no Django settings (callers
pass everything in).

What it speaks (Calendly's developer documentation and OpenAPI document):

- ``GET /users/me`` → ``{"resource": {"uri", "name", "email", "current_organization", …}}``.
- ``GET /organization_memberships?organization=…`` and ``GET /event_types?organization=…``:
  ``{"collection": [...], "pagination": {"next_page": <absolute URL or null>, …}}``; the client
  follows ``next_page`` (only on the configured host, so the token never leaves it).
- ``GET /event_type_available_times?event_type=…&start_time=…&end_time=…``: no pagination;
  ``start_time`` may not be in the past; the span may be at most 31 days (7 until Calendly's
  release of 2026-07-09). The span is asked in chunks of at most ``chunk_days`` days (at most
  ``MAX_AVAILABLE_TIMES_DAYS``) and the results are merged.
- Rate limits are per user and minute (500 on paid plans, 50 on the free one; 429 with
  ``X-RateLimit-Reset``); none is documented on requests in flight at once.
- Errors: ``{"title", "message", "details": [{"parameter", "message"}]}``, mapped to the
  ``CalendlyError`` subclasses below.
- ``429``: wait ``Retry-After`` or ``X-RateLimit-Reset`` (seconds until the window resets) and
  ask again, unless that wait would pass the operation's deadline (``CalendlyRateLimited``).

A client lives for one operation (one directory request, one sync): its deadline counts from
its creation, and every request's timeout is cut to what is left of it. ``available_times_many``
runs its calls on a bounded thread pool (``concurrency`` at a time, one shared connection pool).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Self
from urllib.parse import urlsplit

import httpx

CALENDLY_API_URL = "https://api.calendly.com"
MAX_AVAILABLE_TIMES_DAYS = 31  # Calendly's longest span of one available-times call
DEFAULT_RATE_LIMIT_WAIT = 1.0  # a 429 that names no wait
MAX_429_RETRIES = 5


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendlyUser:
    uri: str
    name: str
    email: str
    organization_uri: str


@dataclass(frozen=True)
class CalendlyMember:
    user_uri: str
    name: str
    email: str
    role: str = ""


@dataclass(frozen=True)
class CalendlyEventType:
    uri: str
    uuid: str  # the last segment of ``uri``
    name: str
    scheduling_url: str
    duration: int | None
    active: bool
    owner_uri: str  # ``profile.owner``: the owning user's (or team's) uri


@dataclass(frozen=True)
class AvailableTime:
    start: datetime  # aware, UTC
    scheduling_url: str = ""
    invitees_remaining: int | None = None


@dataclass
class ClientStats:
    requests: int = 0
    pages: int = 0
    retries_429: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict:
        return {"requests": self.requests, "pages": self.pages, "retries_429": self.retries_429}


# --- errors ----------------------------------------------------------------------------------


class CalendlyError(Exception):
    """Something went wrong talking to Calendly. ``status`` is Calendly's HTTP status (None when
    no answer came), ``title``/``message``/``details`` its error body when it sent one."""

    def __init__(self, message: str, *, status: int | None = None, title: str = "", details: list | None = None):
        super().__init__(message)
        self.status = status
        self.title = title
        self.details = details or []


class CalendlyAuthError(CalendlyError):
    """401/403: the token is invalid, revoked or lacks a scope."""


class CalendlyNotFound(CalendlyError):
    """404: the resource (e.g. an event type) does not exist (any more)."""


class CalendlyBadRequest(CalendlyError):
    """400/422: Calendly refused the parameters."""


class CalendlyUnavailable(CalendlyError):
    """5xx, a refused or dropped connection: Calendly is down or failing."""


class CalendlyTimeout(CalendlyError):
    """No answer within the timeout, or the operation's deadline passed."""


class CalendlyRateLimited(CalendlyError):
    """429 whose wait would pass the deadline (or too many 429s in a row)."""

    def __init__(self, message: str, *, retry_after: float, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class CalendlyProtocolError(CalendlyError):
    """An answer that is not what the API documents (not JSON, a missing field, a foreign
    ``next_page`` host, too many pages)."""


_BY_STATUS: dict[int, type[CalendlyError]] = {
    400: CalendlyBadRequest,
    401: CalendlyAuthError,
    403: CalendlyAuthError,
    404: CalendlyNotFound,
    422: CalendlyBadRequest,
}


def _error_from(response: httpx.Response) -> CalendlyError:
    title, message, details = "", "", []
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        title = str(body.get("title") or "")
        message = str(body.get("message") or "")
        details = body.get("details") if isinstance(body.get("details"), list) else []
    cls = _BY_STATUS.get(response.status_code) or (CalendlyUnavailable if response.status_code >= 500 else CalendlyError)
    text = f"Calendly answered {response.status_code}"
    if title or message:
        text += f" ({': '.join(part for part in (title, message) if part)})"
    for detail in details[:3]:
        if isinstance(detail, dict) and detail.get("message"):
            where = f"{detail['parameter']}: " if detail.get("parameter") else ""
            text += f"; {where}{detail['message']}"
    return cls(text + ".", status=response.status_code, title=title, details=details)


# --- helpers ---------------------------------------------------------------------------------


def calendly_time(value: datetime) -> str:
    """An instant as Calendly's query parameters take it: UTC, ``Z``, microseconds."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_calendly_time(value) -> datetime:
    if not isinstance(value, str):
        raise CalendlyProtocolError(f"Calendly sent a start_time that is not a string: {value!r}.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CalendlyProtocolError(f"Calendly sent a start_time that is not ISO 8601: {value!r}.") from None
    if parsed.tzinfo is None:
        raise CalendlyProtocolError(f"Calendly sent a start_time without offset: {value!r}.")
    return parsed.astimezone(UTC)


def time_chunks(start: datetime, end: datetime, days: int = MAX_AVAILABLE_TIMES_DAYS) -> list[tuple[datetime, datetime]]:
    """``[start, end]`` as consecutive spans of at most ``days`` days (each chunk's end is the next
    one's start; the merge drops the duplicate). An empty or inverted span has no chunks."""
    if end <= start:
        return []
    step = timedelta(days=days)
    out, lo = [], start
    while lo < end:
        hi = min(lo + step, end)
        out.append((lo, hi))
        lo = hi
    return out


def uri_uuid(uri: str) -> str:
    """The UUID of a Calendly resource: the last segment of its ``uri``."""
    return uri.rstrip("/").rsplit("/", 1)[-1]


def _str(item: dict, name: str) -> str:
    value = item.get(name)
    return value if isinstance(value, str) else ""


# --- the client ------------------------------------------------------------------------------


class CalendlyClient:
    def __init__(
        self,
        *,
        token: str,
        base_url: str = CALENDLY_API_URL,
        timeout: float = 10.0,
        deadline: float = 30.0,
        concurrency: int = 20,
        page_size: int = 100,
        max_pages: int = 200,
        chunk_days: int = MAX_AVAILABLE_TIMES_DAYS,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.concurrency = max(1, concurrency)
        self.page_size = page_size
        self.max_pages = max_pages
        if not 1 <= chunk_days <= MAX_AVAILABLE_TIMES_DAYS:
            raise ValueError(f"chunk_days must be between 1 and {MAX_AVAILABLE_TIMES_DAYS}, not {chunk_days}.")
        self.chunk_days = chunk_days
        self.clock, self.sleep = clock, sleep
        self.deadline_at = clock() + deadline
        self.deadline = deadline
        self.stats = ClientStats()
        self._host = urlsplit(self.base_url).netloc
        self._http = httpx.Client(
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            transport=transport,
            limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- one request ---------------------------------------------------------------------

    def _remaining(self) -> float:
        return self.deadline_at - self.clock()

    def _get(self, url: str, params: dict | None = None) -> dict:
        """GET ``url`` (a path under the base URL, or an absolute URL on its host) as JSON,
        honouring 429 within the deadline."""
        if not url.startswith(("http://", "https://")):
            url = self.base_url + url
        elif urlsplit(url).netloc != self._host:
            raise CalendlyProtocolError(f"Calendly pointed to another host ({urlsplit(url).netloc}); not following it.")
        for attempt in range(MAX_429_RETRIES + 1):
            remaining = self._remaining()
            if remaining <= 0:
                raise CalendlyTimeout(f"Calendly did not answer within {self.deadline:g} seconds.")
            per_call = min(self.timeout, remaining)
            self.stats.add(requests=1)
            try:
                response = self._http.get(url, params=params, timeout=per_call)
            except httpx.TimeoutException:
                raise CalendlyTimeout(f"Calendly did not answer within {per_call:.3g} seconds.") from None
            except httpx.TransportError as exc:
                raise CalendlyUnavailable(f"Calendly could not be reached ({type(exc).__name__}).") from None
            if response.status_code == 429:
                wait_for = self._rate_limit_wait(response)
                if attempt == MAX_429_RETRIES or wait_for >= self._remaining():
                    raise CalendlyRateLimited(
                        f"Calendly is rate limiting this organization's token; it asks to retry after {wait_for:g} seconds.",
                        retry_after=wait_for,
                        status=429,
                    )
                self.stats.add(retries_429=1)
                self.sleep(wait_for)
                continue
            if response.status_code >= 300:
                raise _error_from(response)
            try:
                body = response.json()
            except ValueError:
                raise CalendlyProtocolError(f"Calendly answered {response.status_code} with a body that is not JSON.") from None
            if not isinstance(body, dict):
                raise CalendlyProtocolError("Calendly answered with JSON that is not an object.")
            return body
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _rate_limit_wait(response: httpx.Response) -> float:
        for header in ("Retry-After", "X-RateLimit-Reset"):
            value = response.headers.get(header)
            if value is None:
                continue
            try:
                seconds = float(value)
            except ValueError:
                continue
            if seconds >= 0:
                return seconds
        return DEFAULT_RATE_LIMIT_WAIT

    def _collection(self, path: str, params: dict) -> Iterator[dict]:
        """Every item of a paginated collection, following ``pagination.next_page``."""
        url: str | None = path
        query: dict | None = {**params, "count": self.page_size}
        pages = 0
        while url:
            pages += 1
            if pages > self.max_pages:
                raise CalendlyProtocolError(f"Calendly's {path} has more than {self.max_pages} pages; stopped.")
            body = self._get(url, query)
            self.stats.add(pages=1)
            items = body.get("collection")
            if not isinstance(items, list):
                raise CalendlyProtocolError(f"Calendly's {path} answer has no collection.")
            yield from (item for item in items if isinstance(item, dict))
            pagination = body.get("pagination") if isinstance(body.get("pagination"), dict) else {}
            url, query = pagination.get("next_page") or None, None  # next_page carries the whole query

    # --- the endpoints -------------------------------------------------------------------

    def current_user(self) -> CalendlyUser:
        resource = self._get("/users/me").get("resource")
        if not isinstance(resource, dict) or not _str(resource, "uri") or not _str(resource, "current_organization"):
            raise CalendlyProtocolError("Calendly's /users/me answer has no user uri or current_organization.")
        return CalendlyUser(
            uri=resource["uri"],
            name=_str(resource, "name"),
            email=_str(resource, "email"),
            organization_uri=resource["current_organization"],
        )

    def organization_members(self, *, organization_uri: str) -> list[CalendlyMember]:
        out = []
        for item in self._collection("/organization_memberships", {"organization": organization_uri}):
            user = item.get("user") if isinstance(item.get("user"), dict) else {}
            if not _str(user, "uri"):
                continue
            out.append(CalendlyMember(user_uri=user["uri"], name=_str(user, "name"), email=_str(user, "email"), role=_str(item, "role")))
        return out

    def event_types(self, *, organization_uri: str) -> list[CalendlyEventType]:
        out = []
        for item in self._collection("/event_types", {"organization": organization_uri}):
            uri = _str(item, "uri")
            if not uri:
                continue
            profile = item.get("profile") if isinstance(item.get("profile"), dict) else {}
            duration = item.get("duration")
            out.append(
                CalendlyEventType(
                    uri=uri,
                    uuid=uri_uuid(uri),
                    name=_str(item, "name"),
                    scheduling_url=_str(item, "scheduling_url"),
                    duration=duration if isinstance(duration, int) and not isinstance(duration, bool) else None,
                    active=item.get("active") is True,
                    owner_uri=_str(profile, "owner"),
                )
            )
        return out

    def _available_times_chunk(self, event_type_uri: str, start: datetime, end: datetime) -> list[AvailableTime]:
        body = self._get(
            "/event_type_available_times",
            {"event_type": event_type_uri, "start_time": calendly_time(start), "end_time": calendly_time(end)},
        )
        items = body.get("collection")
        if not isinstance(items, list):
            raise CalendlyProtocolError("Calendly's /event_type_available_times answer has no collection.")
        out = []
        for item in items:
            if not isinstance(item, dict) or item.get("status", "available") != "available":
                continue
            remaining = item.get("invitees_remaining")
            out.append(
                AvailableTime(
                    start=parse_calendly_time(item.get("start_time")),
                    scheduling_url=_str(item, "scheduling_url"),
                    invitees_remaining=remaining if isinstance(remaining, int) else None,
                )
            )
        return out

    def available_times(self, *, event_type_uri: str, start: datetime, end: datetime) -> list[AvailableTime]:
        return self.available_times_many([(event_type_uri, start, end)])[0]

    def available_times_many(self, requests: Sequence[tuple[str, datetime, datetime]]) -> list[list[AvailableTime]]:
        """The open start times of each ``(event_type_uri, start, end)``, in ``[start, end]``,
        merged over chunks, deduplicated and sorted. All chunks of all requests run on one pool of
        ``concurrency`` threads; the first failure cancels what has not started and is raised."""
        calls = [(index, uri, lo, hi) for index, (uri, start, end) in enumerate(requests)
                 for lo, hi in time_chunks(start, end, self.chunk_days)]
        results: list[dict[datetime, AvailableTime]] = [{} for _ in requests]
        if not calls:
            return [[] for _ in requests]
        if len(calls) == 1 or self.concurrency == 1:
            chunks = [self._available_times_chunk(uri, lo, hi) for _, uri, lo, hi in calls]
        else:
            pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(calls)), thread_name_prefix="calendly")
            futures = [pool.submit(self._available_times_chunk, uri, lo, hi) for _, uri, lo, hi in calls]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in futures if f in done and f.exception() is not None), None)
            # On failure, calls still in flight end by their own timeout; nobody waits for them.
            pool.shutdown(wait=failed is None, cancel_futures=True)
            if failed is not None:
                raise failed.exception()
            chunks = [future.result() for future in futures]
        for (index, _, _, _), times in zip(calls, chunks, strict=False):
            start, end = requests[index][1], requests[index][2]
            for item in times:
                if start <= item.start <= end:
                    results[index].setdefault(item.start, item)
        return [sorted(merged.values(), key=lambda t: t.start) for merged in results]
