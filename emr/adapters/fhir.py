"""FHIR R4 adapter (eClinicalWorks, any FHIR R4 server, and the built-in sandbox EMR).

Transport
---------
* httpx, one client per adapter; connect/read timeouts from ``ConnectionConfig.timeout_seconds``.
* Auth (``ConnectionConfig.auth``):
  - ``smart_backend`` (SMART Backend Services, what eClinicalWorks uses): a JWT client assertion
    signed RS384 with the connection's private key (``iss`` = ``sub`` = client id, ``aud`` = the
    token endpoint, ``exp`` ≤ 5 minutes, a fresh ``jti``, header ``kid``), exchanged at the token
    endpoint with ``grant_type=client_credentials`` and
    ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer``. The token
    endpoint is ``token_url`` or discovered from ``.well-known/smart-configuration`` (then the
    CapabilityStatement's oauth-uris extension).
  - ``client_secret``: the same grant with HTTP Basic ``client_id:client_secret``.
  - ``none``: no Authorization header.
  Access tokens are cached per connection in process memory until shortly before they expire
  (eClinicalWorks: 5-minute tokens, no refresh token); a 401 drops the cached token, mints a new
  one and repeats the call once; a second 401 is an ``EmrAuthError`` (login required).
* Searches return ``searchset`` Bundles; pages are followed by their ``next`` link (only on the
  same origin as the base URL, so the token never leaves for another host) up to ``max_pages``.
* 429: wait ``Retry-After`` (seconds or HTTP date; 2^n seconds when absent; at most 120) and
  retry, at most 6 times; the wait is also written to the connection's shared token bucket so
  other workers hold off too. Every call first takes a token from that bucket
  (``ConnectionConfig.rate_per_minute``; eClinicalWorks: 250).
* 5xx, timeouts and network errors: retried (``transient_retries``, 3 by default) with backoff,
  then ``EmrUnavailable``.
* Other 4xx: ``EmrRequestError`` (403: ``EmrAuthError``) whose message carries the
  OperationOutcome's issues (``severity code: diagnostics``).

Mapping from FHIR R4 to our models
----------------------------------
Practitioner → provider resource (``booking.Resource``, type provider)
  ``id`` → ``ehr_id``; ``name`` (the ``official`` HumanName, else the first): ``text`` or
  given + family → ``name`` (first given → first name, family → last name); identifier with system
  ``http://hl7.org/fhir/sid/us-npi`` → ``npi``; ``active`` → status (on creation only).
Location → location (``booking.Location``)
  ``id`` → ``ehr_id``; ``name``; ``address`` (``text``, else lines, city, state, postal code) →
  ``address``; extension ``http://hl7.org/fhir/StructureDefinition/timezone`` → ``timezone``
  (else the connection's zone); ``status`` active|suspended|inactive → active unless inactive.
Appointment → appointment (``booking.Appointment``, source ``emr``)
  ``id`` → ``ehr_appointment_id``; ``start``/``end`` (or ``start`` + ``minutesDuration``) →
  start/end (appointments without a time, e.g. waitlist entries, are skipped); ``status`` →
  ``ehr_status``, and our status is Cancelled for cancelled, noshow, entered-in-error and
  waitlist, Booked otherwise; ``appointmentType`` (first coding's code/display, else its text;
  else the first ``serviceType``) → visit type (``appointment_type`` holds the code); reason:
  ``reasonCode`` text/display, else ``reasonReference`` display, else ``description``;
  participants: ``Practitioner`` actors → primary provider (the one typed PPRF, else the first)
  and secondary provider (the one typed SPRF, else the next); the ``Patient`` actor → patient:
  its identifier in ``mrn_system`` (else the one typed ``MR``, else the first) → ``patient_mrn``,
  its name → ``patient_name`` (patients come from ``_include=Appointment:patient``, or are read
  by ``Patient?_id=`` when a server ignores includes); the ``Location`` actor → location;
  ``created`` → ``ehr_created_at``; the ``Provenance`` targeting it (``_revinclude``, MRN
  searches) → ``ehr_created_by`` (its first agent's ``who.display``); a ``meta.tag`` or
  ``meta.security`` code ``locked`` → ``ehr_locked``. PractitionerRole actors are not resolved.
Schedule + Slot → shifts (``booking.Shift``) and visit-type rules (``booking.VisitTypeRule``)
  Each active Schedule names a Practitioner (and optionally a Location) in ``actor``. Its Slots
  (status free, busy or busy-tentative; busy-unavailable is time off) over the sync horizon are
  read in the practitioner's zone (its schedules' location zone; several zones: the one most of
  its slots are in; no location: the connection's), which becomes the provider's ``timezone``,
  and merged per local date into windows of back-to-back slots. A
  window (weekday, start, end) seen on several dates is one weekly shift; the gaps between its
  dates, in weeks, give ``every_weeks`` (their greatest common divisor, so a missed holiday keeps
  it weekly); an every-N-weeks shift is anchored on its first date (``valid_from``); a window
  seen once is valid on that date only. ``planningHorizon`` start/end bound the validity.
  Within a window, each run of consecutive slots with the same ``appointmentType`` (else
  ``serviceType``) is a visit-type rule with ``total_visits`` = the number of slots (the most
  frequent run layout across the window's dates wins).

Searches this adapter sends (the sandbox EMR implements exactly these):
  ``Appointment?date=ge…&date=lt…``, ``Appointment?practitioner=Practitioner/a,Practitioner/b``,
  ``Appointment?patient=Patient/x`` (after ``Patient?identifier=[system|]mrn``), all with
  ``_include=Appointment:patient|practitioner|location`` (MRN: ``_revinclude=Provenance:target``);
  ``Practitioner``, ``Location``, ``Schedule?active=true``, ``Slot?start=ge…&start=lt…``,
  ``Patient?_id=a,b``; ``_count`` on each.
"""

