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
  read in the location's zone and merged per local date into windows of back-to-back slots. A
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
import math
import threading
import time as time_module
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta, timezone as dt_timezone
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import jwt

from emr.adapters.base import (
    AdapterError,
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
    EmrVisitTypeRule,
)

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
TIMEZONE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/timezone"
OAUTH_URIS_EXTENSION = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
MR_CODE = "MR"
NOT_OCCUPYING = frozenset({"cancelled", "noshow", "entered-in-error", "waitlist"})
WORKING_SLOT_STATUSES = frozenset({"free", "busy", "busy-tentative"})
MIDNIGHT = time(0, 0)

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


# --- small parsing helpers -------------------------------------------------------------------


def parse_instant(value) -> datetime | None:
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def parse_date_time(value, zone: ZoneInfo) -> datetime | None:
    """A FHIR dateTime: an instant, or a date (midnight in ``zone``)."""
    if not isinstance(value, str):
        return None
    instant = parse_instant(value)
    if instant is not None:
        return instant
    try:
        day = date.fromisoformat(value[:10])
    except ValueError:
        return None
    return datetime.combine(day, MIDNIGHT, tzinfo=zone)


def fhir_instant(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat()


def reference_id(reference: dict | None, resource_type: str) -> str | None:
    """``{"reference": "Practitioner/123"}`` (relative or absolute, maybe versioned) → ``"123"``."""
    if not isinstance(reference, dict):
        return None
    ref = reference.get("reference")
    if not isinstance(ref, str):
        return None
    parts = ref.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == resource_type and parts[-1]:
        return parts[-1]
    return None


def _coding(concept) -> tuple[str, str]:
    """(code, display) of a CodeableConcept's first coding, falling back on its text."""
    if not isinstance(concept, dict):
        return "", ""
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and (coding.get("code") or coding.get("display")):
            code = str(coding.get("code") or coding.get("display") or "")
            return code, str(coding.get("display") or concept.get("text") or "")
    text = concept.get("text")
    return (str(text), str(text)) if text else ("", "")


def _first(value):
    return value[0] if isinstance(value, list) and value else None


def human_name(names) -> tuple[str, str, str]:
    """(full name, first name, last name) from a list of HumanName."""
    if not isinstance(names, list) or not names:
        return "", "", ""
    chosen = next((n for n in names if isinstance(n, dict) and n.get("use") == "official"), None)
    chosen = chosen or next((n for n in names if isinstance(n, dict)), None)
    if chosen is None:
        return "", "", ""
    given = [str(g) for g in chosen.get("given") or [] if g]
    family = str(chosen.get("family") or "")
    full = str(chosen.get("text") or " ".join([*given, family]).strip())
    return full, (given[0] if given else ""), family


def _address_text(address) -> str:
    if not isinstance(address, dict):
        return ""
    if address.get("text"):
        return str(address["text"])
    lines = [str(line) for line in address.get("line") or []]
    tail = " ".join(p for p in (address.get("state"), address.get("postalCode")) if p)
    parts = [*lines, *(p for p in (address.get("city"), tail) if p)]
    return ", ".join(parts)


def _extension_value(resource: dict, url: str, key: str):
    for ext in resource.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == url:
            return ext.get(key)
    return None


def _valid_zone(name) -> str | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


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
        when = when.replace(tzinfo=dt_timezone.utc)
    return max(0.0, (when - datetime.now(dt_timezone.utc)).total_seconds())


# --- resource mapping (pure functions) -------------------------------------------------------


def map_practitioner(resource: dict) -> EmrProvider | None:
    ehr_id = resource.get("id")
    if not ehr_id:
        return None
    full, first, last = human_name(resource.get("name"))
    npi = next(
        (str(i.get("value")) for i in resource.get("identifier") or [] if isinstance(i, dict) and i.get("system") == NPI_SYSTEM and i.get("value")),
        "",
    )
    return EmrProvider(
        ehr_id=str(ehr_id),
        name=full or f"Provider {ehr_id}",
        first_name=first,
        last_name=last,
        npi=npi[:10],
        active=resource.get("active", True) is not False,
    )


def map_location(resource: dict) -> EmrLocation | None:
    ehr_id = resource.get("id")
    if not ehr_id:
        return None
    return EmrLocation(
        ehr_id=str(ehr_id),
        name=str(resource.get("name") or f"Location {ehr_id}"),
        address=_address_text(resource.get("address")),
        timezone=_valid_zone(_extension_value(resource, TIMEZONE_EXTENSION, "valueCode")),
        active=resource.get("status") != "inactive",
    )


def patient_mrn(resource: dict, mrn_system: str = "") -> str:
    identifiers = [i for i in resource.get("identifier") or [] if isinstance(i, dict) and i.get("value")]
    if mrn_system:
        for identifier in identifiers:
            if identifier.get("system") == mrn_system:
                return str(identifier["value"])
    for identifier in identifiers:
        codes = {c.get("code") for c in (identifier.get("type") or {}).get("coding") or [] if isinstance(c, dict)}
        if MR_CODE in codes:
            return str(identifier["value"])
    return str(identifiers[0]["value"]) if identifiers else ""


def _participant_type_codes(participant: dict) -> set[str]:
    codes = set()
    for concept in participant.get("type") or []:
        for coding in (concept or {}).get("coding") or []:
            if isinstance(coding, dict) and coding.get("code"):
                codes.add(coding["code"])
    return codes


def map_appointment(
    resource: dict,
    *,
    zone: ZoneInfo,
    patients: dict[str, dict] | None = None,
    practitioners: dict[str, dict] | None = None,
    locations: dict[str, dict] | None = None,
    provenance: dict[str, list[dict]] | None = None,
    mrn_system: str = "",
) -> EmrAppointment | None:
    """One FHIR Appointment (with the resources included next to it) as an ``EmrAppointment``;
    None when it has no id or no time."""
    patients, practitioners, locations, provenance = patients or {}, practitioners or {}, locations or {}, provenance or {}
    ehr_id = resource.get("id")
    start = parse_instant(resource.get("start"))
    if not ehr_id or start is None:
        return None
    end = parse_instant(resource.get("end"))
    if end is None:
        minutes = resource.get("minutesDuration")
        if isinstance(minutes, int) and not isinstance(minutes, bool) and 0 < minutes <= 24 * 60:
            end = start + timedelta(minutes=minutes)
    if end is None or end <= start:
        return None
    status = str(resource.get("status") or "booked")

    code, display = _coding(resource.get("appointmentType"))
    if not code:
        code, display = _coding(_first(resource.get("serviceType")))

    reason = ""
    for concept in resource.get("reasonCode") or []:
        c_code, c_display = _coding(concept)
        reason = (concept or {}).get("text") or c_display or c_code
        if reason:
            break
    if not reason:
        reason = next((r.get("display") for r in resource.get("reasonReference") or [] if isinstance(r, dict) and r.get("display")), "")
    reason = str(reason or resource.get("description") or "")

    practitioner_refs: list[tuple[str, str, set[str]]] = []
    patient_id = location_id = None
    patient_display = location_display = ""
    for participant in resource.get("participant") or []:
        if not isinstance(participant, dict):
            continue
        actor = participant.get("actor") or {}
        if (pid := reference_id(actor, "Practitioner")) is not None:
            practitioner_refs.append((pid, str(actor.get("display") or ""), _participant_type_codes(participant)))
        elif (pat := reference_id(actor, "Patient")) is not None and patient_id is None:
            patient_id, patient_display = pat, str(actor.get("display") or "")
        elif (loc := reference_id(actor, "Location")) is not None and location_id is None:
            location_id, location_display = loc, str(actor.get("display") or "")

    primary = next((p for p in practitioner_refs if "PPRF" in p[2]), None) or _first(practitioner_refs)
    rest = [p for p in practitioner_refs if p is not primary and p[0] != (primary[0] if primary else None)]
    secondary = next((p for p in rest if "SPRF" in p[2]), None) or _first(rest)

    provider_name, provider_first, provider_last = "", "", ""
    if primary is not None:
        provider_name = primary[1]
        if primary[0] in practitioners:
            full, provider_first, provider_last = human_name(practitioners[primary[0]].get("name"))
            provider_name = full or provider_name
    secondary_name = ""
    if secondary is not None:
        secondary_name = secondary[1]
        if secondary[0] in practitioners:
            secondary_name = human_name(practitioners[secondary[0]].get("name"))[0] or secondary_name

    mrn, patient_name = "", patient_display
    if patient_id is not None and patient_id in patients:
        mrn = patient_mrn(patients[patient_id], mrn_system)
        patient_name = human_name(patients[patient_id].get("name"))[0] or patient_name

    location_name = location_display
    if location_id is not None and location_id in locations:
        location_name = str(locations[location_id].get("name") or location_name)

    created_by = ""
    for record in provenance.get(str(ehr_id), []):
        agent = _first(record.get("agent")) or {}
        who = agent.get("who") or {}
        if who.get("display"):
            created_by = str(who["display"])
            break

    meta = resource.get("meta") or {}
    tags = [*(meta.get("tag") or []), *(meta.get("security") or [])]
    locked = any(isinstance(t, dict) and str(t.get("code", "")).lower() == "locked" for t in tags)

    return EmrAppointment(
        ehr_id=str(ehr_id),
        start=start,
        end=end,
        status=status,
        occupies_time=status not in NOT_OCCUPYING,
        visit_type_code=code[:128],
        visit_type_display=display[:255],
        reason=reason[:500],
        patient_ehr_id=patient_id or "",
        patient_mrn=mrn[:64],
        patient_name=patient_name[:200],
        provider_ehr_id=primary[0] if primary else None,
        provider_name=provider_name[:200],
        provider_first_name=provider_first[:100],
        provider_last_name=provider_last[:100],
        secondary_provider_ehr_id=secondary[0] if secondary else None,
        secondary_provider_name=secondary_name[:200],
        location_ehr_id=location_id,
        location_name=location_name[:200],
        created_at=parse_date_time(resource.get("created"), zone),
        created_by=created_by[:200],
        locked=locked,
    )


def _minutes(moment: time, *, end: bool = False) -> int:
    value = moment.hour * 60 + moment.minute
    return 24 * 60 if end and value == 0 else value


def _time(minutes: int) -> time:
    return MIDNIGHT if minutes >= 24 * 60 else time(minutes // 60, minutes % 60)


def slot_visit_type(slot: dict) -> tuple[str, str] | None:
    code, display = _coding(slot.get("appointmentType"))
    if not code:
        code, display = _coding(_first(slot.get("serviceType")))
    return (code[:128], display[:255]) if code else None


def shifts_from_slots(
    slots: Sequence[dict],
    *,
    zone: ZoneInfo,
    location_ehr_id: str | None,
    horizon_from: date | None = None,
    horizon_until: date | None = None,
) -> list[EmrShift]:
    """Weekly shifts and visit-type rules inferred from one schedule's slots (see the module
    docstring)."""
    by_date: dict[date, list[tuple[int, int, tuple[str, str] | None]]] = defaultdict(list)
    for slot in slots:
        if slot.get("status") not in WORKING_SLOT_STATUSES:
            continue
        start, end = parse_instant(slot.get("start")), parse_instant(slot.get("end"))
        if start is None or end is None or end <= start:
            continue
        local_start, local_end = start.astimezone(zone), end.astimezone(zone)
        if local_end.date() == local_start.date():
            end_minutes = _minutes(local_end.time())
        elif local_end.date() == local_start.date() + timedelta(days=1) and local_end.time() == MIDNIGHT:
            end_minutes = 24 * 60
        else:
            continue  # a slot across midnight is not a weekly wall-clock window
        start_minutes = _minutes(local_start.time())
        if end_minutes <= start_minutes:
            continue
        by_date[local_start.date()].append((start_minutes, end_minutes, slot_visit_type(slot)))

    # (weekday, start, end) -> {date: rules layout}
    windows: dict[tuple[int, int, int], dict[date, tuple]] = defaultdict(dict)
    for day, items in by_date.items():
        items.sort(key=lambda item: (item[0], item[1]))
        current: list | None = None  # [start, end, slots]
        day_windows = []
        for start_m, end_m, visit_type in items:
            if current is not None and start_m <= current[1]:
                current[1] = max(current[1], end_m)
                current[2].append((start_m, end_m, visit_type))
            else:
                current = [start_m, end_m, [(start_m, end_m, visit_type)]]
                day_windows.append(current)
        for start_m, end_m, window_slots in day_windows:
            rules = []
            for s_m, e_m, visit_type in window_slots:
                if rules and rules[-1][4] == visit_type and s_m <= rules[-1][1] and visit_type is not None:
                    rules[-1][1] = max(rules[-1][1], e_m)
                    rules[-1][2] += 1
                else:
                    rules.append([s_m, e_m, 1, None, visit_type])
            layout = tuple((r[0], r[1], r[2], r[4]) for r in rules if r[4] is not None)
            windows[(day.weekday(), start_m, end_m)][day] = layout

    shifts = []
    for (weekday, start_m, end_m), dates_layouts in sorted(windows.items()):
        dates = sorted(dates_layouts)
        layout = Counter(dates_layouts[d] for d in dates).most_common(1)[0][0]
        if len(dates) == 1:
            every, valid_from, valid_until = 1, dates[0], dates[0]
        else:
            gaps = [(b - a).days // 7 for a, b in zip(dates, dates[1:])]
            every = 0
            for gap in gaps:
                every = math.gcd(every, gap)
            every = max(1, every)
            valid_from = dates[0] if every > 1 else horizon_from
            valid_until = horizon_until
        shifts.append(
            EmrShift(
                weekday=weekday,
                start_time=_time(start_m),
                end_time=_time(end_m),
                location_ehr_id=location_ehr_id,
                valid_from=valid_from,
                valid_until=valid_until,
                every_weeks=min(every, 52),
                rules=tuple(
                    EmrVisitTypeRule(
                        start_time=_time(r_start),
                        end_time=_time(r_end),
                        total_visits=count,
                        visit_type_code=visit_type[0],
                        visit_type_display=visit_type[1],
                    )
                    for r_start, r_end, count, visit_type in layout
                ),
            )
        )
    return shifts


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
        self.zone = ZoneInfo(_valid_zone(config.timezone) or "UTC")
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

        shifts: dict[str, list[EmrShift]] = defaultdict(list)
        scheduled: set[str] = set()
        for schedule in schedules:
            actors = schedule.get("actor") or []
            practitioner_ids = [pid for a in actors if (pid := reference_id(a, "Practitioner"))]
            location_id = next((lid for a in actors if (lid := reference_id(a, "Location"))), None)
            if not practitioner_ids:
                continue
            horizon = schedule.get("planningHorizon") or {}
            zone = ZoneInfo(zones.get(location_id) or self.zone.key) if location_id else self.zone
            h_from = parse_date_time(horizon.get("start"), zone)
            h_until = parse_date_time(horizon.get("end"), zone)
            derived = shifts_from_slots(
                slots_by_schedule.get(str(schedule.get("id")), []),
                zone=zone,
                location_ehr_id=location_id,
                horizon_from=h_from.astimezone(zone).date() if h_from else None,
                # planningHorizon.end is an instant: the last working date is the one before it
                horizon_until=(h_until.astimezone(zone) - timedelta(microseconds=1)).date() if h_until else None,
            )
            for pid in practitioner_ids:
                scheduled.add(pid)
                shifts[pid].extend(derived)

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
                    shifts=tuple(shifts.get(ehr_id, ())),
                )
            )
        return out


__all__ = ["FhirAdapter", "AdapterError", "map_appointment", "map_practitioner", "map_location", "shifts_from_slots"]
