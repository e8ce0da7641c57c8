"""The sandbox EMR's FHIR R4 REST behaviour, independent of any web framework.

``handle_search`` / ``handle_read`` take the parsed query and answer ``(status, body)``; the
Django views (``emr.sandbox.views``) and the fault-injecting test server both call them.

Search parameters (anything else is a 400 OperationOutcome, as a strict server answers):

* every type: ``_id``, ``_count`` (1..500, default 50), ``_getpagesoffset`` (paging), ``_format``
* ``Appointment``: ``date`` (``eq|ge|gt|le|lt`` + date or instant; repeated = AND), ``patient``,
  ``patient.identifier`` (``[system|]value``), ``practitioner``, ``actor``, ``location``,
  ``status``; ``practitioner`` and ``actor`` match an appointment where the practitioner is ANY
  participant (primary or secondary performer), as FHIR defines them; ``_include=Appointment:patient|practitioner|location|actor``,
  ``_revinclude=Provenance:target``
* ``Patient``: ``identifier``, ``name`` · ``Practitioner``: ``identifier``, ``active``, ``name`` ·
  ``Location``: ``status``, ``name`` · ``Schedule``: ``actor``, ``active`` · ``Slot``:
  ``schedule``, ``start``, ``status`` · ``Provenance``: ``target``

Comma-separated values mean OR. References may be ``Type/id`` or a bare id.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from emr.sandbox import data

FHIR_VERSION = "4.0.1"
DEFAULT_COUNT = 50
MAX_COUNT = 500
COMMON = {"_id", "_count", "_getpagesoffset", "_format", "_include", "_revinclude"}
PARAMETERS = {
    "Appointment": {"date", "patient", "patient.identifier", "practitioner", "actor", "location", "status"},
    "Patient": {"identifier", "name"},
    "Practitioner": {"identifier", "active", "name"},
    "Location": {"status", "name"},
    "Schedule": {"actor", "active"},
    "Slot": {"schedule", "start", "status"},
    "Provenance": {"target"},
}
# The R4 type of each search parameter (as its SearchParameter defines it); ``patient.identifier``
# is the chain ``patient`` -> Patient's ``identifier``, a token.
PARAMETER_TYPES = {
    "date": "date", "start": "date",
    "patient": "reference", "practitioner": "reference", "actor": "reference", "location": "reference",
    "schedule": "reference", "target": "reference",
    "name": "string",
}
INCLUDES = {
    "Appointment:patient": ("Patient",),
    "Appointment:practitioner": ("Practitioner",),
    "Appointment:location": ("Location",),
    "Appointment:actor": ("Patient", "Practitioner", "Location"),
}
RESOURCE_TYPES = tuple(PARAMETERS)


class FhirError(Exception):
    def __init__(self, status: int, code: str, diagnostics: str):
        super().__init__(diagnostics)
        self.status = status
        self.code = code
        self.diagnostics = diagnostics

    def body(self) -> dict:
        return operation_outcome(self.code, self.diagnostics)


def operation_outcome(code: str, diagnostics: str, severity: str = "error") -> dict:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}]}


def capability_statement(base_url: str) -> dict:
    token_url = f"{base_url}/auth/token"
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2024-01-01",
        "publisher": "Scheduling backend sandbox EMR",
        "kind": "instance",
        "software": {"name": "Sandbox EMR", "version": "1.0"},
        "implementation": {"description": "Built-in demo EMR", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "service": [
                        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}]}
                    ],
                    "extension": [
                        {
                            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                            "extension": [{"url": "token", "valueUri": token_url}],
                        }
                    ],
                },
                "resource": [
                    {
                        "type": resource_type,
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [{"name": name, "type": PARAMETER_TYPES.get(name, "token")} for name in sorted(params)],
                        **({"searchInclude": sorted(INCLUDES), "searchRevInclude": ["Provenance:target"]} if resource_type == "Appointment" else {}),
                    }
                    for resource_type, params in PARAMETERS.items()
                ],
            }
        ],
    }


def smart_configuration(base_url: str) -> dict:
    return {
        "issuer": base_url,
        "token_endpoint": f"{base_url}/auth/token",
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384"],
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": ["system/*.read", "system/*.rs"],
        "capabilities": ["client-confidential-asymmetric"],
    }


# --- parameter helpers -----------------------------------------------------------------------


def _values(raw: str) -> list[str]:
    return [v for v in (part.strip() for part in raw.split(",")) if v]


def _ref_ids(raw: str, resource_type: str) -> set[str]:
    out = set()
    for value in _values(raw):
        if "/" in value:
            kind, _, rid = value.rstrip("/").rpartition("/")
            if kind.split("/")[-1] != resource_type:
                continue
            value = rid
        out.add(value)
    return out


class _Range:
    """An intersection of date-search conditions as ``[low, high)`` instants."""

    def __init__(self):
        self.low: datetime | None = None
        self.high: datetime | None = None
        self.exact: list[datetime] = []

    def add(self, raw: str, zone) -> None:
        prefix = raw[:2] if raw[:2] in ("eq", "ge", "gt", "le", "lt", "ne", "sa", "eb", "ap") else ""
        value = raw[len(prefix):] if prefix else raw
        prefix = prefix or "eq"
        if prefix not in ("eq", "ge", "gt", "le", "lt"):
            raise FhirError(400, "not-supported", f"Date prefix '{prefix}' is not supported.")
        day_start = day_end = None
        instant = None
        if "T" in value:
            try:
                instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                instant = None
            if instant is None or instant.tzinfo is None:
                raise FhirError(400, "invalid", f"Invalid date value '{value}' (an instant needs a time zone).")
        else:
            try:
                day = date.fromisoformat(value)
            except ValueError:
                raise FhirError(400, "invalid", f"Invalid date value '{value}'.") from None
            day_start = datetime.combine(day, time(0), tzinfo=zone)
            day_end = day_start + timedelta(days=1)
        if instant is not None:
            day_start, day_end = instant, instant + timedelta(microseconds=1)
        if prefix == "eq":
            self._low(day_start)
            self._high(day_end)
        elif prefix == "ge":
            self._low(day_start)
        elif prefix == "gt":
            self._low(day_end)
        elif prefix == "le":
            self._high(day_end)
        elif prefix == "lt":
            self._high(day_start)

    def _low(self, value: datetime) -> None:
        self.low = value if self.low is None else max(self.low, value)

    def _high(self, value: datetime) -> None:
        self.high = value if self.high is None else min(self.high, value)

    def contains(self, moment: datetime) -> bool:
        return (self.low is None or moment >= self.low) and (self.high is None or moment < self.high)

    def days(self, zone) -> tuple[date | None, date | None]:
        first = (self.low.astimezone(zone).date() - timedelta(days=1)) if self.low else None
        last = (self.high.astimezone(zone).date() + timedelta(days=1)) if self.high else None
        return first, last


def _identifier_matches(resource: dict, raw: str) -> bool:
    for value in _values(raw):
        system, sep, code = value.rpartition("|")
        for identifier in resource.get("identifier") or []:
            if identifier.get("value") == code and (not sep or not system or identifier.get("system") == system):
                return True
    return False


def _name_matches(resource: dict, raw: str) -> bool:
    needle = raw.lower()
    for name in resource.get("name") or []:
        text = " ".join([*(name.get("given") or []), name.get("family") or "", name.get("text") or ""]).lower()
        if needle in text:
            return True
    if isinstance(resource.get("name"), str):
        return needle in resource["name"].lower()
    return False


# --- searching -------------------------------------------------------------------------------


def _parse_query(resource_type: str, query: list[tuple[str, str]]) -> dict[str, list[str]]:
    if resource_type not in PARAMETERS:
        raise FhirError(404, "not-supported", f"Resource type '{resource_type}' is not supported by this server.")
    allowed = PARAMETERS[resource_type] | COMMON
    params: dict[str, list[str]] = {}
    for key, value in query:
        name = key.split(":")[0] if key not in allowed else key
        if name not in allowed:
            raise FhirError(400, "not-supported", f"Unknown search parameter '{key}' for {resource_type}.")
        params.setdefault(key, []).append(value)
    for include in params.get("_include", []):
        if resource_type != "Appointment" or include not in INCLUDES:
            raise FhirError(400, "not-supported", f"_include '{include}' is not supported for {resource_type}.")
    for include in params.get("_revinclude", []):
        if resource_type != "Appointment" or include != "Provenance:target":
            raise FhirError(400, "not-supported", f"_revinclude '{include}' is not supported for {resource_type}.")
    return params


def _int_param(params, name: str, default: int, low: int, high: int) -> int:
    raw = (params.get(name) or [None])[-1]
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise FhirError(400, "invalid", f"{name} must be an integer.") from None
    if not low <= value <= high:
        raise FhirError(400, "invalid", f"{name} must be between {low} and {high}.")
    return value


def _appointment_matches(ds: data.SandboxDataset, params) -> list[dict]:
    zone = ds.zone
    when = _Range()
    for raw in params.get("date", []):
        when.add(raw, zone)
    first, last = when.days(zone)

    provider_ids = None
    for key in ("practitioner", "actor"):
        for raw in params.get(key, []):
            ids = _ref_ids(raw, "Practitioner")
            provider_ids = ids if provider_ids is None else provider_ids & ids
    patient_ids = None
    for raw in params.get("patient", []):
        ids = _ref_ids(raw, "Patient")
        patient_ids = ids if patient_ids is None else patient_ids & ids
    for raw in params.get("actor", []):
        if any(v.startswith("Patient/") for v in _values(raw)):
            ids = _ref_ids(raw, "Patient")
            patient_ids = ids if patient_ids is None else patient_ids & ids
            provider_ids = None if not _ref_ids(raw, "Practitioner") else provider_ids
    for raw in params.get("patient.identifier", []):
        ids = {p["id"] for p in ds.patients() if _identifier_matches(p, raw)}
        patient_ids = ids if patient_ids is None else patient_ids & ids
    location_ids = None
    for raw in params.get("location", []):
        ids = _ref_ids(raw, "Location")
        location_ids = ids if location_ids is None else location_ids & ids
    statuses = set()
    for raw in params.get("status", []):
        statuses |= set(_values(raw))
    wanted_ids = None
    for raw in params.get("_id", []):
        ids = set(_values(raw))
        wanted_ids = ids if wanted_ids is None else wanted_ids & ids

    if wanted_ids is not None:  # ids name their date and provider: generate just those days
        candidates = []
        for rid in wanted_ids:
            try:
                day = datetime.strptime(rid[:8], "%Y%m%d").date()
            except ValueError:
                continue
            candidates.extend(a for a in ds.appointments(first=day, last=day) if a["id"] == rid)
    else:
        # Every provider's appointments: ``practitioner`` (and ``actor``) match ANY participant,
        # so an appointment where the provider is only the secondary performer is found too.
        candidates = ds.appointments(first=first, last=last)

    def refs(appointment: dict, kind: str) -> set[str]:
        return {
            p["actor"]["reference"].split("/", 1)[1]
            for p in appointment["participant"]
            if p.get("actor", {}).get("reference", "").startswith(kind + "/")
        }

    out = []
    for appointment in candidates:
        start = datetime.fromisoformat(appointment["start"])
        if not when.contains(start):
            continue
        if provider_ids is not None and not refs(appointment, "Practitioner") & provider_ids:
            continue
        if patient_ids is not None and not refs(appointment, "Patient") & patient_ids:
            continue
        if location_ids is not None and not refs(appointment, "Location") & location_ids:
            continue
        if statuses and appointment["status"] not in statuses:
            continue
        out.append(appointment)
    out.sort(key=lambda a: (a["start"], a["id"]))
    return out


def _matches(ds: data.SandboxDataset, resource_type: str, params) -> list[dict]:
    ids = None
    for raw in params.get("_id", []):
        values = set(_values(raw))
        ids = values if ids is None else ids & values
    if resource_type == "Appointment":
        return _appointment_matches(ds, params)
    if resource_type == "Patient":
        items = list(ds.patients())
        if ids is not None and not params.get("identifier") and not params.get("name"):
            by_id = data.patients_by_id()
            return [by_id[i] for i in sorted(ids) if i in by_id]
    elif resource_type == "Practitioner":
        items = ds.practitioners()
    elif resource_type == "Location":
        items = ds.locations()
    elif resource_type == "Schedule":
        items = ds.schedules()
    elif resource_type == "Slot":
        when = _Range()
        for raw in params.get("start", []):
            when.add(raw, ds.zone)
        first, last = when.days(ds.zone)
        schedule_ids = None
        for raw in params.get("schedule", []):
            sids = _ref_ids(raw, "Schedule")
            schedule_ids = sids if schedule_ids is None else schedule_ids & sids
        provider_ids = None
        if schedule_ids is not None:
            provider_ids = {s["actor"][0]["reference"].split("/", 1)[1] for s in ds.schedules() if s["id"] in schedule_ids}
        items = [
            s
            for s in ds.slots(first=first, last=last, provider_ids=provider_ids)
            if when.contains(datetime.fromisoformat(s["start"]))
            and (schedule_ids is None or s["schedule"]["reference"].split("/", 1)[1] in schedule_ids)
        ]
    elif resource_type == "Provenance":
        targets = set()
        for raw in params.get("target", []):
            targets |= _ref_ids(raw, "Appointment")
        if not targets:
            raise FhirError(400, "not-supported", "Provenance searches need a target.")
        items = [data.provenance_for(a) for a in _appointment_matches(ds, {"_id": [",".join(targets)]})]
    else:  # pragma: no cover - _parse_query refuses other types
        items = []

    out = []
    for item in items:
        if ids is not None and item["id"] not in ids:
            continue
        if any(not _identifier_matches(item, raw) for raw in params.get("identifier", [])):
            continue
        if any(not _name_matches(item, raw) for raw in params.get("name", [])):
            continue
        if any(str(item.get("active", True)).lower() not in _values(raw.lower()) for raw in params.get("active", [])):
            continue
        if any(item.get("status") not in _values(raw) for raw in params.get("status", [])):
            continue
        if resource_type == "Schedule":
            actors = {a["reference"] for a in item["actor"]}
            if any(not ({v if "/" in v else f"Practitioner/{v}" for v in _values(raw)} & actors) for raw in params.get("actor", [])):
                continue
        out.append(item)
    return out


def _included(ds: data.SandboxDataset, page: list[dict], params) -> list[dict]:
    kinds = set()
    for include in params.get("_include", []):
        kinds |= set(INCLUDES[include])
    out: dict[tuple[str, str], dict] = {}
    if kinds:
        practitioners = {p["id"]: p for p in ds.practitioners()}
        locations = {loc["id"]: loc for loc in ds.locations()}
        patients = data.patients_by_id()
        for appointment in page:
            for participant in appointment["participant"]:
                ref = participant.get("actor", {}).get("reference", "")
                kind, _, rid = ref.partition("/")
                if kind not in kinds:
                    continue
                source = {"Patient": patients, "Practitioner": practitioners, "Location": locations}[kind]
                if rid in source:
                    out[(kind, rid)] = source[rid]
    if "Provenance:target" in params.get("_revinclude", []):
        for appointment in page:
            record = data.provenance_for(appointment)
            out[("Provenance", record["id"])] = record
    return list(out.values())


def handle_search(
    ds: data.SandboxDataset, resource_type: str, query: list[tuple[str, str]], *, base_url: str
) -> tuple[int, dict]:
    try:
        params = _parse_query(resource_type, query)
        count = _int_param(params, "_count", DEFAULT_COUNT, 1, MAX_COUNT)
        offset = _int_param(params, "_getpagesoffset", 0, 0, 10_000_000)
        matches = _matches(ds, resource_type, params)
    except FhirError as exc:
        return exc.status, exc.body()
    page = matches[offset : offset + count]
    entries = [
        {"fullUrl": f"{base_url}/{resource_type}/{r['id']}", "resource": data.public(r), "search": {"mode": "match"}}
        for r in page
    ]
    if resource_type == "Appointment":
        entries += [
            {"fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}", "resource": data.public(r), "search": {"mode": "include"}}
            for r in _included(ds, page, params)
        ]
    kept = [(k, v) for k, v in query if k != "_getpagesoffset"]
    links = [{"relation": "self", "url": f"{base_url}/{resource_type}?{urlencode(query)}"}]
    if offset + count < len(matches):
        links.append(
            {"relation": "next", "url": f"{base_url}/{resource_type}?{urlencode([*kept, ('_getpagesoffset', offset + count)])}"}
        )
    return 200, {"resourceType": "Bundle", "type": "searchset", "total": len(matches), "link": links, "entry": entries}


def handle_read(ds: data.SandboxDataset, resource_type: str, resource_id: str) -> tuple[int, dict]:
    if resource_type not in PARAMETERS:
        return 404, operation_outcome("not-supported", f"Resource type '{resource_type}' is not supported by this server.")
    status, bundle = handle_search(ds, resource_type, [("_id", resource_id)] if resource_type != "Provenance" else [("target", resource_id.removeprefix("PRV-CREATE-"))], base_url="")
    if status == 200:
        for entry in bundle["entry"]:
            if entry["resource"]["id"] == resource_id:
                return 200, entry["resource"]
    return 404, operation_outcome("not-found", f"{resource_type}/{resource_id} is not known.")
