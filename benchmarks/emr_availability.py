"""Benchmark of ``GET /v1/availability`` (the EMR availability from cached appointments).

    python benchmarks/emr_availability.py            # a throwaway SQLite database in a temp dir
    DATABASE_URL=postgres://... python benchmarks/emr_availability.py   # that database (its own org, removed after)

Scenario (issue 10): 10 providers × 31 days, each with two shifts a weekday (at two facilities)
holding visit-type rules, and 1,500 cached EMR appointments. For each calculation method
(``gaps``, ``slots``, ``equal_slots``), p50/p95 in milliseconds of:

- the full stack: Django's test client, ``/v1/`` authentication, throttling, the query kit, the
  loader, the pure calculation and the JSON rendering;
- its floor, timed in the same run, interleaved with it: the SQL the endpoint itself ran (recorded
  from one request after the first: the same statements and parameters as every timed request),
  replayed on a raw cursor with every row fetched, plus rendering an answer of the same size with
  the same JSON renderer.

The ratio full / floor says what the Python between the database and the socket costs. Targets
on a 2-core machine: p50 ≤ 50 ms and ≤ 2.5× the floor.
"""

from __future__ import annotations

import os
import random
import sys
import time
from datetime import date, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_kit import StatementRecorder, next_monday, percentiles, throwaway_database  # noqa: E402

