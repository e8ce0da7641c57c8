"""One rule decides a provider's zone: the zone the EMR sync read its schedule's Slots in.

A Denver-only provider of an organization (and connection) in New York works 08:00–12:20 and
13:30–17:10 Denver time; every way of reading its hours back must say so.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from booking.models import Location, Resource, ResourceService, Service, Shift
from emr.services.providers import providers_sync

DENVER = ZoneInfo("America/Denver")


@pytest.fixture(autouse=True)
def _big_pages(settings):
    settings.EMR_PAGE_SIZE = 500


def next_monday(after: date) -> date:
    return after + timedelta(days=7 - after.weekday())


def denver(day: date, hh: int, mm: int) -> str:
    return datetime.combine(day, time(hh, mm), tzinfo=DENVER).isoformat()


def test_a_denver_provider_reads_back_in_denver_time_everywhere(sandbox_tenant):
    tenant = sandbox_tenant
    conn = tenant.emr_connection
    assert conn.timezone == "America/New_York" and tenant.organization.timezone == "America/New_York"
    providers_sync(connection=conn)

    # The sync stores the zone the Slots were read in.
    brooks = Resource.objects.get(emr_connection=conn, ehr_id="PRV-1004")
    patel = Resource.objects.get(emr_connection=conn, ehr_id="PRV-1001")
    assert (brooks.timezone, patel.timezone) == ("America/Denver", "America/New_York")
    monday_shifts = Shift.objects.filter(resource=brooks, day_of_week=1).order_by("start_time")
    assert [(s.start_time, s.end_time) for s in monday_shifts] == [(time(8), time(12, 20)), (time(13, 30), time(17, 10))]

    # /v1/providers
    listed = {p["ehr_id"]: p for p in tenant.v1().get("/v1/providers").json()["providers"]}
    assert listed["PRV-1004"]["timezone"] == "America/Denver"
    monday = next(day for day in listed["PRV-1004"]["hours"] if day["day"] == "Monday")
    assert [(s["start"], s["end"], s["facility_id"]) for s in monday["shifts"]] == [
        ("T08:00:00", "T12:20:00", "LOC-DEN"),
        ("T13:30:00", "T17:10:00", "LOC-DEN"),
    ]

    day = next_monday(date.today() + timedelta(days=1))

    # /v1/availability (gaps: the shifts, nothing booked in the cache)
    answer = tenant.v1().get("/v1/availability", {"start_date": day.isoformat(), "end_date": day.isoformat(), "provider_ids": "PRV-1004"})
    assert answer.status_code == 200, answer.content
    windows = answer.json()["results"]["availability"]
    assert [(w["range_start"][:19], w["range_end"][:19]) for w in windows] == [
        (f"{day}T08:00:00", f"{day}T12:20:00"),
        (f"{day}T13:30:00", f"{day}T17:10:00"),
    ]
    assert windows[0]["range_start"][-6:] == denver(day, 8, 0)[-6:]


    # /v3/availability, for a service the provider offers at LoDo
    lodo = Location.objects.get(emr_connection=conn, ehr_id="LOC-DEN")
    follow_up = Service.objects.get(organization=tenant.organization, visit_type="FU")
    ResourceService.objects.create(organization=tenant.organization, resource=brooks, service=follow_up, location=lodo)
    response = tenant.v3().get(
        "/v3/availability",
        {
            "startDate": day.isoformat(),
            "endDate": day.isoformat(),
            "LocationId": str(lodo.pk),
            "ServiceId": str(follow_up.pk),
            "timezone": "America/Denver",
        },
    )
    assert response.status_code == 200, response.content
    starts = [slot["start_time"] for slot in response.json()["availableTimes"]]
    ends = [slot["end_time"] for slot in response.json()["availableTimes"]]
    assert starts[0] == denver(day, 8, 0)
    assert ends[-1] <= denver(day, 17, 10) and ends[-1] > denver(day, 16, 30)
    assert not [s for s in starts if denver(day, 12, 20) <= s < denver(day, 13, 30)]


def test_a_provider_scheduled_in_two_zones_reads_all_its_slots_in_the_zone_of_most():
    from collections import Counter

    from emr.adapters.fhir import provider_schedule_zone

    assert provider_schedule_zone(Counter({"America/Denver": 40, "America/New_York": 12})) == "America/Denver"
    assert provider_schedule_zone(Counter({"America/New_York": 12, "America/Denver": 12})) == "America/Denver"
