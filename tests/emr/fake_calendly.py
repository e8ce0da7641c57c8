"""A fake Calendly API v2 on a loopback port, for tests of the client, the sync and the directory.

It serves ``/users/me``, ``/organization_memberships`` and ``/event_types`` (paged by ``count``
with an absolute ``pagination.next_page``) and ``/event_type_available_times`` (refusing, like
Calendly, spans over ``max_days`` days (31, Calendly's limit since 2026-07-09; 7 before) and
starts in the past), from plain data the test sets. Faults
are queued per path: a status with headers and body (429 with ``Retry-After``, 500, …) or a delay
(a hang). Every request is logged.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

TOKEN = "calendly-test-token"


@dataclass
class Fault:
    path: str  # "/event_type_available_times", …
    status: int = 500
    body: dict | None = None
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (with status 0: then answer normally)
    times: int = 1  # how many requests it applies to (-1: all)


@dataclass
class Logged:
    path: str
    query: dict
    authorization: str
    at: float


class FakeCalendly:
    def __init__(self, *, token: str = TOKEN, max_days: int = 31):
        self.token = token
        self.max_days = max_days
        self.org_uri = ""
        self.me: dict = {}
        self.members: list[dict] = []
        self.event_types: list[dict] = []
        self.times: dict[str, list[str]] = {}  # event type uri -> start times (ISO, Z)
        self.faults: list[Fault] = []
        self.next_page_base = ""  # when set, next_page links point there instead of at this server
        self.log: list[Logged] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    # --- control -----------------------------------------------------------------------------

    def start(self) -> FakeCalendly:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_GET(self):
                fake._handle(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.org_uri = f"{self.url}/organizations/ORG1"
        self.me = {"uri": f"{self.url}/users/OWNER", "name": "Owner", "email": "owner@clinic.test", "current_organization": self.org_uri}
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def user(self, key: str, email: str, name: str = "") -> str:
        uri = f"{self.url}/users/{key}"
        self.members.append({"uri": f"{self.url}/organization_memberships/{key}", "role": "user",
                             "user": {"uri": uri, "name": name or key, "email": email}, "organization": self.org_uri})
        return uri

    def event_type(self, uuid: str, owner_uri: str, name: str = "Visit", *, active: bool = True, duration: int = 30,
                   copy_of: str = "") -> str:
        """An event type; ``copy_of`` a user key makes it that user's copy of a shared one
        (``…/event_types/<key>/<uuid>``: the same UUID, another uri)."""
        uri = f"{self.url}/event_types/{copy_of + '/' if copy_of else ''}{uuid}"
        self.event_types.append({
            "uri": uri, "name": name, "active": active, "slug": uuid, "duration": duration,
            "scheduling_url": f"https://calendly.test/{uuid}", "profile": {"type": "User", "name": name, "owner": owner_uri},
        })
        return uri

    def fail(self, path: str, status: int = 500, *, times: int = 1, body: dict | None = None, headers: dict | None = None,
             delay: float = 0.0) -> None:
        self.faults.append(Fault(path, status, body, headers or {}, delay, times))

    def calls(self, path: str) -> list[Logged]:
        return [entry for entry in self.log if entry.path == path]

    # --- serving -----------------------------------------------------------------------------

    def _send(self, handler, status: int, body: dict, headers: dict | None = None) -> None:
        raw = json.dumps(body).encode()
        self._leave(handler)  # before the answer goes out: its client may send the next request at once
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            handler.send_header(name, str(value))
        handler.end_headers()
        try:
            handler.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _fault_for(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.path == path and fault.times != 0:
                    if fault.times > 0:
                        fault.times -= 1
                    return fault
        return None

    def _handle(self, handler) -> None:
        parts = urlsplit(handler.path)
        query = dict(parse_qsl(parts.query))
        with self._lock:
            self.log.append(Logged(parts.path, query, handler.headers.get("Authorization", ""), time.monotonic()))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        handler.in_flight = True
        try:
            self._answer(handler, parts.path, query)
        finally:
            self._leave(handler)

    def _leave(self, handler) -> None:
        """The request no longer counts as in flight (once, however often called)."""
        with self._lock:
            if getattr(handler, "in_flight", False):
                handler.in_flight = False
                self.in_flight -= 1

    def _answer(self, handler, path: str, query: dict) -> None:
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            return self._send(handler, 401, {"title": "Unauthenticated", "message": "The access token is invalid"})
        fault = self._fault_for(path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status:
                return self._send(handler, fault.status, fault.body or {"title": "Internal Server Error",
                                  "message": "The server encountered an unexpected condition."}, fault.headers)
        if path == "/users/me":
            return self._send(handler, 200, {"resource": self.me})
        if path in ("/organization_memberships", "/event_types"):
            if query.get("organization") != self.org_uri:
                return self._send(handler, 400, {"title": "Invalid Argument", "message": "The supplied parameters are invalid.",
                                                 "details": [{"parameter": "organization", "message": "is invalid"}]})
            items = self.members if path == "/organization_memberships" else self.event_types
            count, offset = int(query.get("count", 20)), int(query.get("page_token", 0))
            page = items[offset:offset + count]
            next_page = None
            if offset + count < len(items):
                next_page = f"{self.next_page_base or self.url}{path}?" + urlencode({"organization": self.org_uri, "count": count, "page_token": offset + count})
            return self._send(handler, 200, {"collection": page, "pagination": {"count": len(page), "next_page": next_page}})
        if path == "/event_type_available_times":
            return self._available_times(handler, query)
        return self._send(handler, 404, {"title": "Resource Not Found", "message": "The server could not find the requested resource."})

    def _available_times(self, handler, query: dict) -> None:
        def invalid(parameter, message):
            return self._send(handler, 400, {"title": "Invalid Argument", "message": "The supplied parameters are invalid.",
                                             "details": [{"parameter": parameter, "message": message}]})

        try:
            start = datetime.fromisoformat(query["start_time"])
            end = datetime.fromisoformat(query["end_time"])
        except (KeyError, ValueError):
            return invalid("start_time", "is required")
        if start < datetime.now(UTC) - timedelta(seconds=1):
            return invalid("start_time", "must be in the future")
        if end - start > timedelta(days=self.max_days):
            return invalid("end_time", f"date range can be no greater than {self.max_days} days")
        uri = query.get("event_type", "")
        if uri not in self.times and uri not in {e["uri"] for e in self.event_types}:
            return self._send(handler, 404, {"title": "Resource Not Found", "message": "The server could not find the requested resource."})
        collection = []
        for value in self.times.get(uri, []):
            at = datetime.fromisoformat(value)
            if start <= at <= end:
                collection.append({"status": "available", "invitees_remaining": 1,
                                   "start_time": at.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
                                   "scheduling_url": f"https://calendly.test/x/{value}"})
        self._send(handler, 200, {"collection": collection})