from __future__ import annotations

import email.utils
import threading
import time as time_module
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import httpx
import jwt

from emr.adapters.base import (
    AuthMode,
    CallStats,
    ConnectionConfig,
    EmrAdapter,
    EmrAppointment,
    EmrAuthError,
    EmrLocation,
    EmrNotConfigured,
    EmrProvider,
    EmrRateLimited,
    EmrRequestError,
    EmrResponseError,
    EmrShift,
    EmrUnavailable,
)
from emr.adapters.fhir_mapping import (  # noqa: F401  (re-exported: the mapping is part of this adapter)
    MIDNIGHT,
    fhir_instant,
    fhir_instant_parse,
    human_name,
    map_appointment,
    map_location,
    map_practitioner,
    parse_date_time,
    patient_mrn,
    reference_id,
    shifts_from_slots,
    valid_zone,
)

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
OAUTH_URIS_EXTENSION = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"

MAX_429_RETRIES = 6
MAX_RETRY_AFTER_SECONDS = 120.0
ASSERTION_LIFETIME_SECONDS = 300
PATIENT_ID_CHUNK = 50

_token_lock = threading.Lock()
_token_cache: dict[tuple, tuple[str, float]] = {}  # (connection key, client id, token url) -> (token, use until)
_discovery_cache: dict[str, str] = {}  # base url -> token url


def token_cache_clear() -> None:
    with _token_lock:
        _token_cache.clear()
        _discovery_cache.clear()


# --- transport helpers -----------------------------------------------------------------------


