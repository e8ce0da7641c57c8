"""Benchmark of the staff admin's location calendar (``admin.md`` "Calendars").

    python benchmarks/admin_calendar.py            # a throwaway SQLite database in a temp dir
    DATABASE_URL=postgres://... python benchmarks/admin_calendar.py   # that database (its own org, removed after)

Scenario: one location, 20 resources with shifts, lunch breaks, blocks and ~1,000 appointments a
fortnight, a 30-minute service on a 15-minute interval; the week calendar (20 resources x 7 days)
with that service chosen, through the in-process test client (session, admin, tenant scoping,
``GET /v3/availability``'s selector, layout, template). Prints p50/p95 server time in ms with the
availability answer uncached (the cache cleared before each request) and cached, and the day view.

Target: week calendar p50 <= 300 ms on the test machine (2 cores shared with other work).
"""

from __future__ import annotations

import os
import random
import sys
from datetime import date, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_kit import next_monday, throwaway_database, timed  # noqa: E402

_TEMP = throwaway_database("calendar-bench-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402

from booking import models as b  # noqa: E402
from booking.availability import wallclock  # noqa: E402
from tenants.models import Membership, Organization  # noqa: E402
from tenants.services import organization_create  # noqa: E402

ZONE = "America/New_York"
RESOURCES = 20
APPOINTMENTS_PER_14_DAYS = 1000
SEED = 20261203


def build(first_day: date, days_of_data: int):
    rng = random.Random(SEED)
    org = organization_create(name="Calendar benchmark", timezone_name=ZONE)
    tz = wallclock.zone_get(ZONE)
    with transaction.atomic():
        location = b.Location.objects.create(
            organization=org, name="Main", timezone=ZONE,
            weekly_availability=[{"dayOfWeek": d, "startTime": "07:00:00", "endTime": "20:00:00"} for d in range(7)],
        )
        service = b.Service.objects.create(organization=org, name="Visit", duration=30, booking_interval=15)
        resources = b.Resource.objects.bulk_create(
            [b.Resource(organization=org, name=f"Provider {i:02d}") for i in range(RESOURCES)]
        )
        b.ResourceService.objects.bulk_create(
            [b.ResourceService(organization=org, resource=r, service=service, location=location) for r in resources]
        )
        b.Shift.objects.bulk_create(
            b.Shift(organization=org, resource=r, day_of_week=day, start_time=wall_time(8 + i % 3),
                    end_time=wall_time(16 + i % 3))
            for i, r in enumerate(resources) for day in range(1, 7)
        )
        b.RecurringBlock.objects.bulk_create(
            b.RecurringBlock(organization=org, resource=r, frequency="DAILY", start_date=first_day - timedelta(days=7),
                             start_time=wall_time(12), end_time=wall_time(12, 30), reason="lunch")
            for r in resources
        )
        blocks = []
        for _ in range(RESOURCES * 2):
            start = datetime.combine(first_day + timedelta(days=rng.randrange(days_of_data)), wall_time(rng.randrange(8, 17)), tz)
            blocks.append(b.Block(organization=org, resource=rng.choice(resources), start=start,
                                  end=start + timedelta(minutes=rng.choice([30, 60, 120])), reason="admin time"))
        b.Block.objects.bulk_create(blocks)
        appointments, links = [], []
        for index in range(int(APPOINTMENTS_PER_14_DAYS / 14 * days_of_data)):
            day = first_day + timedelta(days=rng.randrange(days_of_data))
            start = datetime.combine(day, wall_time(rng.randrange(8, 17), rng.choice([0, 15, 30, 45])), tz)
            appointment = b.Appointment(organization=org, start=start, end=start + timedelta(minutes=30), service=service,
                                        location=location, status="BK", customer_name=f"Patient {index}")
            appointments.append(appointment)
            links.append(b.AppointmentResource(appointment=appointment, resource=resources[index % RESOURCES]))
        b.Appointment.objects.bulk_create(appointments, batch_size=500)
        b.AppointmentResource.objects.bulk_create(links, batch_size=500)
    return org, location, service


def main() -> None:
    call_command("migrate", verbosity=0)
    first = next_monday()
    org, location, service = build(first, 14)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    user = get_user_model().objects.create_user(username=f"bench-{org.pk}", password="x" * 16, is_staff=True)
    Membership.objects.create(user=user, organization=org, role=Membership.Role.ADMIN)
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    url = reverse("admin:booking_location_calendar", args=[location.pk])
    print(f"database: {connection.vendor}; {RESOURCES} resources, "
          f"{b.Appointment.objects.filter(organization=org).count()} appointments over 14 days from {first}")
    try:
        for label, params in (
            ("week, 20 x 7, service chosen", {"week": first.isoformat(), "service": service.pk}),
            ("week, 20 x 7, no service", {"week": first.isoformat()}),
            ("day, 20 x 1, service chosen", {"week": first.isoformat(), "day": first.isoformat(), "service": service.pk}),
        ):
            def call(params=params):
                response = client.get(url, params)
                assert response.status_code == 200, response.content[:300]
                return response

            response = call()
            size = len(response.content) // 1024
            starts = response.content.count(b'class="start"')
            uncached = timed(call, 15, before=cache.clear)
            cached = timed(call, 15)
            print(f"  {label:<32} availability uncached: p50 {uncached[0]:7.1f} ms  p95 {uncached[1]:7.1f} ms | "
                  f"cached: p50 {cached[0]:7.1f} ms  p95 {cached[1]:7.1f} ms  ({starts} starts, {size} KiB)")
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"target: week calendar p50 <= 300 ms; load average now {load} on {os.cpu_count()} cores "
              "(figures vary with the machine's load)")
    finally:
        Organization.objects.filter(pk=org.pk).delete()
        user.delete()


if __name__ == "__main__":
    main()
