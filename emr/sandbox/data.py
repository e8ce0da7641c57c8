"""The sandbox EMR's demo practice as FHIR R4 resources: deterministic and rolling.

Everything is computed from code and the date, never stored: the same calendar date always gives
the same appointments (ids, times, patients, visit types); only their status moves on as the date
passes (booked → fulfilled, like a real EMR). Appointments exist on every weekday (and the
every-other-Saturday clinic) from ``PAST_DAYS`` before to ``FUTURE_DAYS`` after today, in the
practice's zone.

Pure module (no Django): the sandbox views and the fault-injecting test server both use it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

PRACTICE_TIMEZONE = "America/New_York"
PAST_DAYS = 30
FUTURE_DAYS = 90
VISIT_TYPE_SYSTEM = "http://sandbox-emr.example/fhir/CodeSystem/visit-type"
MRN_SYSTEM = "http://sandbox-emr.example/fhir/sid/mrn"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
TIMEZONE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/timezone"
BOOK_PROBABILITY = 0.7
# The every-other-Saturday clinic runs on Saturdays an even number of weeks after this one.
BIWEEKLY_ANCHOR = date(2024, 1, 6)

VISIT_TYPES: dict[str, tuple[str, int]] = {
    "NP": ("New Patient Visit", 40),
    "FU": ("Follow-Up Visit", 20),
    "TH": ("Telehealth Check-In", 15),
    "US": ("Ultrasound", 30),
    "PE": ("Annual Physical", 40),
    "OV": ("Office Visit", 20),
}

REASONS: dict[str, tuple[str, ...]] = {
    "NP": ("Establish care", "New patient intake", "Transfer of care"),
    "FU": ("Blood pressure follow-up", "Lab results review", "Medication check", "Post-op check"),
    "TH": ("Prescription refill", "Symptom check", "Test results call"),
    "US": ("Abdominal ultrasound", "Pelvic ultrasound", "Thyroid ultrasound"),
    "PE": ("Annual checkup", "Sports physical", "Pre-employment physical"),
    "OV": ("Cough and congestion", "Back pain", "Rash", "Headache", "Annual checkup"),
}

LOCATIONS: tuple[dict, ...] = (
    {
        "id": "LOC-BOS",
        "name": "Harbor Family Health — Back Bay",
        "timezone": "America/New_York",
        "address": {"line": ["233 Newbury St"], "city": "Boston", "state": "MA", "postalCode": "02116"},
    },
    {
        "id": "LOC-DEN",
        "name": "Harbor Family Health — LoDo",
        "timezone": "America/Denver",
        "address": {"line": ["1701 Wynkoop St"], "city": "Denver", "state": "CO", "postalCode": "80202"},
    },
)
LOCATION_ZONES = {loc["id"]: loc["timezone"] for loc in LOCATIONS}

MON_FRI = (0, 1, 2, 3, 4)  # date.weekday()


@dataclass(frozen=True)
class Block:
    """A working window on some weekdays at one location, split into visit-type runs."""

    weekdays: tuple[int, ...]
    location: str
    runs: tuple[tuple[str, str, str], ...]  # (start "HH:MM", end "HH:MM", visit type code)
    every_weeks: int = 1  # 2: only on weeks an even number of weeks after BIWEEKLY_ANCHOR


@dataclass(frozen=True)
class ProviderTemplate:
    id: str
    given: str
    family: str
    suffix: str
    npi: str
    blocks: tuple[Block, ...]


TEMPLATES: tuple[ProviderTemplate, ...] = (
    ProviderTemplate("PRV-1001", "Maya", "Patel", "MD", "1467582930", (
        Block(MON_FRI, "LOC-BOS", (("08:00", "09:20", "NP"), ("09:20", "12:00", "FU"))),
        Block(MON_FRI, "LOC-BOS", (("13:00", "15:00", "FU"), ("15:00", "17:00", "TH"))),
    )),
    ProviderTemplate("PRV-1002", "James", "Okafor", "MD", "1639204857", (
        Block((0, 2, 4), "LOC-BOS", (("08:00", "10:00", "NP"), ("10:00", "12:00", "US"))),
        Block((0, 2, 4), "LOC-BOS", (("13:00", "17:00", "FU"),)),
        Block((1, 3), "LOC-BOS", (("10:00", "13:00", "FU"),)),
        Block((1, 3), "LOC-BOS", (("14:00", "19:00", "OV"),)),
    )),
    ProviderTemplate("PRV-1003", "Lena", "Ruiz", "NP", "1225938476", (
        Block(MON_FRI, "LOC-BOS", (("08:00", "12:00", "FU"),)),
        Block(MON_FRI, "LOC-BOS", (("13:00", "17:00", "TH"),)),
        Block((5,), "LOC-BOS", (("08:00", "12:00", "OV"),), every_weeks=2),
    )),
    ProviderTemplate("PRV-1004", "Ethan", "Brooks", "MD", "1346758290", (
        Block(MON_FRI, "LOC-DEN", (("08:00", "09:20", "NP"), ("09:20", "12:20", "OV"))),
        Block(MON_FRI, "LOC-DEN", (("13:30", "17:10", "FU"),)),
    )),
    ProviderTemplate("PRV-1005", "Grace", "Holloway", "DO", "1053829467", (
        Block((1, 3), "LOC-DEN", (("09:00", "12:20", "PE"),)),
        Block((1, 3), "LOC-DEN", (("13:00", "16:00", "OV"),)),
    )),
    ProviderTemplate("PRV-1006", "Noah", "Whitfield", "PA-C", "1790435128", (
        Block(MON_FRI, "LOC-BOS", (("09:00", "12:00", "OV"),)),
        Block(MON_FRI, "LOC-BOS", (("13:00", "17:00", "OV"),)),
    )),
)

GIVEN = ("Olivia", "Liam", "Amelia", "Noah", "Sophia", "Elijah", "Isabella", "Mateo", "Mia", "Lucas", "Harper",
         "Levi", "Evelyn", "Ezra", "Aria", "Kai", "Nora", "Leo", "Zoe", "Owen", "Priya", "Omar", "Mei", "Diego")
FAMILY = ("Anderson", "Bennett", "Chen", "Diaz", "Edwards", "Fischer", "Gupta", "Hughes", "Ibrahim", "Jensen",
          "Kowalski", "Larsen", "Moreno", "Novak", "Okonkwo", "Park", "Quinn", "Reyes", "Sato", "Torres", "Usman",
          "Vargas", "Walsh", "Young")
STAFF = ("Nguyen, Tara", "Brooks, Sam", "Alvarez, Rosa", "Kim, Daniel", "Online, Patient Portal")
PATIENT_COUNT = 400


def _hm(text: str) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    return time(hours, minutes)


def npi_with_check_digit(base9: str) -> str:
    """A 10-digit NPI with a valid Luhn check digit (prefix 80840, as the NPI standard says)."""
    digits = [int(c) for c in "80840" + base9]
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return base9 + str((10 - total % 10) % 10)


@lru_cache(maxsize=8)
def provider_templates(count: int) -> tuple[ProviderTemplate, ...]:
    """The first ``count`` providers: the named templates, then synthetic ones (for load tests)."""
    out = list(TEMPLATES[:count])
    for index in range(len(out), count):
        rng = random.Random(f"provider:{index}")
        out.append(
            ProviderTemplate(
                f"PRV-{2001 + index - len(TEMPLATES)}",
                rng.choice(GIVEN),
                rng.choice(FAMILY),
                rng.choice(("MD", "DO", "NP", "PA-C")),
                npi_with_check_digit(f"1{rng.randrange(10**8):08d}"),
                (
                    Block(MON_FRI, "LOC-BOS" if index % 3 else "LOC-DEN", (("08:00", "12:00", "OV"),)),
                    Block(MON_FRI, "LOC-BOS" if index % 3 else "LOC-DEN", (("13:00", "17:00", "FU"),)),
                ),
            )
        )
    return tuple(out)


# --- static resources ------------------------------------------------------------------------


def practitioner(template: ProviderTemplate) -> dict:
    return {
        "resourceType": "Practitioner",
        "id": template.id,
        "identifier": [{"system": NPI_SYSTEM, "value": template.npi}],
        "active": True,
        "name": [{"use": "official", "family": template.family, "given": [template.given], "suffix": [template.suffix]}],
    }


def location(data: dict) -> dict:
    return {
        "resourceType": "Location",
        "id": data["id"],
        "status": "active",
        "name": data["name"],
        "mode": "instance",
        "address": {"use": "work", **data["address"], "country": "US"},
        "extension": [{"url": TIMEZONE_EXTENSION, "valueCode": data["timezone"]}],
    }


@lru_cache(maxsize=1)
def _patients() -> tuple[dict, ...]:
    out = []
    for number in range(1, PATIENT_COUNT + 1):
        rng = random.Random(f"patient:{number}")
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        birth = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 80))
        out.append(
            {
                "resourceType": "Patient",
                "id": f"pat-{number:04d}",
                "identifier": [
                    {
                        "use": "usual",
                        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                        "system": MRN_SYSTEM,
                        "value": mrn_of(number),
                    }
                ],
                "active": True,
                "name": [{"use": "official", "family": family, "given": [given]}],
                "gender": rng.choice(("female", "male")),
                "birthDate": birth.isoformat(),
            }
        )
    return tuple(out)


def mrn_of(number: int) -> str:
    return str(100000 + number * 7)


def patients() -> tuple[dict, ...]:
    return _patients()


@lru_cache(maxsize=1)
def patients_by_id() -> dict[str, dict]:
    return {p["id"]: p for p in _patients()}


# --- the dataset -----------------------------------------------------------------------------


def _block_works_on(block: Block, day: date) -> bool:
    if day.weekday() not in block.weekdays:
        return False
    if block.every_weeks > 1:
        return ((day - BIWEEKLY_ANCHOR).days // 7) % block.every_weeks == 0
    return True


def _slot_starts(block: Block):
    """(start, end, visit type) of every slot of the block, in order."""
    for run_start, run_end, code in block.runs:
        minutes = VISIT_TYPES[code][1]
        cursor = datetime.combine(date(2000, 1, 1), _hm(run_start))
        stop = datetime.combine(date(2000, 1, 1), _hm(run_end))
        while cursor + timedelta(minutes=minutes) <= stop:
            yield cursor.time(), (cursor + timedelta(minutes=minutes)).time(), code
            cursor += timedelta(minutes=minutes)


def schedule_id(template: ProviderTemplate, location_id: str) -> str:
    return f"SCH-{template.id}-{location_id}"


@lru_cache(maxsize=8192)
def _day(template: ProviderTemplate, day: date, past: bool, all_ids: tuple[str, ...]) -> tuple[tuple[dict, ...], tuple[dict, ...]]:
    """The provider's slots and appointments on one date (``past``: the date is before today)."""
    rng = random.Random(f"{day.isoformat()}|{template.id}")
    slots, appointments = [], []
    index = 0
    for block in template.blocks:
        if not _block_works_on(block, day):
            continue
        zone = ZoneInfo(LOCATION_ZONES[block.location])
        sched = schedule_id(template, block.location)
        for start_t, end_t, code in _slot_starts(block):
            index += 1
            start = datetime.combine(day, start_t, tzinfo=zone)
            end = datetime.combine(day, end_t, tzinfo=zone)
            slot_id = f"{sched}-{day:%Y%m%d}-{start_t:%H%M}"
            booked = rng.random() < BOOK_PROBABILITY
            # Draw everything in a fixed order, whether used or not, so a date never changes.
            patient_number = rng.randrange(1, PATIENT_COUNT + 1)
            status_roll = rng.random()
            reason = rng.choice(REASONS[code])
            created_days = rng.randrange(1, 46)
            created_minutes = rng.randrange(8 * 60, 18 * 60)
            staff = rng.choice(STAFF)
            secondary_roll = rng.random()
            occupies = False
            if booked:
                if past:
                    status = "fulfilled" if status_roll < 0.85 else ("noshow" if status_roll < 0.90 else "cancelled")
                else:
                    status = "booked" if status_roll < 0.88 else ("cancelled" if status_roll < 0.96 else "pending")
                occupies = status not in ("cancelled", "noshow")
                patient = patients_by_id()[f"pat-{patient_number:04d}"]
                pname = patient["name"][0]
                participants = [
                    {
                        "type": [{"coding": [{"system": PARTICIPATION, "code": "SBJ"}]}],
                        "actor": {"reference": f"Patient/{patient['id']}", "display": f"{pname['given'][0]} {pname['family']}"},
                        "required": "required",
                        "status": "accepted",
                    },
                    {
                        "type": [{"coding": [{"system": PARTICIPATION, "code": "PPRF", "display": "primary performer"}]}],
                        "actor": {"reference": f"Practitioner/{template.id}", "display": f"{template.given} {template.family}"},
                        "required": "required",
                        "status": "accepted",
                    },
                ]
                if secondary_roll < 0.1:
                    others = [pid for pid in all_ids if pid != template.id]
                    if others:
                        other = others[(index + day.toordinal()) % len(others)]
                        participants.append(
                            {
                                "type": [{"coding": [{"system": PARTICIPATION, "code": "SPRF", "display": "secondary performer"}]}],
                                "actor": {"reference": f"Practitioner/{other}"},
                                "required": "optional",
                                "status": "accepted",
                            }
                        )
                location_data = next(loc for loc in LOCATIONS if loc["id"] == block.location)
                participants.append(
                    {
                        "actor": {"reference": f"Location/{block.location}", "display": location_data["name"]},
                        "required": "required",
                        "status": "accepted",
                    }
                )
                created = datetime.combine(day - timedelta(days=created_days), time(created_minutes // 60, created_minutes % 60), tzinfo=zone)
                appointment = {
                    "resourceType": "Appointment",
                    "id": f"{day:%Y%m%d}-{template.id}-{index:02d}",
                    "meta": {"tag": [{"code": "locked", "display": "Encounter locked"}]} if past and status == "fulfilled" else {},
                    "status": status,
                    "appointmentType": {
                        "coding": [{"system": VISIT_TYPE_SYSTEM, "code": code, "display": VISIT_TYPES[code][0]}],
                        "text": VISIT_TYPES[code][0],
                    },
                    "reasonCode": [{"text": reason}],
                    "description": f"{VISIT_TYPES[code][0]}: {reason}",
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "minutesDuration": VISIT_TYPES[code][1],
                    "slot": [{"reference": f"Slot/{slot_id}"}],
                    "created": created.isoformat(),
                    "participant": participants,
                    "_created_by": staff,  # becomes a Provenance resource; stripped before serving
                }
                if not appointment["meta"]:
                    del appointment["meta"]
                appointments.append(appointment)
            slots.append(
                {
                    "resourceType": "Slot",
                    "id": slot_id,
                    "schedule": {"reference": f"Schedule/{sched}"},
                    "status": "busy" if occupies else "free",
                    "appointmentType": {"coding": [{"system": VISIT_TYPE_SYSTEM, "code": code, "display": VISIT_TYPES[code][0]}]},
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                }
            )
    return tuple(slots), tuple(appointments)


def public(resource: dict) -> dict:
    """The resource as served (internal ``_…`` keys removed)."""
    return {k: v for k, v in resource.items() if not k.startswith("_")}


def provenance_for(appointment: dict) -> dict:
    return {
        "resourceType": "Provenance",
        "id": f"PRV-CREATE-{appointment['id']}",
        "target": [{"reference": f"Appointment/{appointment['id']}"}],
        "recorded": appointment["created"],
        "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "CREATE"}]},
        "agent": [{"who": {"display": appointment["_created_by"]}}],
    }


class SandboxDataset:
    """The practice as seen on ``today`` (a date in the practice's zone)."""

    def __init__(self, *, today: date, provider_count: int = len(TEMPLATES)):
        self.today = today
        self.first_day = today - timedelta(days=PAST_DAYS)
        self.last_day = today + timedelta(days=FUTURE_DAYS)
        self.templates = provider_templates(max(1, provider_count))
        self._ids = tuple(t.id for t in self.templates)
        self.zone = ZoneInfo(PRACTICE_TIMEZONE)

    @classmethod
    def for_now(cls, *, provider_count: int = len(TEMPLATES), now: datetime | None = None) -> SandboxDataset:
        moment = now or datetime.now(ZoneInfo(PRACTICE_TIMEZONE))
        return cls(today=moment.astimezone(ZoneInfo(PRACTICE_TIMEZONE)).date(), provider_count=provider_count)

    def days(self, first: date | None = None, last: date | None = None):
        day = max(self.first_day, first or self.first_day)
        stop = min(self.last_day, last or self.last_day)
        while day <= stop:
            yield day
            day += timedelta(days=1)

    def template(self, provider_id: str) -> ProviderTemplate | None:
        return next((t for t in self.templates if t.id == provider_id), None)

    def practitioners(self) -> list[dict]:
        return [practitioner(t) for t in self.templates]

    def locations(self) -> list[dict]:
        return [location(loc) for loc in LOCATIONS]

    def patients(self) -> tuple[dict, ...]:
        return patients()

    def schedules(self) -> list[dict]:
        out = []
        for template in self.templates:
            for location_id in dict.fromkeys(block.location for block in template.blocks):
                zone = ZoneInfo(LOCATION_ZONES[location_id])
                loc = next(loc for loc in LOCATIONS if loc["id"] == location_id)
                out.append(
                    {
                        "resourceType": "Schedule",
                        "id": schedule_id(template, location_id),
                        "active": True,
                        "actor": [
                            {"reference": f"Practitioner/{template.id}", "display": f"{template.given} {template.family}"},
                            {"reference": f"Location/{location_id}", "display": loc["name"]},
                        ],
                        "planningHorizon": {
                            "start": datetime.combine(self.first_day, time(0), tzinfo=zone).isoformat(),
                            "end": datetime.combine(self.last_day + timedelta(days=1), time(0), tzinfo=zone).isoformat(),
                        },
                    }
                )
        return out

    def day(self, template: ProviderTemplate, day: date) -> tuple[tuple[dict, ...], tuple[dict, ...]]:
        if not self.first_day <= day <= self.last_day:
            return (), ()
        return _day(template, day, day < self.today, self._ids)

    def appointments(self, *, first: date | None = None, last: date | None = None, provider_ids=None) -> list[dict]:
        out = []
        templates = [t for t in self.templates if provider_ids is None or t.id in provider_ids]
        for day in self.days(first, last):
            for template in templates:
                out.extend(self.day(template, day)[1])
        return out

    def slots(self, *, first: date | None = None, last: date | None = None, provider_ids=None) -> list[dict]:
        out = []
        templates = [t for t in self.templates if provider_ids is None or t.id in provider_ids]
        for day in self.days(first, last):
            for template in templates:
                out.extend(self.day(template, day)[0])
        return out
