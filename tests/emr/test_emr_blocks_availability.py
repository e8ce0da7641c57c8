"""An appointment fetched from the EMR blocks ``/v3/`` availability like any booking: its primary
and secondary providers are busy, and the slot comes back when the EMR cancels it."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from booking import models as b
from emr.adapters.base import EmrAppointment
from emr.services.appointments import FetchScope, appointments_store
from tests.conftest import make_tenant

NY = ZoneInfo("America/New_York")
MONDAY = datetime(2031, 1, 6, tzinfo=NY).date()


def emr_visit(*, status: str = "booked", primary: str = "P1", secondary: str | None = None) -> EmrAppointment:
    start = datetime.combine(MONDAY, time(9), tzinfo=NY)
    return EmrAppointment(
        ehr_id="E-1", start=start, end=start + timedelta(minutes=30), status=status,
        occupies_time=status not in ("cancelled", "noshow"), provider_ehr_id=primary, secondary_provider_ehr_id=secondary,
        patient_mrn="42", patient_name="Pat Doe",
    )


def test_emr_appointments_block_their_providers_in_v3_availability(db):
    tenant = make_tenant("Blocking", timezone_name="America/New_York")
    org, conn = tenant.organization, tenant.emr_connection
    location = b.Location.objects.create(organization=org, name="Site", timezone="America/New_York")
    service = b.Service.objects.create(organization=org, name="Visit", duration=30)
    providers = {}
    for ehr_id in ("P1", "P2"):
        resource = b.Resource.objects.create(organization=org, name=ehr_id, type="provider", ehr_id=ehr_id, emr_connection=conn)
        b.ResourceService.objects.create(organization=org, resource=resource, service=service, location=location)
        b.Shift.objects.create(organization=org, resource=resource, day_of_week=1, start_time=time(9), end_time=time(12))
        providers[ehr_id] = resource

    def free_at_nine() -> set[str]:
        response = tenant.v3().get("/v3/availability", {
            "startDate": str(MONDAY), "endDate": str(MONDAY), "LocationId": str(location.pk), "ServiceId": str(service.pk),
            "timezone": "America/New_York", "roundRobin": "NONE",
        })
        assert response.status_code == 200, response.content
        nine = f"{MONDAY}T09:00:00-05:00"
        return {rid for slot in response.json()["availableTimes"] if slot["start_time"] == nine for rid in slot["ResourceIds"]}

    everyone = {str(providers["P1"].pk), str(providers["P2"].pk)}
    assert free_at_nine() == everyone
    scope = FetchScope(search_by="date_range", start=datetime.combine(MONDAY, time(0), tzinfo=NY), end=datetime.combine(MONDAY + timedelta(days=1), time(0), tzinfo=NY))

    appointments_store(connection=conn, scope=scope, fetched=[emr_visit(primary="P1")])
    assert free_at_nine() == {str(providers["P2"].pk)}

    appointments_store(connection=conn, scope=scope, fetched=[emr_visit(primary="P1", secondary="P2")])
    assert free_at_nine() == set()  # the secondary provider is busy too

    appointments_store(connection=conn, scope=scope, fetched=[emr_visit(status="cancelled", primary="P1", secondary="P2")])
    assert free_at_nine() == everyone

    appointments_store(connection=conn, scope=scope, fetched=[emr_visit(primary="P2")])
    assert free_at_nine() == {str(providers["P1"].pk)}
    appointments_store(connection=conn, scope=scope, fetched=[])  # gone from the EMR: cancelled
    assert free_at_nine() == everyone
