"""Benchmark of ``GET /v3/availability`` and the availability engine.

    python benchmarks/availability.py            # a throwaway SQLite database in a temp dir
    DATABASE_URL=postgres://... python benchmarks/availability.py   # that database (its own org, removed after)

Scenario (issue 3): one location, 50 resources, 14 days, a 30-minute service on a 15-minute
interval, 2,000 existing appointments, blocks and recurring blocks. Prints p50/p95 in milliseconds:

- the full Django stack (test client, authentication, throttling, loading, engine, rendering),
  uncached (the cache is cleared before each request) and cached, for NONE, BALANCED, COMBINED of 3;
- the engine alone on preloaded inputs;
- how the cost grows with resources × days (10/25/50 × 7/14/28).

Targets on a 2-core machine: 20 resources × 7 days uncached p50 ≤ 50 ms; cached p50 ≤ 5 ms;
engine cost linear in resources × days.

First, the ratios of issue 14, for 20 resources × 7 days and 80 × 31 (a 30-minute service on a
30-minute interval, about three appointments per resource-day, RANDOM)::

    20x7 uncached p50 <ms> ms = <ratio>x floor
    20x7 cached p50 <ms> ms = <ratio>x floor

The floor is measured in the same run, interleaved with the requests: the loader's own SQL
statements (captured from an uncached request) replayed on a raw database cursor, plus
serializing an answer of the same size. ``BENCH_FULL=1`` adds the older sections below;
``BENCH_ROUNDS`` sets the number of interleaved rounds (default 30).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_kit import (  # noqa: E402
    StatementRecorder,
    load_average,
    next_monday,
    quantile,
    raw_cursor,
    throwaway_database,
    timed,
)

_TEMP = throwaway_database("availability-bench-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("V3_RATE_LIMIT", "100000000/min")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone as dj_timezone  # noqa: E402

from booking import models as b  # noqa: E402
from booking.availability import engine, wallclock  # noqa: E402
from booking.availability.loader import availability_inputs_load  # noqa: E402
from tenants.models import Organization  # noqa: E402
from tenants.services import api_client_create, organization_create  # noqa: E402

UTC = UTC
ZONE = "America/New_York"
RESOURCES = 80
DAYS = 14
APPOINTMENTS_PER_14_DAYS = 2000 * RESOURCES // 50  # about three per resource-day
DATA_DAYS = 35
SEED = 20250310


def build(first_day: date, days_of_data: int):
    """The organization, its location, service, resources and their data."""
    rng = random.Random(SEED)
    org = organization_create(name="Availability benchmark", timezone_name=ZONE)
    issued = api_client_create(organization=org)
    tz = wallclock.zone_get(ZONE)
    with transaction.atomic():
        location = b.Location.objects.create(
            organization=org, name="Main", timezone=ZONE,
            weekly_availability=[{"dayOfWeek": d, "startTime": "07:00:00", "endTime": "20:00:00"} for d in range(0, 7)],
        )
        service = b.Service.objects.create(organization=org, name="Visit", duration=30, booking_interval=15)
        other = b.Service.objects.create(organization=org, name="Long visit", duration=60, padding=10)
        resources = b.Resource.objects.bulk_create(
            [b.Resource(organization=org, name=f"Provider {i:02d}") for i in range(RESOURCES)]
        )
        b.ResourceService.objects.bulk_create(
            [b.ResourceService(organization=org, resource=r, service=service, location=location) for r in resources]
        )
        shifts = []
        for i, r in enumerate(resources):
            start = 8 + i % 3  # 08:00, 09:00 or 10:00
            for day in range(1, 7):  # Monday to Saturday
                shifts.append(b.Shift(organization=org, resource=r, day_of_week=day, start_time=wall_time(start),
                                      end_time=wall_time(start + 8)))
        b.Shift.objects.bulk_create(shifts)
        recurring = [
            b.RecurringBlock(organization=org, resource=r, frequency="DAILY", start_date=first_day - timedelta(days=7),
                             start_time=wall_time(12), end_time=wall_time(12, 30), reason="lunch")
            for r in resources
        ]
        recurring.append(b.RecurringBlock(organization=org, location=location, frequency="WEEKLY", weekdays=[3],
                                          start_date=first_day - timedelta(days=7), start_time=wall_time(16),
                                          end_time=wall_time(17), reason="staff meeting"))
        b.RecurringBlock.objects.bulk_create(recurring)
        blocks = []
        for _ in range(RESOURCES * 2):
            r = rng.choice(resources)
            start = datetime.combine(first_day + timedelta(days=rng.randrange(days_of_data)), wall_time(rng.randrange(8, 17)), tz)
            blocks.append(b.Block(organization=org, resource=r, start=start, end=start + timedelta(minutes=rng.choice([30, 60, 120]))))
        b.Block.objects.bulk_create(blocks)
        appointments, links = [], []
        per_day = APPOINTMENTS_PER_14_DAYS / 14
        for index in range(int(per_day * days_of_data)):
            r = resources[index % RESOURCES]
            day = first_day + timedelta(days=rng.randrange(days_of_data))
            start = datetime.combine(day, wall_time(rng.randrange(8, 17), rng.choice([0, 15, 30, 45])), tz)
            kind = rng.random()
            svc = service if kind < 0.7 else other
            status = "BK" if kind < 0.9 else "RS"
            appointment = b.Appointment(organization=org, start=start, end=start + timedelta(minutes=svc.duration),
                                        service=svc, location=location, status=status)
            appointments.append(appointment)
            links.append(b.AppointmentResource(appointment=appointment, resource=r))
        b.Appointment.objects.bulk_create(appointments, batch_size=500)
        b.AppointmentResource.objects.bulk_create(links, batch_size=500)
    return org, issued.api_key, location, service, resources


def row(label: str, figures: tuple[float, float], extra: str = "") -> None:
    print(f"  {label:<44} p50 {figures[0]:8.2f} ms   p95 {figures[1]:8.2f} ms  {extra}")


def main() -> None:
    call_command("migrate", verbosity=0)
    first = next_monday()
    backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    print(f"database: {connection.vendor}; cache: {backend}; data from {first} on; {load_average()}")
    started = time.perf_counter()
    org, api_key, location, service, resources = build(first, DATA_DAYS)
    with connection.cursor() as cursor:
        # Fresh tables have no planner statistics; a live database has them (PostgreSQL's autovacuum
        # analyzes on its own). Without them PostgreSQL picks a nested loop over the whole
        # appointment-resource index for every appointment.
        # VACUUM too on PostgreSQL: earlier runs' organizations, deleted at their end, leave dead
        # rows that slow these reads by a third until autovacuum comes by.
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    print(f"built {len(resources)} resources, {b.Appointment.objects.filter(organization=org).count()} appointments "
          f"over {DATA_DAYS} days ({APPOINTMENTS_PER_14_DAYS} per 14 days) in {time.perf_counter() - started:.1f} s")
    client = Client(HTTP_X_API_KEY=api_key, HTTP_HOST="localhost")
    try:
        ratios(client, org, location, service, resources, first)
        if os.environ.get("BENCH_FULL"):
            run(client, org, location, service, resources[:50], first)
    finally:
        Organization.objects.filter(pk=org.pk).delete()
    print(load_average())


def ratios(client, org, location, service, resources, first: date) -> None:
    """Issue 14: uncached and cached p50 of the full stack as multiples of their floor.

    Before each round the organization's answers are made unreachable the way every write does it
    (``availability_invalidate``), so "uncached" is the request that follows a booking: its answer
    is computed, while the credential stays cached as it would in service. The engine keeps the
    resources' rule-3 hard windows between requests (``engine.state``); a last line shows the
    uncached request with them emptied first, as the first request after a restart or a schedule
    change finds them."""
    from booking.availability.cache import answer_bytes
    from booking.availability.engine.state import hard_windows_forget
    from booking.services.invalidation import availability_invalidate

    def invalidate():
        with transaction.atomic():
            availability_invalidate(organization_id=org.pk)

    rounds = int(os.environ.get("BENCH_ROUNDS", "30"))
    print(f"\nRatios to the floor ({rounds} interleaved rounds; floor = the loader's SQL on a raw cursor + serializing):")
    for count, days in ((20, 7), (80, 31)):
        p = {
            "startDate": first.isoformat(), "endDate": (first + timedelta(days=days - 1)).isoformat(),
            "LocationId": str(location.pk), "ServiceId": str(service.pk), "timezone": ZONE, "interval": "30",
            "roundRobin": "RANDOM", "ResourceIds": [str(r.pk) for r in resources[:count]],
        }
        # Encoded once, as the client's own work: the test client would otherwise encode the
        # parameters inside every timed request (a tenth of a millisecond for 20 ids).
        url = f"/v3/availability?{urlencode(p, doseq=True)}"
        cache.clear()
        every = StatementRecorder()
        with connection.execute_wrapper(every):
            first_response = client.get(url)
        assert first_response.status_code == 200, first_response.content[:300]
        answer = json.loads(first_response.content)
        loader_statements = [(sql, params) for sql, params in every.statements if _is_loader(sql)]
        cached_queries = StatementRecorder()
        with connection.execute_wrapper(cached_queries):
            assert client.get(url)["X-Cache"] == "HIT"

        def floor():
            cursor = raw_cursor()
            for sql, params in loader_statements:
                cursor.execute(sql, params)
                cursor.fetchall()
            cursor.close()
            answer_bytes(answer)

        def uncached():
            response = client.get(url)
            assert response["X-Cache"] == "MISS"

        def cached():
            response = client.get(url)
            assert response["X-Cache"] == "HIT"

        def cold():
            invalidate()
            hard_windows_forget()

        samples = {"uncached": [], "cached": [], "floor": [], "uncached, engine's kept windows emptied": []}
        for _ in range(rounds):
            invalidate()
            for name, fn in (("uncached", uncached), ("floor", floor), ("cached", cached)):
                started = time.perf_counter()
                fn()
                samples[name].append((time.perf_counter() - started) * 1000)
            cold()
            started = time.perf_counter()
            uncached()
            samples["uncached, engine's kept windows emptied"].append((time.perf_counter() - started) * 1000)
        floor_p50 = statistics.median(samples["floor"])
        label = f"{count}x{days}"
        print(f"  {label} floor p50 {floor_p50:.2f} ms ({len(loader_statements)} loader statements, "
              f"{len(answer['availableTimes'])} slots, {len(first_response.content)} bytes)")
        for name in ("uncached", "cached", "uncached, engine's kept windows emptied"):
            p50 = statistics.median(samples[name])
            spread = f"p10 {quantile(samples[name], 0.1):.2f} / p90 {quantile(samples[name], 0.9):.2f} ms"
            queries = len(cached_queries.statements) if name == "cached" else len(every.statements)
            print(f"{label} {name} p50 {p50:.2f} ms = {p50 / floor_p50:.2f}x floor   ({spread}; {queries} queries)")


# The loader's statements: the resource rows and one per kind of row (``booking.availability.loader``).
_LOADER_TABLES = (
    "booking_resource", "booking_shift", "booking_allocation", "booking_block", "booking_recurringblock",
    "booking_appointmentresource", "booking_externalbusy",
)


def _is_loader(sql: str) -> bool:
    return any(f'"{table}"' in sql for table in _LOADER_TABLES)


def run(client, org, location, service, resources, first: date) -> None:
    def params(days: int, mode: str, count: int | None = None) -> dict:
        out = {
            "startDate": first.isoformat(), "endDate": (first + timedelta(days=days - 1)).isoformat(),
            "LocationId": str(location.pk), "ServiceId": str(service.pk), "timezone": ZONE, "interval": "15",
            "roundRobin": mode,
        }
        if count is not None:
            out["ResourceIds"] = [str(r.pk) for r in resources[:count]]
        return out

    def request(p: dict):
        def call():
            response = client.get("/v3/availability", p)
            assert response.status_code == 200, response.content[:300]
            return response
        return call

    print(f"\nFull stack, {RESOURCES} resources x {DAYS} days, 30-min service, 15-min interval:")
    for mode, count in (("NONE", None), ("BALANCED", None), ("COMBINED", 3)):
        p = params(DAYS, mode, count)
        response = request(p)()
        slots = len(response.json()["availableTimes"])
        row(f"{mode:<8} uncached", timed(request(p), 20, before=cache.clear), f"({slots} slots)")
        request(p)()
        assert request(p)()["X-Cache"] == "HIT"
        row(f"{mode:<8} cached", timed(request(p), 200))

    print("\nTarget case, 20 resources x 7 days (RANDOM):")
    p = params(7, "RANDOM", 20)
    row("uncached", timed(request(p), 30, before=cache.clear))
    request(p)()
    row("cached", timed(request(p), 300))

    print("\nEngine alone (inputs preloaded), NONE:")
    now = dj_timezone.now()
    results = {}
    for days in (7, 14, 28):
        for count in (10, 25, 50):
            start = datetime.combine(first, wall_time(0), wallclock.zone_get(ZONE))
            end = start + timedelta(days=days) - timedelta(seconds=1)
            query = engine.Query(start=start, end=end, now=now, zone=ZONE, interval=15, round_robin="NONE", seed="bench",
                                 resource_ids=tuple(str(r.pk) for r in resources[:count]))
            inputs = availability_inputs_load(organization=org, location=location, service=service, query=query,
                                              resource_ids=[str(r.pk) for r in resources[:count]])
            load = timed(lambda: availability_inputs_load(organization=org, location=location, service=service, query=query,
                                                          resource_ids=[str(r.pk) for r in resources[:count]]), 5)
            figures = timed(lambda: engine.availability_compute(inputs), 10)
            results[(count, days)] = figures[0]
            row(f"{count:>2} resources x {days:>2} days", figures,
                f"{figures[0] * 1000 / (count * days):6.1f} us per resource-day; loading p50 {load[0]:6.2f} ms")
    base = results[(10, 7)] / 70
    worst = max(results[k] / (k[0] * k[1]) for k in results) / base
    best = min(results[k] / (k[0] * k[1]) for k in results) / base
    print(f"  cost per resource-day stays within {best:.2f}x-{worst:.2f}x of the 10 x 7 case (linear: ~1x)")

    print("\nFull stack scaling, uncached, NONE:")
    for days in (7, 14, 28):
        for count in (10, 25, 50):
            p = params(days, "NONE", count)
            row(f"{count:>2} resources x {days:>2} days", timed(request(p), 10, before=cache.clear))


if __name__ == "__main__":
    main()
