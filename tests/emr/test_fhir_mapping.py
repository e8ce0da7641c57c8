"""The FHIR → model mapping, checked on the HL7 R4 example resources (dates shifted to near
today), and the schedule → shifts inference."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from rest_framework.test import APIClient

from booking.models import Appointment, Location, Resource
from emr.adapters.fhir import map_appointment, map_location, map_practitioner, patient_mrn, shifts_from_slots
from emr.models import Job
from tests.conftest import make_tenant
from tests.emr.conftest import connect_fake, run_queued_tasks
from tests.emr.fake_fhir import FakeFhirServer

FIXTURES = Path(__file__).parent / "fixtures"
UTC = UTC
# The examples' appointments are on 2013-12-09/10; move them to the next Monday/Tuesday pair.
ANCHOR = date(2013, 12, 9)
_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2})(.*)$")


def _target_monday() -> date:
    today = date.today()
    return today + timedelta(days=(7 - today.weekday()) % 7 or 7)


SHIFT = _target_monday() - ANCHOR


def shifted(value):
    """Every date and date-time in the resource moved by ``SHIFT`` (a whole number of weeks, so
    weekdays stay)."""
    if isinstance(value, dict):
        return {k: shifted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shifted(v) for v in value]
    if isinstance(value, str) and (match := _ISO.match(value)):
        try:
            day = date.fromisoformat(match.group(1))
        except ValueError:
            return value
        return (day + SHIFT).isoformat() + match.group(2)
    return value


def load(name: str) -> dict:
    return shifted(json.loads((FIXTURES / f"{name}.json").read_text()))


def at(day_offset: int, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(ANCHOR + SHIFT + timedelta(days=day_offset), time(hh, mm), tzinfo=UTC)


assert SHIFT.days % 7 == 0


def test_hl7_appointment_example_maps_to_our_appointment_fields():
    mapped = map_appointment(
        load("appointment-example"),
        zone=ZoneInfo("UTC"),
        patients={"example": load("patient-example")},
        practitioners={"example": load("practitioner-example")},
        locations={"1": load("location-example")},
    )
    assert mapped.ehr_id == "example"
    assert (mapped.start, mapped.end) == (at(1, 9), at(1, 11))
    assert mapped.status == "booked" and mapped.occupies_time is True
    assert (mapped.visit_type_code, mapped.visit_type_display) == ("FOLLOWUP", "A follow up visit from a previous appointment")
    assert mapped.reason == "Severe burn of left ear"  # reasonReference display before description
    assert (mapped.patient_ehr_id, mapped.patient_mrn, mapped.patient_name) == ("example", "12345", "Peter James Chalmers")
    assert (mapped.provider_ehr_id, mapped.provider_name) == ("example", "Adam Careful")
    assert (mapped.provider_first_name, mapped.provider_last_name) == ("Adam", "Careful")
    assert mapped.secondary_provider_ehr_id is None
    assert (mapped.location_ehr_id, mapped.location_name) == ("1", "South Wing, second floor")
    assert mapped.created_at == datetime.combine(date(2013, 10, 10) + SHIFT, time(0), tzinfo=ZoneInfo("UTC"))
    assert mapped.created_by == "" and mapped.locked is False


def test_two_practitioners_become_primary_and_secondary_provider():
    mapped = map_appointment(
        load("appointment-example2doctors"),
        zone=ZoneInfo("UTC"),
        practitioners={"f202": load("practitioner-example-f202-lm")},
    )
    assert (mapped.provider_ehr_id, mapped.provider_name) == ("example", "Dr Adam Careful")  # display: not included
    assert (mapped.secondary_provider_ehr_id, mapped.secondary_provider_name) == ("f202", "Luigi Maas")
    assert (mapped.start, mapped.end) == (at(0, 9), at(0, 11))
    assert mapped.visit_type_code == "WALKIN"
    assert mapped.reason == "Discussion about Peter Chalmers MRI results"  # no reason: the description
    # The patient was not included: name from the reference's display, MRN unknown.
    assert (mapped.patient_ehr_id, mapped.patient_name, mapped.patient_mrn) == ("example", "Peter James Chalmers", "")
    assert mapped.location_ehr_id is None  # the "Phone Call" participant has no reference


def test_primary_and_secondary_performer_types_win_over_order():
    resource = load("appointment-example2doctors")
    resource["participant"][1]["type"] = [{"coding": [{"code": "SPRF"}]}]
    resource["participant"][2]["type"] = [{"coding": [{"code": "PPRF"}]}]
    mapped = map_appointment(resource, zone=ZoneInfo("UTC"))
    assert (mapped.provider_ehr_id, mapped.secondary_provider_ehr_id) == ("f202", "example")


def test_a_requested_appointment_without_a_time_is_skipped():
    assert map_appointment(load("appointment-example-request"), zone=ZoneInfo("UTC")) is None


def test_minutes_duration_gives_the_end_when_end_is_missing():
    resource = load("appointment-example-request")
    resource["start"] = at(2, 14).isoformat()
    mapped = map_appointment(resource, zone=ZoneInfo("UTC"))
    assert (mapped.start, mapped.end) == (at(2, 14), at(2, 14, 15))
    assert mapped.status == "proposed" and mapped.reason == "Clinical Review"  # reasonCode text


@pytest.mark.parametrize("status,occupies", [("booked", True), ("arrived", True), ("fulfilled", True), ("pending", True),
                                              ("cancelled", False), ("noshow", False), ("entered-in-error", False), ("waitlist", False)])
def test_status_decides_whether_the_appointment_occupies_time(status, occupies):
    resource = {**load("appointment-example"), "status": status}
    assert map_appointment(resource, zone=ZoneInfo("UTC")).occupies_time is occupies


def test_practitioner_and_location_examples():
    careful = map_practitioner(load("practitioner-example"))
    assert (careful.ehr_id, careful.name, careful.first_name, careful.last_name, careful.npi) == ("example", "Adam Careful", "Adam", "Careful", "")
    maas = map_practitioner(load("practitioner-example-f202-lm"))
    assert (maas.name, maas.first_name, maas.last_name, maas.active) == ("Luigi Maas", "Luigi", "Maas", True)
    with_npi = map_practitioner({**load("practitioner-example"), "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}]})
    assert with_npi.npi == "1234567893"

    location = map_location(load("location-example"))
    assert (location.ehr_id, location.name, location.active, location.timezone) == ("1", "South Wing, second floor", True, None)
    assert location.address == "Galapagosweg 91, Building A, Den Burg, 9105 PZ"
    zoned = map_location({**load("location-example"), "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/timezone", "valueCode": "Europe/Amsterdam"}]})
    assert zoned.timezone == "Europe/Amsterdam"
    bad_zone = map_location({**load("location-example"), "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/timezone", "valueCode": "Mars/Olympus"}]})
    assert bad_zone.timezone is None


def test_mrn_is_the_identifier_typed_mr_unless_a_system_is_configured():
    patient = load("patient-example")
    patient["identifier"].insert(0, {"system": "urn:other", "value": "X-1"})
    assert patient_mrn(patient) == "12345"
    assert patient_mrn(patient, "urn:other") == "X-1"
    assert patient_mrn(patient, "urn:unknown") == "12345"


def test_hl7_slot_examples_become_a_one_day_shift():
    slots = [load(n) for n in ("slot-example-busy", "slot-example", "slot-example-unavailable", "slot-example-tentative")]
    shifts = shifts_from_slots(slots, zone=ZoneInfo("UTC"), location_ehr_id="3")
    day = date(2013, 12, 25) + SHIFT
    # busy + free merge into 09:00-09:30; busy-unavailable (09:30-09:45) is time off; tentative counts.
    assert [(s.start_time, s.end_time) for s in shifts] == [(time(9), time(9, 30)), (time(9, 45), time(10))]
    assert all((s.weekday, s.valid_from, s.valid_until, s.every_weeks, s.location_ehr_id) == (day.weekday(), day, day, 1, "3") for s in shifts)
    assert [(r.start_time, r.end_time, r.total_visits, r.visit_type_code) for r in shifts[0].rules] == [(time(9, 15), time(9, 30), 1, "WALKIN")]
    assert shifts[1].rules == ()


def _slots(days: list[date], zone: str, start: str, end: str, minutes: int, code: str) -> list[dict]:
    out = []
    for day in days:
        cursor = datetime.combine(day, time.fromisoformat(start), tzinfo=ZoneInfo(zone))
        stop = datetime.combine(day, time.fromisoformat(end), tzinfo=ZoneInfo(zone))
        while cursor < stop:
            out.append({"resourceType": "Slot", "status": "free", "start": cursor.astimezone(UTC).isoformat(),
                        "end": (cursor + timedelta(minutes=minutes)).astimezone(UTC).isoformat(),
                        "appointmentType": {"coding": [{"code": code, "display": code.title()}]}})
            cursor += timedelta(minutes=minutes)
    return out


def test_weekly_shift_survives_a_missed_week_and_keeps_local_hours_across_dst():
    zone = "America/New_York"
    mondays = [date(2025, 10, 27) + timedelta(weeks=i) for i in range(4)]  # DST ends 2025-11-02
    holiday_skipped = [mondays[0], mondays[2], mondays[3]]
    slots = _slots(holiday_skipped, zone, "09:00", "10:00", 20, "FU") + _slots(holiday_skipped, zone, "10:00", "11:00", 30, "NP")
    shifts = shifts_from_slots(slots, zone=ZoneInfo(zone), location_ehr_id=None, horizon_from=date(2025, 10, 27), horizon_until=date(2025, 11, 23))
    assert len(shifts) == 1
    shift = shifts[0]
    assert (shift.weekday, shift.start_time, shift.end_time, shift.every_weeks) == (0, time(9), time(11), 1)
    assert (shift.valid_from, shift.valid_until) == (date(2025, 10, 27), date(2025, 11, 23))
    assert [(r.start_time, r.end_time, r.total_visits, r.visit_type_code) for r in shift.rules] == [
        (time(9), time(10), 3, "FU"), (time(10), time(11), 2, "NP")
    ]


def test_every_other_week_shift_is_anchored_on_its_first_date():
    saturdays = [date(2025, 1, 4), date(2025, 1, 18)]
    shifts = shifts_from_slots(_slots(saturdays, "UTC", "08:00", "12:00", 20, "OV"), zone=ZoneInfo("UTC"), location_ehr_id="L")
    assert [(s.weekday, s.every_weeks, s.valid_from, s.start_time, s.end_time) for s in shifts] == [(5, 2, date(2025, 1, 4), time(8), time(12))]


def test_a_shift_ending_at_midnight_ends_at_end_of_day():
    shifts = shifts_from_slots(_slots([date(2025, 3, 3)], "UTC", "22:00", "23:59", 60, "OV")[:1] + [
        {"status": "free", "start": "2025-03-03T23:00:00+00:00", "end": "2025-03-04T00:00:00+00:00"}], zone=ZoneInfo("UTC"), location_ehr_id=None)
    assert [(s.start_time, s.end_time) for s in shifts] == [(time(22), time(0))]


@pytest.mark.django_db(transaction=True)
def test_hl7_examples_served_by_a_fhir_server_land_in_the_cache():
    fake = FakeFhirServer(
        static={
            "Appointment": [load("appointment-example"), load("appointment-example2doctors"), load("appointment-example-request")],
            "Patient": [load("patient-example")],
            "Practitioner": [load("practitioner-example"), load("practitioner-example-f202-lm")],
            "Location": [load("location-example")],
        }
    ).start()
    try:
        tenant = make_tenant("HL7 Clinic", timezone_name="UTC")
        connection = connect_fake(tenant, fake)
        client = APIClient()
        client.credentials(HTTP_CLIENT_ID=tenant.client_id, HTTP_CLIENT_SECRET=tenant.client_secret, HTTP_ACCESS_TOKEN=connection.issued_access_token)
        first = ANCHOR + SHIFT
        response = client.post("/v1/appointments/fetch", {"start_date": first.isoformat(), "end_date": (first + timedelta(days=1)).isoformat()}, format="json")
        assert response.status_code == 202
        run_queued_tasks()
        job = Job.objects.get(pk=response.json()["job_id"])
        assert job.status == Job.Status.SUCCEEDED, job.error
    finally:
        fake.stop()

    rows = {a.ehr_appointment_id: a for a in Appointment.objects.filter(emr_connection=connection)}
    assert set(rows) == {"example", "2docs"}  # the request without a time is skipped
    example, two = rows["example"], rows["2docs"]
    assert (example.patient_mrn, example.patient_name) == ("12345", "Peter James Chalmers")
    assert example.primary_provider.ehr_id == "example" and example.primary_provider.name == "Adam Careful"
    assert example.location.ehr_id == "1" and example.location.name == "South Wing, second floor"
    assert two.primary_provider.ehr_id == "example" and two.secondary_provider.ehr_id == "f202"
    assert two.secondary_provider.name == "Luigi Maas"
    assert set(Resource.objects.filter(emr_connection=connection).values_list("ehr_id", flat=True)) == {"example", "f202"}
    assert Location.objects.get(organization=tenant.organization, ehr_id="1").emr_connection_id == connection.pk
    assert set(two.resource_links.values_list("resource__ehr_id", flat=True)) == {"example", "f202"}