_TEMP = throwaway_database("emr-availability-bench-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("V1_RATE_LIMIT", "100000000/min")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from rest_framework.renderers import JSONRenderer  # noqa: E402

from booking import models as b  # noqa: E402
from booking.availability.wallclock import zone_get  # noqa: E402
from emr.models import VisitType  # noqa: E402
from emr.services.connections import emr_connection_create  # noqa: E402
from tenants.models import Organization  # noqa: E402
from tenants.services import api_client_create, organization_create  # noqa: E402

ZONE = "America/New_York"
PROVIDERS = 10
DAYS = 31
APPOINTMENTS = 1500
REPEAT = int(os.environ.get("BENCH_REPEAT", "40"))
SEED = 20251203
MORNING = (("08:00", "09:20", 2, "NP"), ("09:20", "12:00", 8, "FU"))
AFTERNOON = (("13:00", "15:00", 6, "FU"), ("15:00", "17:00", 4, "TH"))
CODES = ("NP", "FU", "TH", "OV")


def hm(text: str) -> wall_time:
    hours, minutes = (int(part) for part in text.split(":"))
    return wall_time(hours, minutes)


def build(first: date):
    rng = random.Random(SEED)
    tz = zone_get(ZONE)
    org = organization_create(name="EMR availability benchmark", timezone_name=ZONE)
    issued = api_client_create(organization=org)
    emr = emr_connection_create(organization=org)
    conn = emr.connection
    with transaction.atomic():
        for code in CODES:
            VisitType.objects.create(organization=org, emr_connection=conn, code=code, description=f"Visit {code}")
        sites = [
            b.Location.objects.create(organization=org, name=f"Site {i}", timezone=ZONE, ehr_id=f"LOC-{i}", emr_connection=conn)
            for i in (1, 2)
        ]
        providers = b.Resource.objects.bulk_create(
            [
                b.Resource(organization=org, name=f"Provider {i:02d}", type="provider", ehr_id=f"PRV-{i:02d}",
                           emr_connection=conn, timezone=ZONE)
                for i in range(PROVIDERS)
            ]
        )
        shifts, rule_specs = [], []
        for i, provider in enumerate(providers):
            for day in range(1, 6):  # Monday to Friday
                for start, end, rules in (("08:00", "12:00", MORNING), ("13:00", "17:00", AFTERNOON)):
                    shifts.append(b.Shift(organization=org, resource=provider, day_of_week=day, start_time=hm(start),
                                          end_time=hm(end), location=sites[i % 2]))
                    rule_specs.append(rules)
        b.Shift.objects.bulk_create(shifts)
        b.VisitTypeRule.objects.bulk_create(
            [
                b.VisitTypeRule(organization=org, shift=shift, start_time=hm(s), end_time=hm(e), total_visits=n, visit_type_id=code)
                for shift, rules in zip(shifts, rule_specs, strict=True)
                for s, e, n, code in rules
            ]
        )
        appointments, links = [], []
        weekdays = [first + timedelta(days=d) for d in range(DAYS) if (first + timedelta(days=d)).weekday() < 5]
        for index in range(APPOINTMENTS):
            provider = providers[index % PROVIDERS]
            day = rng.choice(weekdays)
            start = datetime.combine(day, wall_time(rng.choice([8, 9, 10, 11, 13, 14, 15, 16]), rng.choice([0, 20, 40])), tz)
            appointment = b.Appointment(
                organization=org, emr_connection=conn, source="emr", ehr_appointment_id=f"A{index}", start=start,
                end=start + timedelta(minutes=20), appointment_type=rng.choice(CODES), primary_provider=provider,
                location=sites[index % 2], status="BK" if rng.random() < 0.9 else "CN", ehr_status="booked",
            )
            appointments.append(appointment)
            links.append(b.AppointmentResource(appointment=appointment, resource=provider))
        b.Appointment.objects.bulk_create(appointments, batch_size=500)
        b.AppointmentResource.objects.bulk_create(links, batch_size=500)
    client = Client(
        HTTP_CLIENT_ID=issued.api_client.client_id, HTTP_CLIENT_SECRET=issued.client_secret,
        HTTP_ACCESS_TOKEN=emr.access_token, HTTP_HOST="localhost",
    )
    return org, client


def main() -> None:
    call_command("migrate", verbosity=0)
    first = next_monday()
    print(f"database: {connection.vendor}; {PROVIDERS} providers x {DAYS} days from {first}, {APPOINTMENTS} cached appointments")
    started = time.perf_counter()
    org, client = build(first)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh tables have no planner statistics; a live database has them
    print(f"built in {time.perf_counter() - started:.1f} s; {REPEAT} runs per figure, full stack and floor interleaved\n")
    try:
        run(client, first)
    finally:
        Organization.objects.filter(pk=org.pk).delete()


def run(client, first: date) -> None:
    renderer = JSONRenderer()
    print(f"  {'method':<12} {'windows':>7}  {'full p50':>9} {'p95':>8}   {'floor p50':>9} {'p95':>8}   {'ratio p50':>9}  queries")
    for method in ("gaps", "slots", "equal_slots"):
        params = {
            "start_date": first.isoformat(), "end_date": (first + timedelta(days=DAYS - 1)).isoformat(),
            "calculation_method": method, "buffer": "5", "visit_type": "FU",
        }

        def full():
            response = client.get("/v1/availability", params)
            assert response.status_code == 200, response.content[:300]
            return response

        full()  # the first request of a minute also records the credential's use and opens a rate-limit window
        recorder = StatementRecorder()
        with connection.execute_wrapper(recorder):
            answer = full().json()
        statements = recorder.statements  # what every following request runs
        windows = len(answer["results"]["availability"])

        def floor():
            with connection.cursor() as cursor:
                for sql, sql_params in statements:
                    cursor.execute(sql, sql_params)
                    if cursor.description is not None:
                        cursor.fetchall()
            renderer.render(answer)

        full_samples, floor_samples = [], []
        for _ in range(3):  # warm both
            full()
            floor()
        for _ in range(REPEAT):
            for fn, samples in ((full, full_samples), (floor, floor_samples)):
                begun = time.perf_counter()
                fn()
                samples.append((time.perf_counter() - begun) * 1000)
        f50, f95 = percentiles(full_samples)
        g50, g95 = percentiles(floor_samples)
        print(f"  {method:<12} {windows:>7}  {f50:7.2f}ms {f95:6.2f}ms   {g50:7.2f}ms {g95:6.2f}ms   {f50 / g50:8.2f}x  {len(statements)}")


if __name__ == "__main__":
    main()
