"""A real FHIR R4 server on a loopback port for fault injection.

It answers with the sandbox EMR's own code (``emr.sandbox.server`` for searches,
``emr.sandbox.tokens`` for SMART Backend Services), or with a fixed set of resources (the HL7
examples), and can be told to fail: a status (429 with ``Retry-After``, 500, an OperationOutcome
400) on the N-th request for a resource type, tokens that stop working mid-fetch, a token endpoint
that rejects the client. Every request is logged for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from emr.sandbox import data, server, tokens


@dataclass
class Fault:
    resource_type: str  # "Appointment", "token", …
    on_call: int  # 1-based count of requests for that resource type
    status: int
    body: dict | None = None
    headers: dict = field(default_factory=dict)
    expire_tokens: bool = False  # instead of answering: invalidate every token issued so far


@dataclass
class LoggedRequest:
    method: str
    resource_type: str
    query: list
    authorization: str
    status: int = 0


class FakeFhirServer:
    def __init__(self, *, dataset: data.SandboxDataset | None = None, static: dict[str, list[dict]] | None = None, token_ttl: int = 300):
        self.dataset = dataset or data.SandboxDataset.for_now()
        self.static = static
        self.token_ttl = token_ttl
        self.secret = "fake-fhir-secret"
        self.clients: dict[str, dict] = {}
        self.faults: list[Fault] = []
        self.calls: dict[str, int] = {}
        self.log: list[LoggedRequest] = []
        self.generation = 0
        self.reject_clients = False
        self.hidden: set[str] = set()  # resource ids left out of every answer (deleted in the EMR)
        self.overrides: dict[str, dict] = {}  # resource id -> fields replaced in every answer
        self._jti: set[str] = set()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    # --- control ---------------------------------------------------------------------------

    def start(self) -> FakeFhirServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # headers and body go out without a 40 ms delayed-ACK wait

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                fake._handle(self, "GET")

            def do_POST(self):
                fake._handle(self, "POST")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/fhir"

    def register(self, client_id: str, jwks: dict) -> None:
        self.clients[client_id] = jwks

    def fail(self, resource_type: str, *, on_call: int, status: int, body: dict | None = None, headers: dict | None = None) -> None:
        self.faults.append(Fault(resource_type, on_call, status, body, headers or {}))

    def expire_tokens(self, resource_type: str, *, on_call: int) -> None:
        self.faults.append(Fault(resource_type, on_call, 0, expire_tokens=True))

    def requests_for(self, resource_type: str) -> list[LoggedRequest]:
        return [r for r in self.log if r.resource_type == resource_type]

    # --- serving ---------------------------------------------------------------------------

    def _send(self, handler, status: int, body: dict, headers: dict | None = None, entry: LoggedRequest | None = None) -> None:
        raw = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/fhir+json")
        handler.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(raw)
        if entry is not None:
            entry.status = status

    def _handle(self, handler, method: str) -> None:
        parts = urlsplit(handler.path)
        path = parts.path.removeprefix("/fhir").strip("/")
        query = parse_qsl(parts.query, keep_blank_values=True)
        resource_type = "token" if path == "auth/token" else path.split("/")[0]
        entry = LoggedRequest(method, resource_type, query, handler.headers.get("Authorization", ""))
        with self._lock:
            self.log.append(entry)
            self.calls[resource_type] = self.calls.get(resource_type, 0) + 1
            call = self.calls[resource_type]
            faults = [f for f in self.faults if f.resource_type == resource_type and f.on_call == call]
        for fault in faults:
            if fault.expire_tokens:
                self.generation += 1
            else:
                body = fault.body or server.operation_outcome("throttled" if fault.status == 429 else "exception", f"Injected HTTP {fault.status}")
                return self._send(handler, fault.status, body, fault.headers, entry)

        if path == "metadata":
            return self._send(handler, 200, server.capability_statement(self.url), entry=entry)
        if path == ".well-known/smart-configuration":
            return self._send(handler, 200, server.smart_configuration(self.url), entry=entry)
        if path == "auth/token" and method == "POST":
            length = int(handler.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(handler.rfile.read(length).decode()))
            status, body = tokens.token_request_handle(
                form,
                audience=f"{self.url}/auth/token",
                jwks_for=lambda cid: None if self.reject_clients else self.clients.get(cid),
                now=time.time(),
                remember_jti=self._remember,
                secret=self.secret,
                ttl=self.token_ttl,
                extra={"gen": self.generation},
            )
            return self._send(handler, status, body, entry=entry)

        auth = handler.headers.get("Authorization", "")
        try:
            claims = tokens.access_token_verify(auth.removeprefix("Bearer ").strip(), secret=self.secret, now=time.time())
            if claims.get("gen") != self.generation:
                raise tokens.TokenError("invalid_token", "Access token has expired.")
        except tokens.TokenError as exc:
            return self._send(handler, 401, server.operation_outcome("login", exc.description), {"WWW-Authenticate": "Bearer"}, entry)

        segments = path.split("/")
        if self.static is not None:
            return self._send(handler, 200, self._static_bundle(segments[0], query), entry=entry)
        if len(segments) == 2:
            status, body = server.handle_read(self.dataset, segments[0], segments[1])
        else:
            status, body = server.handle_search(self.dataset, segments[0], query, base_url=self.url)
            if status == 200 and (self.hidden or self.overrides):
                body["entry"] = [
                    {**e, "resource": {**e["resource"], **self.overrides.get(e["resource"]["id"], {})}}
                    for e in body["entry"]
                    if e["resource"]["id"] not in self.hidden
                ]
        return self._send(handler, status, body, entry=entry)

    def _remember(self, jti: str, _exp: float) -> bool:
        with self._lock:
            if jti in self._jti:
                return False
            self._jti.add(jti)
            return True

    def _static_bundle(self, resource_type: str, query) -> dict:
        """Fixed resources: every resource of the type matches; for Appointment searches the
        other fixture resources are included (as a server does for ``_include``)."""
        matches = self.static.get(resource_type, [])
        entries = [{"resource": r, "search": {"mode": "match"}} for r in matches]
        if resource_type == "Appointment" and any(k == "_include" for k, _ in query):
            for kind in ("Patient", "Practitioner", "Location"):
                entries += [{"resource": r, "search": {"mode": "include"}} for r in self.static.get(kind, [])]
        return {"resourceType": "Bundle", "type": "searchset", "total": len(matches), "entry": entries}
