"""FHIR R4 resources → the adapter's typed results: pure functions, no HTTP, no ORM.

The mapping itself (which element becomes which field, and why) is written down in the docstring
of ``emr.adapters.fhir``; this module implements it.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from emr.adapters.base import EmrAppointment, EmrLocation, EmrProvider, EmrShift, EmrVisitTypeRule

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
TIMEZONE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/timezone"
MR_CODE = "MR"
NOT_OCCUPYING = frozenset({"cancelled", "noshow", "entered-in-error", "waitlist"})
WORKING_SLOT_STATUSES = frozenset({"free", "busy", "busy-tentative"})
MIDNIGHT = time(0, 0)


# --- small parsing helpers -------------------------------------------------------------------


def fhir_instant_parse(value) -> datetime | None:
    """A FHIR instant (date-time with an offset), or None; no year bounds: the EMR's data, not input."""
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
    instant = fhir_instant_parse(value)
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


def valid_zone(name) -> str | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


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
        timezone=valid_zone(_extension_value(resource, TIMEZONE_EXTENSION, "valueCode")),
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
    start = fhir_instant_parse(resource.get("start"))
    if not ehr_id or start is None:
        return None
    end = fhir_instant_parse(resource.get("end"))
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
        start, end = fhir_instant_parse(slot.get("start")), fhir_instant_parse(slot.get("end"))
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
            gaps = [(b - a).days // 7 for a, b in zip(dates, dates[1:], strict=False)]
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
