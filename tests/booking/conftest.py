from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time

import pytest

from booking import models as b
from tests.conftest import Tenant, make_tenant

MONDAY = "2031-01-06"  # a Monday, far enough ahead never to be "past", no DST change that week


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
