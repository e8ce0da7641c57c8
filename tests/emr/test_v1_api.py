"""``/v1/`` reads and management: cached appointments, providers and their hours, locations,
settings."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from booking.models import Appointment, Location, Resource, Shift, VisitTypeRule
from emr.models import EmrConnection, LocalHours, VisitType
from tenants.models import Organization
from tests.conftest import make_tenant

NY = ZoneInfo("America/New_York")


@pytest.fixture
def clinic(db):
    tenant = make_tenant("Clinic", timezone_name="America/New_York")
    org, conn = tenant.organization, tenant.emr_connection
    main = Location.objects.create(organization=org, name="Main", timezone="America/New_York", ehr_id="LOC-1", emr_connection=conn)
    annex = Location.objects.create(organization=org, name="Annex", timezone="America/New_York")  # no EHR id, no connection
    doc = Resource.objects.create(organization=org, name="Dr Ada", type="provider", ehr_id="P-1", npi="1234567893", emr_connection=conn, timezone="America/New_York")
    nurse = Resource.objects.create(organization=org, name="Nurse Bo", type="provider", ehr_id="P-2", emr_connection=conn)
    VisitType.objects.create(organization=org, emr_connection=conn, code="FU", description="Follow-Up Visit")
    return tenant, main, annex, doc, nurse


def appointment(tenant, *, ehr_id, start, minutes=30, provider=None, secondary=None, mrn="100", name="Jane Roe", ehr_status="booked",
                status=Appointment.Status.BOOKED, location=None):
    return Appointment.objects.create(
        organization=tenant.organization, emr_connection=tenant.emr_connection, source="emr", ehr_appointment_id=ehr_id,
        start=start, end=start + timedelta(minutes=minutes), primary_provider=provider, secondary_provider=secondary,
        patient_mrn=mrn, patient_name=name, ehr_status=ehr_status, status=status, appointment_type="FU", location=location,
        reason="Check", ehr_created_by="Desk, Front",
    )


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=NY)


DAY = date(2025, 3, 10)  # DST starts in New York on 2025-03-09


def test_cached_appointments_shape_and_date_bounds(clinic):
    tenant, main, annex, doc, nurse = clinic
    a = appointment(tenant, ehr_id="A1", start=local(DAY, 9), provider=doc, secondary=nurse, location=main)
    appointment(tenant, ehr_id="A0", start=local(DAY, 0, 0) - timedelta(minutes=1), provider=doc)  # the day before
    late = appointment(tenant, ehr_id="A2", start=local(DAY, 23, 30), provider=nurse)
    response = tenant.v1().get(f"/v1/appointments?start_date={DAY}&end_date={DAY}")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert [x["ehr_appointment_id"] for x in body["appointments"]] == ["A1", "A2"]
    assert body["appointments"][0] == {
        "id": str(a.pk),
        "ehr_appointment_id": "A1",
        "datetime": "2025-03-10T09:00:00-04:00",
        "duration": 30,
        "status": "booked",
        "appointment_type": "FU (Follow-Up Visit)",
        "provider_ehr_id": "P-1",
        "secondary_provider_ehr_id": "P-2",
        "location": "Main",
        "location_ehr_id": "LOC-1",
        "patient_mrn": "100",
        "patient_name": "Jane Roe",
        "reason": "Check",
        "locked": False,
        "created_at": None,
        "created_by": "Desk, Front",
        "object_metadata": {"source": "emr"},
    }
    # ISO date-times are exact instants (end exclusive); without an offset they are EMR-local.
    by_instant = tenant.v1().get("/v1/appointments", {"start_date": "2025-03-10T09:00:00-04:00", "end_date": "2025-03-10T23:30:00"}).json()
    assert [x["ehr_appointment_id"] for x in by_instant["appointments"]] == ["A1"]
    next_day = tenant.v1().get("/v1/appointments", {"start_date": "2025-03-10T23:00:00-04:00", "end_date": str(DAY + timedelta(days=1))}).json()
    assert [x["id"] for x in next_day["appointments"]] == [str(late.pk)]



def test_cached_appointments_are_the_connections_emr_rows_only(clinic):
    """Bookings made through /v3/ (no EMR connection) are not in the EMR's cache: the /v1/ list
    leaves them out, so its object_metadata.source is always "emr"."""
    tenant, main, annex, doc, nurse = clinic
    appointment(tenant, ehr_id="A1", start=local(DAY, 9), provider=doc, location=main)
    Appointment.objects.create(
        organization=tenant.organization, source=Appointment.Source.API, start=local(DAY, 10), end=local(DAY, 10, 30),
        primary_provider=doc, location=main, customer_name="Walk In", status=Appointment.Status.BOOKED,
    )
    body = tenant.v1().get(f"/v1/appointments?start_date={DAY}&end_date={DAY}").json()
    assert [(x["ehr_appointment_id"], x["object_metadata"]) for x in body["appointments"]] == [("A1", {"source": "emr"})]
    assert Appointment.objects.filter(organization=tenant.organization, start__date=DAY).count() == 2

def test_cached_appointment_filters(clinic):
    tenant, main, annex, doc, nurse = clinic
    appointment(tenant, ehr_id="A1", start=local(DAY, 9), provider=doc, mrn="100", name="Jane Roe")
    appointment(tenant, ehr_id="A2", start=local(DAY, 10), provider=nurse, secondary=doc, mrn="200", name="John ROEBUCK", ehr_status="Cancelled",
                status=Appointment.Status.CANCELLED)
    appointment(tenant, ehr_id="A3", start=local(DAY, 11), provider=nurse, mrn="300", name="Ann Smith")

    def ids(**params):
        response = tenant.v1().get("/v1/appointments", {"start_date": str(DAY), "end_date": str(DAY), **params})
        assert response.status_code == 200, response.content
        return [x["ehr_appointment_id"] for x in response.json()["appointments"]]

    assert ids() == ["A1", "A2", "A3"]
    assert ids(patient_mrn="200") == ["A2"]
    assert ids(patient_name="roe") == ["A1", "A2"]
    assert ids(provider_ehr_id="P-1") == ["A1", "A2"]  # primary or secondary
    assert ids(status="cancelled") == ["A2"]
    assert ids(status="booked", provider_ehr_id="P-2") == ["A3"]


def test_reading_cached_appointments_never_calls_the_emr(clinic):
    tenant, *_ = clinic
    # The connection points nowhere reachable: a read must not even try.
    tenant.emr_connection.__class__.objects.filter(pk=tenant.emr_connection.pk).update(base_url="http://127.0.0.1:9/none")
    response = tenant.v1().get(f"/v1/appointments?start_date={DAY}&end_date={DAY}")
    assert response.status_code == 200 and response.json()["appointments"] == []


def test_providers_list_with_hours_facilities_recurrence_and_rules(clinic):
    tenant, main, annex, doc, nurse = clinic
    monday = Shift.objects.create(organization=tenant.organization, resource=doc, location=main, day_of_week=1, start_time="08:00", end_time="12:00",
                                  valid_from=date(2025, 1, 6), valid_until=date(2025, 6, 30), recur_every_weeks=2)
    VisitTypeRule.objects.create(organization=tenant.organization, shift=monday, start_time="08:00", end_time="09:00", total_visits=3,
                                 visit_type_id="FU", visit_type_desc="Follow-Up Visit")
    Shift.objects.create(organization=tenant.organization, resource=doc, day_of_week=0, start_time="20:00", end_time="00:00")
    body = tenant.v1().get("/v1/providers").json()
    assert body["success"] is True
    assert [p["ehr_id"] for p in body["providers"]] == ["P-1", "P-2"]
    assert body["providers"][0] == {
        "id": str(doc.pk),
        "ehr_id": "P-1",
        "name": "Dr Ada",
        "npi": "1234567893",
        "timezone": "America/New_York",
        "status": "active",
        "hide_in_availability": False,
        "hours": [
            {"day": "Monday", "shifts": [{
                "start": "T08:00:00", "end": "T12:00:00", "facility_id": "LOC-1", "facility_name": "Main",
                "set_start_date": "2025-01-06", "set_end_date": "2025-06-30",
                "recurrence": {"recur_interval_type": "weeks", "recur_interval_amount": 2},
                "visit_type_rules": [{"start_time": "T08:00:00", "end_time": "T09:00:00", "total_visits": 3, "visit_type_id": "FU",
                                      "visit_type_desc": "Follow-Up Visit"}],
            }]},
            {"day": "Sunday", "shifts": [{
                "start": "T20:00:00", "end": "T24:00:00", "facility_id": None, "facility_name": None, "set_start_date": None,
                "set_end_date": None, "recurrence": {"recur_interval_type": "weeks", "recur_interval_amount": 1}, "visit_type_rules": [],
            }]},
        ],
    }
    assert body["providers"][1]["timezone"] == "America/New_York"  # no zone, no location: the organization's


def test_a_providers_zone_is_the_one_its_hours_are_read_in(clinic):
    """Own zone, else the first linked location's, else the organization's: the zone availability
    reads the shifts in, so a client placing ``hours`` on a calendar agrees with /v3/."""
    from booking.models import ResourceService, Service

    tenant, main, annex, doc, nurse = clinic
    org = tenant.organization
    denver = Location.objects.create(organization=org, name="LoDo", timezone="America/Denver")
    visit = Service.objects.create(organization=org, name="Visit", duration=30)
    ResourceService.objects.create(organization=org, resource=nurse, service=visit, location=denver)
    ResourceService.objects.create(organization=org, resource=nurse, service=visit, location=main)  # linked later
    ResourceService.objects.create(organization=org, resource=doc, service=visit, location=denver)
    EmrConnection.objects.filter(pk=tenant.emr_connection.pk).update(timezone="Pacific/Honolulu")

    zones = {p["ehr_id"]: p["timezone"] for p in tenant.v1().get("/v1/providers").json()["providers"]}
    assert zones == {"P-1": "America/New_York", "P-2": "America/Denver"}
    patched = tenant.v1().patch(f"/v1/providers/{nurse.pk}", {"status": "active"}, format="json").json()
    assert patched["provider"]["timezone"] == "America/Denver"


def test_patch_hours_replaces_all_shifts_and_keeps_them_from_the_sync(clinic):
    tenant, main, annex, doc, nurse = clinic
    Shift.objects.create(organization=tenant.organization, resource=doc, day_of_week=3, start_time="07:00", end_time="08:00")
    version = Organization.objects.get(pk=tenant.organization.pk).availability_version
    hours = [
        {"day": "Tuesday", "shifts": [
            {"start": "T09:00:00", "end": "T13:00:00", "facility_id": "LOC-1", "set_start_date": "2025-03-04",
             "recurrence": {"recur_interval_type": "weeks", "recur_interval_amount": 2},
             "visit_type_rules": [{"start_time": "T09:00:00", "end_time": "T10:00:00", "total_visits": 2, "visit_type_id": "NP", "visit_type_desc": "New"}]},
            {"start": "14:00:00", "end": "T24:00:00", "facility_id": str(annex.pk)},
        ]},
        {"day": "Saturday", "shifts": [{"start": "T08:00:00", "end": "T12:00:00", "facility_id": None, "set_end_date": "2025-12-31"}]},
    ]
    response = tenant.v1().patch(f"/v1/providers/{doc.pk}", {"hours": hours, "hide_in_availability": True}, format="json")
    assert response.status_code == 200, response.content
    provider = response.json()["provider"]
    assert provider["hide_in_availability"] is True
    shifts = list(Shift.objects.filter(resource=doc).order_by("day_of_week", "start_time"))
    assert [(s.day_of_week, s.start_time, s.end_time, s.location, s.valid_from, s.valid_until, s.recur_every_weeks) for s in shifts] == [
        (2, time(9), time(13), main, date(2025, 3, 4), None, 2),
        (2, time(14), time(0), annex, None, None, 1),
        (6, time(8), time(12), None, None, date(2025, 12, 31), 1),
    ]
    assert list(shifts[0].visit_type_rules.values_list("start_time", "end_time", "total_visits", "visit_type_id", "visit_type_desc")) == [
        (time(9), time(10), 2, "NP", "New")
    ]
    assert provider["hours"][0]["shifts"][1]["facility_id"] == str(annex.pk)  # no EHR id: our id
    assert LocalHours.objects.filter(resource=doc).exists()
    assert Organization.objects.get(pk=tenant.organization.pk).availability_version > version

    # What GET shows can be sent back unchanged.
    again = tenant.v1().patch("/v1/providers/ehr/P-1", {"hours": provider["hours"]}, format="json")
    assert again.status_code == 200 and again.json()["provider"]["hours"] == provider["hours"]

    cleared = tenant.v1().patch("/v1/providers/ehr/P-1", {"hours": [], "status": "inactive"}, format="json").json()["provider"]
    assert cleared["hours"] == [] and cleared["status"] == "inactive"
    assert not Shift.objects.filter(resource=doc).exists()


def test_patch_without_hours_leaves_them(clinic):
    tenant, main, annex, doc, nurse = clinic
    Shift.objects.create(organization=tenant.organization, resource=doc, day_of_week=3, start_time="07:00", end_time="08:00")
    response = tenant.v1().patch(f"/v1/providers/{doc.pk}", {"status": "inactive"}, format="json")
    assert response.status_code == 200 and response.json()["provider"]["status"] == "inactive"
    assert Shift.objects.filter(resource=doc).count() == 1 and not LocalHours.objects.exists()
    doc.refresh_from_db()
    assert doc.status == "inactive"


def test_locations_list_and_status_patch(clinic):
    tenant, main, annex, doc, nurse = clinic
    body = tenant.v1().get("/v1/locations").json()
    assert body == {
        "success": True,
        "locations": [
            {"id": str(annex.pk), "ehr_id": None, "name": "Annex", "address": None, "timezone": "America/New_York", "status": "active"},
            {"id": str(main.pk), "ehr_id": "LOC-1", "name": "Main", "address": None, "timezone": "America/New_York", "status": "active"},
        ],
    }
    response = tenant.v1().patch(f"/v1/locations/{main.pk}", {"status": "inactive"}, format="json")
    assert response.status_code == 200 and response.json()["location"]["status"] == "inactive"
    main.refresh_from_db()
    assert main.status == "inactive"


def test_settings(clinic):
    tenant, *_ = clinic
    appointment(tenant, ehr_id="A1", start=local(DAY, 9), ehr_status="CHK (Check Out)")
    body = tenant.v1().get("/v1/settings").json()
    assert body["success"] is True
    assert body["visit_types"] == [{"code": "FU", "description": "Follow-Up Visit"}]
    codes = [s["code"] for s in body["visit_statuses"]]
    assert codes[:3] == ["proposed", "pending", "booked"] and "cancelled" in codes and codes[-1] == "CHK (Check Out)"
    assert body["timezone"] == "America/New_York"
    assert body["access_token_reference_id"] == tenant.emr_connection.access_token_reference_id
