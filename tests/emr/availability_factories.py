"""Building blocks for the ``/v1/availability`` tests: providers, shifts, rules and cached
appointments written as the EMR sync and live fetch write them."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from booking.models import Appointment, AppointmentResource, Location, Resource, Shift, VisitTypeRule
from emr.models import VisitType

NY = ZoneInfo("America/New_York")


def hm(text: str) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    return time(0) if hours == 24 else time(hours, minutes)


class World:
    def __init__(self, tenant):
        self.tenant = tenant
        self.org = tenant.organization
        self.conn = tenant.emr_connection
        self._n = 0
        for code, text in (("FU", "Follow-Up Visit"), ("NP", "New Patient"), ("TH", "Telehealth")):
            VisitType.objects.create(organization=self.org, emr_connection=self.conn, code=code, description=text)

    def location(self, ehr_id: str, name: str, zone: str = "America/New_York") -> Location:
        return Location.objects.create(organization=self.org, name=name, timezone=zone, ehr_id=ehr_id, emr_connection=self.conn)

    def provider(self, ehr_id: str, *, zone: str | None = "America/New_York", **fields) -> Resource:
        return Resource.objects.create(
            organization=self.org, name=f"Dr {ehr_id}", type="provider", ehr_id=ehr_id, emr_connection=self.conn, timezone=zone, **fields
        )

    def shift(self, provider, day_of_week: int, start: str, end: str, *, location=None, rules=(), **fields) -> Shift:
        """``day_of_week`` 0 = Sunday; ``rules``: (start, end, total_visits, code)."""
        shift = Shift.objects.create(
            organization=self.org, resource=provider, day_of_week=day_of_week, start_time=hm(start), end_time=hm(end),
            location=location, **fields,
        )
        for r_start, r_end, visits, code in rules:
            VisitTypeRule.objects.create(
                organization=self.org, shift=shift, start_time=hm(r_start), end_time=hm(r_end), total_visits=visits,
                visit_type_id=code,
            )
        return shift

    def appointment(
        self, provider, day: date, start: str, minutes: int, *, code: str = "FU", secondary=None, location=None,
        status: str = Appointment.Status.BOOKED, zone=NY,
    ) -> Appointment:
        self._n += 1
        begin = datetime.combine(day, hm(start), tzinfo=zone)
        appointment = Appointment.objects.create(
            organization=self.org, emr_connection=self.conn, source="emr", ehr_appointment_id=f"A{self._n}",
            start=begin, end=begin + timedelta(minutes=minutes), status=status, appointment_type=code,
            primary_provider=provider, secondary_provider=secondary, location=location,
        )
        for resource in {r for r in (provider, secondary) if r is not None}:
            AppointmentResource.objects.create(appointment=appointment, resource=resource)
        return appointment

    def get(self, **params):
        return self.tenant.v1().get("/v1/availability", {k: v for k, v in params.items() if v is not None})

    def windows(self, **params) -> list[dict]:
        response = self.get(**params)
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["success"] is True
        return body["results"]["availability"]


def spans(windows: list[dict]) -> list[tuple[str, str]]:
    """(start, end) as local HH:MM of each window."""
    return [(w["range_start"][11:16], w["range_end"][11:16]) for w in windows]
