"""A realistic demo organization: a two-site clinic with providers, a room and devices.

``demo_data_ensure`` is idempotent: it builds the data once, keyed by the organization's slug,
and leaves an existing demo alone. Dates are relative to today, so the demo always has upcoming
appointments and blocks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction

from booking.models import (
    Appointment,
    AppointmentResource,
    Block,
    Location,
    RecurringBlock,
    Resource,
    ResourceService,
    Service,
    Shift,
)
from booking.services.invalidation import availability_invalidate
from tenants.models import Organization

WEEKDAYS = (1, 2, 3, 4, 5)  # Monday … Friday (0 = Sunday)


def _hours(days, start: str, end: str) -> list[dict]:
    return [{"dayOfWeek": d, "startTime": start, "endTime": end} for d in days]


@dataclass(frozen=True)
class _Person:
    name: str
    type: str
    location: str  # key into locations
    services: tuple[str, ...]
    email: str = ""
    npi: str = ""
    states: tuple[str, ...] = ()
    capacity: int | None = None
    # (days, start, end) windows; two windows a day make a lunch break
    hours: tuple[tuple[tuple[int, ...], str, str], ...] = ()


LOCATIONS = {
    "boston": dict(
        name="Harbor Family Health — Back Bay",
        timezone="America/New_York",
        address="233 Newbury St, Boston, MA 02116",
        weekly_availability=_hours(WEEKDAYS, "07:30:00", "19:00:00") + _hours((6,), "08:00:00", "12:00:00"),
        hold_expiration_minutes=10,
        ehr_id="LOC-BOS",
    ),
    "denver": dict(
        name="Harbor Family Health — LoDo",
        timezone="America/Denver",
        address="1701 Wynkoop St, Denver, CO 80202",
        weekly_availability=_hours(WEEKDAYS, "08:00:00", "18:00:00"),
        hold_expiration_minutes=15,
        ehr_id="LOC-DEN",
    ),
}

SERVICES = {
    "new": dict(name="New patient visit", duration=60, padding=10, visit_type="NP"),
    "follow": dict(name="Follow-up visit", duration=20, padding=5, booking_interval=10, visit_type="FU"),
    "tele": dict(name="Telehealth check-in", duration=15, visit_type="TH"),
    "pt": dict(
        name="Physical therapy session",
        duration=45,
        padding=15,
        duration_select=True,
        duration_min=30,
        duration_max=90,
        duration_interval=15,
        booking_interval=15,
        visit_type="PT",
    ),
    "lab": dict(name="Lab draw", duration=10, bookings_per_slot=2, booking_interval=10, visit_type="LAB"),
    # Rooms and devices are never booked alone: they join a clinician through COMBINED (the client
    # asks for both, e.g. ResourceIds=Dr. Okafor&ResourceIds=Ultrasound unit).
    "ultra": dict(name="Ultrasound", duration=30, padding=10, round_robin="COMBINED", visit_type="US"),
    "procedure": dict(name="Minor procedure", duration=30, padding=15, round_robin="COMBINED", visit_type="PROC"),
}

MORNING_AFTERNOON = ((WEEKDAYS, "08:00:00", "12:00:00"), (WEEKDAYS, "13:00:00", "17:00:00"))

PEOPLE = (
    _Person("Dr. Maya Patel", "provider", "boston", ("new", "follow", "tele", "procedure"), "maya.patel@harbor.example",
            "1467582930", ("MA", "NH", "RI"), hours=MORNING_AFTERNOON),
    _Person("Dr. James Okafor", "provider", "boston", ("new", "follow", "ultra", "procedure"), "james.okafor@harbor.example",
            "1639204857", ("MA", "CT"),
            hours=(((1, 3, 5), "08:00:00", "12:00:00"), ((1, 3, 5), "13:00:00", "17:00:00"),
                   ((2, 4), "10:00:00", "13:00:00"), ((2, 4), "14:00:00", "19:00:00"))),
    _Person("Lena Ruiz, NP", "provider", "boston", ("follow", "tele"), "lena.ruiz@harbor.example", "1225938476",
            ("MA", "NY", "VT"),
            hours=MORNING_AFTERNOON + (((6,), "08:00:00", "12:00:00"),)),
    _Person("Exam Room 3", "room", "boston", ("procedure",), hours=((WEEKDAYS, "07:30:00", "19:00:00"),)),
    _Person("Ultrasound unit", "equipment", "boston", ("ultra",), hours=((WEEKDAYS, "08:00:00", "17:00:00"),)),
    _Person("Dr. Ethan Brooks", "provider", "denver", ("new", "follow", "tele"), "ethan.brooks@harbor.example",
            "1346758290", ("CO", "WY", "UT"), hours=((WEEKDAYS, "08:00:00", "12:30:00"), (WEEKDAYS, "13:30:00", "17:00:00"))),
    _Person("Sofia Marin, DPT", "staff", "denver", ("pt",), "sofia.marin@harbor.example",
            hours=((WEEKDAYS, "09:00:00", "12:00:00"), (WEEKDAYS, "12:45:00", "18:00:00"))),
    # Two draw chairs: the phlebotomist takes two patients at a time.
    _Person("Noah Reyes, phlebotomist", "staff", "denver", ("lab",), "noah.reyes@harbor.example", capacity=2,
            hours=((WEEKDAYS, "08:00:00", "11:30:00"),)),
)

PATIENTS = (
    ("Avery Johnson", "MRN100231"), ("Benjamin Lee", "MRN100487"), ("Chloe Martinez", "MRN100562"),
    ("Daniel Kim", "MRN100733"), ("Emma Wilson", "MRN100814"), ("Felix Nguyen", "MRN100920"),
    ("Grace Thompson", "MRN101045"), ("Henry Garcia", "MRN101176"), ("Isla Robinson", "MRN101203"),
    ("Jack Turner", "MRN101388"), ("Kaia Lopez", "MRN101412"), ("Liam Carter", "MRN101590"),
)


def _parse(hms: str) -> time:
    h, m, s = (int(x) for x in hms.split(":"))
    return time(0) if h == 24 else time(h, m, s)


def _next_weekday(start: date, weekday_sunday0: int) -> date:
    """The first date on or after ``start`` with that weekday (0 = Sunday)."""
    python_weekday = (weekday_sunday0 - 1) % 7
    return start + timedelta(days=(python_weekday - start.weekday()) % 7)


@transaction.atomic
def demo_data_ensure(*, organization: Organization, today: date | None = None) -> bool:
    """Fill the organization with the demo clinic unless it already has locations.

    Returns True when data was created.
    """
    if Location.objects.filter(organization=organization).exists():
        return False
    today = today or date.today()
    org = organization
    locations = {key: Location.objects.create(organization=org, **data) for key, data in LOCATIONS.items()}
    services = {key: Service.objects.create(organization=org, **data) for key, data in SERVICES.items()}
    resources: dict[str, Resource] = {}
    for person in PEOPLE:
        resource = Resource.objects.create(
            organization=org,
            name=person.name,
            type=person.type,
            email=person.email,
            npi=person.npi,
            licensed_states=list(person.states),
            bookings_per_slot=person.capacity,
        )
        resources[person.name] = resource
        location = locations[person.location]
        ResourceService.objects.bulk_create(
            ResourceService(organization=org, resource=resource, service=services[key], location=location)
            for key in person.services
        )
        Shift.objects.bulk_create(
            Shift(organization=org, resource=resource, day_of_week=day, start_time=_parse(start), end_time=_parse(end))
            for days, start, end in person.hours
            for day in days
        )

    # A week of leave, a half-day training, the Back Bay site closed for a holiday, and a weekly
    # staff meeting.
    boston_tz = ZoneInfo("America/New_York")
    leave_start = _next_weekday(today + timedelta(days=14), 1)
    Block.objects.create(
        organization=org, resource=resources["Dr. Maya Patel"], reason="Annual leave",
        start=datetime.combine(leave_start, time(0), boston_tz),
        end=datetime.combine(leave_start + timedelta(days=5), time(0), boston_tz),
    )
    training = _next_weekday(today + timedelta(days=2), 4)
    Block.objects.create(
        organization=org, resource=resources["Dr. Ethan Brooks"], reason="CME training",
        start=datetime.combine(training, time(13, 30), ZoneInfo("America/Denver")),
        end=datetime.combine(training, time(17), ZoneInfo("America/Denver")),
    )
    holiday = _next_weekday(today + timedelta(days=21), 5)
    Block.objects.create(
        organization=org, location=locations["boston"], reason="Site closed: building maintenance",
        start=datetime.combine(holiday, time(0), boston_tz),
        end=datetime.combine(holiday + timedelta(days=1), time(0), boston_tz),
    )
    RecurringBlock.objects.create(
        organization=org, location=locations["boston"], frequency=RecurringBlock.Frequency.WEEKLY,
        weekdays=[3], start_date=today - timedelta(days=30), start_time=time(12), end_time=time(13),
        reason="Weekly staff meeting",
    )
    RecurringBlock.objects.create(
        organization=org, resource=resources["Ultrasound unit"], frequency=RecurringBlock.Frequency.MONTHLY,
        month_day=1, start_date=today - timedelta(days=60), start_time=time(8), end_time=time(10),
        reason="Monthly calibration",
    )

    _demo_appointments(org, today, locations, services, resources)
    availability_invalidate(organization_id=org.pk)
    return True


def _demo_appointments(org, today, locations, services, resources) -> None:
    """Booked visits on the coming weekdays, at free times inside working hours."""
    rng = random.Random(20261121)
    plan = [
        ("Dr. Maya Patel", "follow", "boston", ["09:00", "10:30", "14:00"]),
        ("Dr. James Okafor", "new", "boston", ["10:00", "15:00"]),
        ("Lena Ruiz, NP", "tele", "boston", ["08:30", "11:15", "16:00"]),
        ("Dr. Ethan Brooks", "new", "denver", ["09:00", "10:30"]),
        ("Sofia Marin, DPT", "pt", "denver", ["09:00", "13:00", "15:30"]),
    ]
    appointments, links = [], []
    for offset in range(1, 11):
        day = today + timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        for name, service_key, location_key, times in plan:
            if rng.random() < 0.35:
                continue
            hm = rng.choice(times)
            zone = ZoneInfo(locations[location_key].timezone)
            start = datetime.combine(day, time(*(int(x) for x in hm.split(":"))), zone)
            service = services[service_key]
            patient, mrn = rng.choice(PATIENTS)
            appt = Appointment(
                organization=org, status=Appointment.Status.BOOKED, start=start,
                end=start + timedelta(minutes=service.duration), service=service, location=locations[location_key],
                customer_name=patient, customer_email=f"{patient.split()[0].lower()}@patients.example",
                patient_mrn=mrn, patient_name=patient, notes="Booked at the front desk",
            )
            appointments.append(appt)
            links.append(AppointmentResource(appointment=appt, resource=resources[name]))
    Appointment.objects.bulk_create(appointments)
    AppointmentResource.objects.bulk_create(links)