def operation_outcome_text(response: httpx.Response) -> str:
    """The issues of an OperationOutcome body, or the start of whatever the body is."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        issues = []
        for issue in body.get("issue") or []:
            if not isinstance(issue, dict):
                continue
            detail = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or ""
            issues.append(f"{issue.get('severity', 'error')} {issue.get('code', 'unknown')}: {detail}".strip(": "))
        if issues:
            return "; ".join(issues)[:500]
    if isinstance(body, dict) and body.get("error"):  # OAuth error body
        return f"{body['error']}: {body.get('error_description', '')}".strip(": ")[:500]
    text = response.text.strip()
    return text[:200] if text else response.reason_phrase


def retry_after_seconds(response: httpx.Response, default: float) -> float:
    value = response.headers.get("Retry-After")
    if not value:
        return default
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# --- the adapter -----------------------------------------------------------------------------


class FhirAdapter(EmrAdapter):
    def __init__(
        self,
        config: ConnectionConfig,
        *,
        throttle=None,
        http_client: httpx.Client | None = None,
        sleep=time_module.sleep,
        clock=time_module.time,
    ):
        if not config.base_url:
            raise EmrNotConfigured("The EMR connection has no base URL configured.")
        parts = urlsplit(config.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise EmrNotConfigured(f"The EMR connection's base URL {config.base_url!r} is not an http(s) URL.")
        if config.auth not in AuthMode.ALL:
            raise EmrNotConfigured(f"Unknown auth mode {config.auth!r}; use one of {', '.join(AuthMode.ALL)}.")
        self.config = config
        self.base = config.base_url.rstrip("/")
        self._origin = (parts.scheme, parts.netloc.lower())
        self.zone = ZoneInfo(valid_zone(config.timezone) or "UTC")
        from emr.ratelimit import NoThrottle

        self.throttle = throttle or NoThrottle()
        self._own_client = http_client is None
        self.client = http_client or httpx.Client(
            timeout=httpx.Timeout(config.timeout_seconds, connect=min(10.0, config.timeout_seconds)),
            headers={"Accept": "application/fhir+json", "User-Agent": "scheduling-backend/1.0"},
            follow_redirects=False,
        )
        self.sleep = sleep
        self.clock = clock
        self.stats = CallStats()
        self._locations_cache: list[EmrLocation] | None = None

    def close(self) -> None:
        if self._own_client:
            self.client.close()

    # --- auth ---------------------------------------------------------------------------

    def _token_url(self) -> str:
        if self.config.token_url:
            return self.config.token_url
        with _token_lock:
            cached = _discovery_cache.get(self.base)
        if cached:
            return cached
        url = None
        try:
            response = self._send("GET", f"{self.base}/.well-known/smart-configuration", authenticated=False, what="reading the SMART configuration")
            url = response.json().get("token_endpoint")
        except (EmrRequestError, ValueError, AttributeError):
            url = None
        if not url:
            try:
                response = self._send("GET", f"{self.base}/metadata", authenticated=False, what="reading the CapabilityStatement")
                for rest in response.json().get("rest") or []:
                    for ext in ((rest.get("security") or {}).get("extension")) or []:
                        if ext.get("url") == OAUTH_URIS_EXTENSION:
                            url = next((e.get("valueUri") for e in ext.get("extension") or [] if e.get("url") == "token"), None)
            except (EmrRequestError, ValueError, AttributeError):
                url = None
        if not url or not isinstance(url, str):
            raise EmrNotConfigured("The EMR publishes no token endpoint (.well-known/smart-configuration); configure token_url.")
        url = urljoin(self.base + "/", url)
        with _token_lock:
            _discovery_cache[self.base] = url
        return url

    def _token_key(self) -> tuple:
        return (self.config.key, self.config.client_id, self.config.token_url or self.base)

    def _drop_token(self) -> None:
        with _token_lock:
            _token_cache.pop(self._token_key(), None)

    def _access_token(self) -> str | None:
        if self.config.auth == AuthMode.NONE:
            return None
        key = self._token_key()
        with _token_lock:
            cached = _token_cache.get(key)
        if cached and cached[1] > self.clock():
            return cached[0]
        token, expires_in = self._mint_token()
        margin = min(30.0, expires_in * 0.2)
        with _token_lock:
            _token_cache[key] = (token, self.clock() + expires_in - margin)
        return token

    def _client_assertion(self, token_url: str) -> str:
        config = self.config
        if not config.client_id or not config.private_key_pem:
            raise EmrNotConfigured("SMART Backend Services needs the connection's client id and private key.")
        now = int(self.clock())
        headers = {"typ": "JWT"}
        if config.kid:
            headers["kid"] = config.kid
        try:
            return jwt.encode(
                {
                    "iss": config.client_id,
                    "sub": config.client_id,
                    "aud": token_url,
                    "iat": now,
                    "exp": now + ASSERTION_LIFETIME_SECONDS,
                    "jti": uuid.uuid4().hex,
                },
                config.private_key_pem,
                algorithm="RS384",
                headers=headers,
            )
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise EmrNotConfigured(f"The connection's private key cannot sign the client assertion: {exc}") from None

    def _mint_token(self) -> tuple[str, float]:
        config = self.config
        token_url = self._token_url()
        form = {"grant_type": "client_credentials", "scope": config.scope}
        basic = None
        if config.auth == AuthMode.SMART_BACKEND:
            form["client_assertion_type"] = CLIENT_ASSERTION_TYPE
            form["client_assertion"] = self._client_assertion(token_url)
        else:
            if not config.client_id or not config.client_secret:
                raise EmrNotConfigured("The client_secret auth mode needs a client id and a client secret.")
            basic = (config.client_id, config.client_secret)
        try:
            response = self._send("POST", token_url, data=form, basic=basic, authenticated=False, what="requesting an access token")
        except EmrRequestError as exc:
            raise EmrAuthError(
                f"The EMR's token endpoint refused our credentials (HTTP {exc.status}): {exc.detail.rstrip('.')}.",
                status=exc.status,
                detail=exc.detail,
            ) from None
        self.stats.tokens_minted += 1
        try:
            body = response.json()
            token = body["access_token"]
            expires_in = float(body.get("expires_in") or 300)
        except (ValueError, KeyError, TypeError):
            raise EmrResponseError("The EMR's token endpoint answered without an access_token.") from None
        if not isinstance(token, str) or not token:
            raise EmrResponseError("The EMR's token endpoint answered without an access_token.")
        return token, max(1.0, expires_in)

    # --- HTTP ---------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        params=None,
        data=None,
        basic=None,
        authenticated: bool = True,
        what: str = "",
    ) -> httpx.Response:
        attempts_429 = attempts_transient = 0
        reminted = False
        while True:
            self.throttle.acquire()
            headers = {}
            if authenticated:
                token = self._access_token()
                if token:
                    headers["Authorization"] = f"Bearer {token}"
            try:
                self.stats.requests += 1
                response = self.client.request(method, url, params=params, data=data, headers=headers, auth=basic)
            except httpx.TimeoutException:
                attempts_transient += 1
                if attempts_transient > self.config.transient_retries:
                    raise EmrUnavailable(
                        f"The EMR did not answer within {self.config.timeout_seconds:g} seconds ({what})."
                    ) from None
                self.stats.retries_other += 1
                self.sleep(min(2.0, 0.5 * 2 ** (attempts_transient - 1)))
                continue
            except httpx.HTTPError as exc:
                attempts_transient += 1
                if attempts_transient > self.config.transient_retries:
                    raise EmrUnavailable(f"The EMR could not be reached ({what}): {exc}.") from None
                self.stats.retries_other += 1
                self.sleep(min(2.0, 0.5 * 2 ** (attempts_transient - 1)))
                continue

            status = response.status_code
            if status == 401 and authenticated and self.config.auth != AuthMode.NONE:
                if reminted:
                    raise EmrAuthError(
                        f"The EMR rejected a freshly issued access token ({what}): {operation_outcome_text(response).rstrip('.')}.",
                        status=401,
                    )
                reminted = True
                self.stats.retries_401 += 1
                self._drop_token()
                continue
            if status == 429:
                attempts_429 += 1
                if attempts_429 > MAX_429_RETRIES:
                    raise EmrRateLimited(
                        f"The EMR kept answering 429 Too Many Requests ({what}) after {MAX_429_RETRIES} retries.",
                        status=429,
                    )
                wait = min(MAX_RETRY_AFTER_SECONDS, retry_after_seconds(response, default=float(2**attempts_429)))
                self.stats.retries_429 += 1
                self.throttle.pause(wait)
                self.sleep(wait)
                continue
            if status in (500, 502, 503, 504):
                attempts_transient += 1
                if attempts_transient > self.config.transient_retries:
                    raise EmrUnavailable(
                        f"The EMR failed ({what}, HTTP {status}): {operation_outcome_text(response).rstrip('.')}.", status=status
                    )
                self.stats.retries_other += 1
                self.sleep(min(2.0, 0.5 * 2 ** (attempts_transient - 1)))
                continue
            if status == 401 and authenticated:
                raise EmrAuthError(f"The EMR requires authentication ({what}): {operation_outcome_text(response).rstrip('.')}.", status=401)
            if status == 403:
                raise EmrAuthError(
                    f"The EMR refused access ({what}, HTTP 403): {operation_outcome_text(response).rstrip('.')}.", status=403
                )
            if status >= 400:
                detail = operation_outcome_text(response)
                raise EmrRequestError(
                    f"The EMR refused the request ({what}, HTTP {status}): {detail.rstrip('.')}.", status=status, detail=detail
                )
            if status >= 300:
                raise EmrResponseError(f"The EMR answered HTTP {status} ({what}); redirects are not followed.", status=status)
            return response

    def _same_origin(self, url: str) -> bool:
        parts = urlsplit(url)
        return (parts.scheme, parts.netloc.lower()) == self._origin

    def search(self, resource_type: str, params: list[tuple[str, str]]) -> Iterator[tuple[dict, str]]:
        """Every entry (resource, search mode) of a search, following ``next`` links."""
        url: str | None = f"{self.base}/{resource_type}"
        query: list[tuple[str, str]] | None = [*params, ("_count", str(self.config.page_size))]
        pages = 0
        what = f"searching {resource_type}"
        while url:
            pages += 1
            if pages > self.config.max_pages:
                raise EmrResponseError(
                    f"The EMR returned more than {self.config.max_pages} pages of {resource_type} results; "
                    "narrow the request."
                )
            response = self._send("GET", url, params=query, what=what)
            self.stats.pages += 1
            self.stats.by_type[resource_type] = self.stats.by_type.get(resource_type, 0) + 1
            try:
                bundle = response.json()
            except ValueError:
                raise EmrResponseError(f"The EMR answered with something that is not JSON ({what}).") from None
            if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
                kind = bundle.get("resourceType") if isinstance(bundle, dict) else type(bundle).__name__
                raise EmrResponseError(f"The EMR answered a {kind} where a search Bundle was expected ({what}).")
            for entry in bundle.get("entry") or []:
                resource = entry.get("resource") if isinstance(entry, dict) else None
                if not isinstance(resource, dict) or resource.get("resourceType") == "OperationOutcome":
                    continue
                mode = (entry.get("search") or {}).get("mode") or "match"
                yield resource, mode
            next_url = next(
                (link.get("url") for link in bundle.get("link") or [] if isinstance(link, dict) and link.get("relation") == "next"),
                None,
            )
            if next_url:
                next_url = urljoin(self.base + "/", next_url)
                if not self._same_origin(next_url):
                    raise EmrResponseError(
                        f"The EMR's next-page link points to another server ({urlsplit(next_url).netloc}); not followed."
                    )
            url, query = next_url, None

    # --- appointments -------------------------------------------------------------------

    def _appointments(self, params: list[tuple[str, str]], *, provenance: bool = False) -> list[EmrAppointment]:
        params = [
            *params,
            ("_include", "Appointment:patient"),
            ("_include", "Appointment:practitioner"),
            ("_include", "Appointment:location"),
        ]
        if provenance:
            params.append(("_revinclude", "Provenance:target"))
        matches: dict[str, dict] = {}
        included: dict[str, dict[str, dict]] = defaultdict(dict)
        provenance_by_target: dict[str, list[dict]] = defaultdict(list)
        for resource, mode in self.search("Appointment", params):
            kind, rid = resource.get("resourceType"), resource.get("id")
            if kind == "Appointment" and mode == "match" and rid:
                matches[str(rid)] = resource
            elif kind == "Provenance":
                for target in resource.get("target") or []:
                    if (appointment_id := reference_id(target, "Appointment")) is not None:
                        provenance_by_target[appointment_id].append(resource)
            elif kind in ("Patient", "Practitioner", "Location") and rid:
                included[kind][str(rid)] = resource

        wanted = set()
        for resource in matches.values():
            for participant in resource.get("participant") or []:
                if (pid := reference_id((participant or {}).get("actor"), "Patient")) and pid not in included["Patient"]:
                    wanted.add(pid)
        if wanted:
            included["Patient"].update(self._patients_by_id(sorted(wanted)))

        out = []
        for resource in matches.values():
            mapped = map_appointment(
                resource,
                zone=self.zone,
                patients=included["Patient"],
                practitioners=included["Practitioner"],
                locations=included["Location"],
                provenance=provenance_by_target,
                mrn_system=self.config.mrn_system,
            )
            if mapped is not None:
                out.append(mapped)
        return out

    def _patients_by_id(self, ids: list[str]) -> dict[str, dict]:
        found = {}
        for index in range(0, len(ids), PATIENT_ID_CHUNK):
            chunk = ids[index : index + PATIENT_ID_CHUNK]
            for resource, _mode in self.search("Patient", [("_id", ",".join(chunk))]):
                if resource.get("resourceType") == "Patient" and resource.get("id"):
                    found[str(resource["id"])] = resource
        return found

    @staticmethod
    def _in_range(items: list[EmrAppointment], start: datetime, end: datetime) -> list[EmrAppointment]:
        return [a for a in items if start <= a.start < end]

    def appointments_by_date_range(self, *, start: datetime, end: datetime) -> list[EmrAppointment]:
        params = [("date", f"ge{fhir_instant(start)}"), ("date", f"lt{fhir_instant(end)}")]
        return self._in_range(self._appointments(params), start, end)

    def appointments_by_provider(
        self, *, provider_ehr_ids: Sequence[str], start: datetime, end: datetime
    ) -> list[EmrAppointment]:
        params = [
            ("practitioner", ",".join(f"Practitioner/{pid}" for pid in provider_ehr_ids)),
            ("date", f"ge{fhir_instant(start)}"),
            ("date", f"lt{fhir_instant(end)}"),
        ]
        return self._in_range(self._appointments(params), start, end)

    def appointments_by_mrn(self, *, mrn: str) -> list[EmrAppointment]:
        identifier = f"{self.config.mrn_system}|{mrn}" if self.config.mrn_system else mrn
        patient_ids = []
        for resource, mode in self.search("Patient", [("identifier", identifier)]):
            if resource.get("resourceType") == "Patient" and mode == "match" and resource.get("id"):
                if patient_mrn(resource, self.config.mrn_system) == mrn or any(
                    isinstance(i, dict) and i.get("value") == mrn for i in resource.get("identifier") or []
                ):
                    patient_ids.append(str(resource["id"]))
        if not patient_ids:
            return []
        params = [("patient", ",".join(f"Patient/{pid}" for pid in patient_ids))]
        return [a for a in self._appointments(params, provenance=True) if a.patient_mrn == mrn or a.patient_ehr_id in patient_ids]

    # --- providers and locations --------------------------------------------------------

    def locations(self) -> list[EmrLocation]:
        if self._locations_cache is None:
            found = {}
            for resource, mode in self.search("Location", []):
                if resource.get("resourceType") == "Location" and mode == "match":
                    if (location := map_location(resource)) is not None:
                        found[location.ehr_id] = location
            self._locations_cache = list(found.values())
        return self._locations_cache

    def providers(self, *, horizon_start: date, horizon_days: int = 28) -> list[EmrProvider]:
        providers: dict[str, EmrProvider] = {}
        for resource, mode in self.search("Practitioner", []):
            if resource.get("resourceType") == "Practitioner" and mode == "match":
                if (provider := map_practitioner(resource)) is not None:
                    providers[provider.ehr_id] = provider

        zones = {loc.ehr_id: loc.timezone for loc in self.locations()}
        schedules = [
            r for r, mode in self.search("Schedule", [("active", "true")]) if r.get("resourceType") == "Schedule" and mode == "match"
        ]
        window_start = datetime.combine(horizon_start, MIDNIGHT, tzinfo=self.zone)
        window_end = datetime.combine(horizon_start + timedelta(days=horizon_days), MIDNIGHT, tzinfo=self.zone)
        slots_by_schedule: dict[str, list[dict]] = defaultdict(list)
        if schedules:
            params = [("start", f"ge{fhir_instant(window_start)}"), ("start", f"lt{fhir_instant(window_end)}")]
            for resource, mode in self.search("Slot", params):
                if resource.get("resourceType") == "Slot" and mode == "match":
                    if (schedule_id := reference_id(resource.get("schedule"), "Schedule")) is not None:
                        slots_by_schedule[schedule_id].append(resource)

        # Each practitioner's shifts are wall times in ONE zone, the zone its hours are then read
        # in everywhere (``EmrProvider.timezone``): its schedules' location zone, or when they
        # lie in several zones the one most of its slots are in (``provider_schedule_zone``).
        plans: list[tuple[dict, list[str], str | None]] = []
        slot_zones: dict[str, Counter] = defaultdict(Counter)
        for schedule in schedules:
            actors = schedule.get("actor") or []
            practitioner_ids = [pid for a in actors if (pid := reference_id(a, "Practitioner"))]
            location_id = next((lid for a in actors if (lid := reference_id(a, "Location"))), None)
            if not practitioner_ids:
                continue
            location_zone = (zones.get(location_id) if location_id else None) or self.zone.key
            count = len(slots_by_schedule.get(str(schedule.get("id")), []))
            for pid in practitioner_ids:
                slot_zones[pid][location_zone] += count
            plans.append((schedule, practitioner_ids, location_id))
        provider_zones = {pid: provider_schedule_zone(counts) for pid, counts in slot_zones.items()}

        shifts: dict[str, list[EmrShift]] = defaultdict(list)
        scheduled: set[str] = set()
        for schedule, practitioner_ids, location_id in plans:
            horizon = schedule.get("planningHorizon") or {}
            derived_by_zone: dict[str, list[EmrShift]] = {}
            for pid in practitioner_ids:
                zone_name = provider_zones[pid]
                if zone_name not in derived_by_zone:
                    zone = ZoneInfo(zone_name)
                    h_from = parse_date_time(horizon.get("start"), zone)
                    h_until = parse_date_time(horizon.get("end"), zone)
                    derived_by_zone[zone_name] = shifts_from_slots(
                        slots_by_schedule.get(str(schedule.get("id")), []),
                        zone=zone,
                        location_ehr_id=location_id,
                        horizon_from=h_from.astimezone(zone).date() if h_from else None,
                        # planningHorizon.end is an instant: the last working date is the one before it
                        horizon_until=(h_until.astimezone(zone) - timedelta(microseconds=1)).date() if h_until else None,
                    )
                scheduled.add(pid)
                shifts[pid].extend(derived_by_zone[zone_name])

        out = []
        for ehr_id, provider in providers.items():
            out.append(
                EmrProvider(
                    ehr_id=provider.ehr_id,
                    name=provider.name,
                    first_name=provider.first_name,
                    last_name=provider.last_name,
                    npi=provider.npi,
                    active=provider.active,
                    has_schedule=ehr_id in scheduled,
                    timezone=provider_zones.get(ehr_id),
                    shifts=tuple(shifts.get(ehr_id, ())),
                )
            )
        return out


def provider_schedule_zone(slots_per_zone: Counter) -> str:
    """The zone a practitioner's schedule is read in: the zone of its schedules' locations, and
    when they lie in several, the one holding most of its slots (ties: the zone name first in
    alphabetical order, so every sync picks the same)."""
    return min(slots_per_zone.items(), key=lambda item: (-item[1], item[0]))[0]


__all__ = ["FhirAdapter", "map_appointment", "map_practitioner", "map_location", "shifts_from_slots", "token_cache_clear"]
