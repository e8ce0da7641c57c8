from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import pytest

from booking import models as b
from tests.conftest import Tenant, make_tenant

UTC = UTC


def first_monday_of_january(year: int) -> date:
    first = date(year, 1, 1)
    return first + timedelta(days=-first.weekday() % 7)


# The tests' Monday: the first Monday of January two years from now, so it is never "past", and
# New York is on standard time (-05:00) all that week and the weeks around it.
MONDAY_DATE = first_monday_of_january(datetime.now(UTC).year + 2)
MONDAY = MONDAY_DATE.isoformat()
YEAR = MONDAY_DATE.year


def iso_day(offset: int) -> str:
    """The date ``offset`` days after MONDAY (before, when negative), as YYYY-MM-DD."""
    return (MONDAY_DATE + timedelta(days=offset)).isoformat()


def utc(hour: int = 0, minute: int = 0, *, days: int = 0) -> datetime:
    """``hour:minute`` UTC on MONDAY (``days`` later); 14:00 UTC is 09:00 in New York."""
    return datetime.combine(MONDAY_DATE + timedelta(days=days), time(hour, minute), UTC)


@dataclass
class Clinic:
    """One tenant's location (New York, open 08:00-18:00 on weekdays), a 30-minute service and two
    providers working 09:00-17:00 New York time on weekdays."""

    tenant: Tenant
    location: b.Location
    service: b.Service
    resources: list[b.Resource] = field(default_factory=list)

    @property
    def organization(self):
        return self.tenant.organization

    def params(self, **extra) -> dict:
        out = {
            "startDate": MONDAY,
            "endDate": MONDAY,
            "LocationId": str(self.location.pk),
            "ServiceId": str(self.service.pk),
            "timezone": "America/New_York",
        }
        out.update(extra)
        return {k: v for k, v in out.items() if v is not None}

    def add_resource(self, name: str, *, hours=((1, 2, 3, 4, 5), "09:00", "17:00"), link: bool = True, **fields) -> b.Resource:
        resource = b.Resource.objects.create(organization=self.organization, name=name, **fields)
        if link:
            b.ResourceService.objects.create(
                organization=self.organization, resource=resource, service=self.service, location=self.location
            )
        days, start, end = hours
        for day in days:
            b.Shift.objects.create(
                organization=self.organization, resource=resource, day_of_week=day,
                start_time=time.fromisoformat(start), end_time=time.fromisoformat(end) if end != "24:00" else time(0),
            )
        self.resources.append(resource)
        return resource


def clinic_make(name: str = "Clinic") -> Clinic:
    tenant = make_tenant(name)
    org = tenant.organization
    location = b.Location.objects.create(
        organization=org,
        name="Back Bay",
        timezone="America/New_York",
        weekly_availability=[{"dayOfWeek": d, "startTime": "08:00:00", "endTime": "18:00:00"} for d in range(1, 6)],
    )
    service = b.Service.objects.create(organization=org, name="Visit", duration=30)
    clinic = Clinic(tenant, location, service)
    clinic.add_resource("Dr. Adams")
    clinic.add_resource("Dr. Baker")
    return clinic


@pytest.fixture
def clinic(db) -> Clinic:
    return clinic_make()


@pytest.fixture
def other_clinic(db) -> Clinic:
    return clinic_make("Other Clinic")
