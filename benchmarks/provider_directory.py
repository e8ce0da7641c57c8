"""Benchmark of ``GET /api/v1/provider-availability`` with a time window, against the sandbox
Calendly with added latency (issue 11).

    python benchmarks/provider_directory.py            # a throwaway SQLite database in a temp dir
    DATABASE_URL=postgres://... python benchmarks/provider_directory.py   # that database (its own org, removed after)
    REDIS_URL=redis://127.0.0.1:6379/0 python benchmarks/provider_directory.py   # cache and rate limit in Redis (own key prefix)

Scenario: 20 providers licensed in CA, each offering one service at one location (so one Calendly
event type id, a copy per provider), shifts Monday to Saturday and about three appointments a
day; the directory asked for that event type over a 14-day window starting tomorrow.

The sandbox Calendly is the product itself under gunicorn (``BENCH_WORKERS`` workers x
``BENCH_THREADS`` threads, default 2 x 16, on a free 127.0.0.1 port, stopped at the end) with
``SANDBOX_CALENDLY_LATENCY_MS`` (default 100) added to every answer and its availability cache
off, so every call computes its answer like Calendly would. The directory request runs in this
process through Django's test client (authentication, throttling, validation, the Calendly client
over real HTTP, caching, rendering). Prints p50/p95 in ms:

- ``sandbox one call``: one ``/event_type_available_times`` call of the request on its own (latency + the
  sandbox's own work), and the same call made N at once (does the sandbox answer in parallel?);
- ``client``: the Calendly client alone asking every chunk of every provider
  (``available_times_many``): 7-day spans 8 at once (the former defaults), 31-day spans 8 and 20
  at once, and the configured ``CALENDLY_CHUNK_DAYS`` and ``CALENDLY_CONCURRENCY``;
- ``directory 20 providers x 14 days uncached`` (the connection's cache version bumped before
  each request, as a sync does) and ``cached``.

Targets: uncached p50 <= 600 ms, cached p50 <= 20 ms. ``BENCH_ROUNDS`` (default 15) sets the
uncached rounds (cached: 4x as many). Figures move with the machine's load, printed at the end.
"""

from __future__ import annotations

import math
import os
import random
import secrets
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_kit import load_average, throwaway_database, timed  # noqa: E402

_TEMP = throwaway_database("directory-bench-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("PROVIDER_DIRECTORY_RATE_LIMIT", "100000000/min")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# With REDIS_URL (cached times and the rate limit's count in Redis, as in production), keys of
# its own: nothing else in that Redis is read or touched.
os.environ.setdefault("CACHE_KEY_PREFIX", "directory-bench-" + secrets.token_hex(6))
# Both processes sign and check the sandbox token with it.
os.environ.setdefault("SECRET_KEY", "directory-bench-" + secrets.token_urlsafe(32))

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection as db  # noqa: E402
from django.db import transaction  # noqa: E402
from django.db.models import F  # noqa: E402
from django.test import Client  # noqa: E402

from booking import models as b  # noqa: E402
from booking.availability import wallclock  # noqa: E402
from emr.calendly import CalendlyClient, time_chunks  # noqa: E402
from emr.models import CalendlyConnection, CalendlyEventType  # noqa: E402
from emr.sandbox.calendly import sandbox_calendly_token  # noqa: E402
from emr.services.calendly import calendly_connect, calendly_sync  # noqa: E402
from tenants.models import Organization  # noqa: E402
from tenants.services import api_client_create, organization_create  # noqa: E402
from tests.servers import gunicorn_running  # noqa: E402

ZONE = "America/New_York"
PROVIDERS = 20
DAYS = 14
SEED = 20261206
LATENCY_MS = int(os.environ.get("SANDBOX_CALENDLY_LATENCY_MS") or 100)
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
THREADS = int(os.environ.get("BENCH_THREADS", "16"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "15"))


def build(first_day, days: int):
    """The organization, its API key and 20 providers with hours and appointments."""
    rng = random.Random(SEED)
    org = organization_create(name="Directory benchmark", timezone_name=ZONE)
    api_key = api_client_create(organization=org).api_key
    tz = wallclock.zone_get(ZONE)
    with transaction.atomic():
        location = b.Location.objects.create(
            organization=org, name="Main", timezone=ZONE,
            weekly_availability=[{"dayOfWeek": d, "startTime": "07:00:00", "endTime": "20:00:00"} for d in range(7)],
        )
        service = b.Service.objects.create(organization=org, name="Visit", duration=30, booking_interval=30)
        resources = b.Resource.objects.bulk_create([
            b.Resource(organization=org, name=f"Provider {i:02d}", type=b.Resource.Type.PROVIDER,
                       email=f"provider{i:02d}@bench.test", licensed_states=["CA", "NY"] if i % 2 else ["CA"])
            for i in range(PROVIDERS)
        ])
        b.ResourceService.objects.bulk_create(
            b.ResourceService(organization=org, resource=r, service=service, location=location) for r in resources
        )
        b.Shift.objects.bulk_create(
            b.Shift(organization=org, resource=r, day_of_week=day, start_time=wall_time(8 + i % 3),
                    end_time=wall_time(16 + i % 3))
            for i, r in enumerate(resources) for day in range(1, 7)
        )
        appointments, links = [], []
        for index in range(3 * PROVIDERS * days):
            day = first_day + timedelta(days=rng.randrange(days))
            start = datetime.combine(day, wall_time(rng.randrange(9, 16), rng.choice([0, 30])), tz)
            appointment = b.Appointment(organization=org, start=start, end=start + timedelta(minutes=30), service=service,
                                        location=location, status="BK", customer_name=f"Patient {index}")
            appointments.append(appointment)
            links.append(b.AppointmentResource(appointment=appointment, resource=resources[index % PROVIDERS]))
        b.Appointment.objects.bulk_create(appointments, batch_size=500)
        b.AppointmentResource.objects.bulk_create(links, batch_size=500)
    return org, api_key


def fmt(figures: tuple[float, float]) -> str:
    return f"p50 {figures[0]:.0f} ms p95 {figures[1]:.0f} ms"


def main() -> None:
    call_command("migrate", verbosity=0)
    start = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=DAYS)
    org, api_key = build(start.date(), DAYS + 1)
    env = {**os.environ, "SANDBOX_ENABLED": "true", "SANDBOX_CALENDLY_LATENCY_MS": str(LATENCY_MS),
           "AVAILABILITY_CACHE_SECONDS": "0", "GUNICORN_THREADS": str(THREADS), "GUNICORN_TIMEOUT": "120"}
    load_before = load_average()
    print(f"database: {db.vendor}; cache: {'Redis' if settings.REDIS_URL else 'in-process'}; {PROVIDERS} providers, "
          f"{DAYS}-day window from {start:%Y-%m-%d}; sandbox Calendly "
          f"under gunicorn {WORKERS} workers x {THREADS} threads, +{LATENCY_MS} ms a call; "
          f"CALENDLY_CONCURRENCY {settings.CALENDLY_CONCURRENCY}, CALENDLY_CHUNK_DAYS {settings.CALENDLY_CHUNK_DAYS}")
    try:
        with gunicorn_running(env, workers=WORKERS) as url:
            connection = calendly_connect(organization=org, token=sandbox_calendly_token(org),
                                          base_url=f"{url}/sandbox/calendly")
            counts = calendly_sync(connection=connection)
            rows = list(CalendlyEventType.objects.filter(organization=org, active=True))
            event_type_ids = {row.event_type_id for row in rows}
            assert len(rows) == PROVIDERS and len(event_type_ids) == 1, (counts, len(rows), event_type_ids)
            event_type_id = event_type_ids.pop()
            uris = [row.uri for row in rows]
            chunks = time_chunks(start, end, settings.CALENDLY_CHUNK_DAYS)
            calls = len(uris) * len(chunks)
            print(f"synced {counts}; one directory request asks {len(uris)} event types x {len(chunks)} chunks = "
                  f"{calls} calls")

            # --- the sandbox on its own ----------------------------------------------------------
            token = sandbox_calendly_token(org)
            http = httpx.Client(base_url=f"{url}/sandbox/calendly", headers={"Authorization": f"Bearer {token}"},
                                timeout=30, limits=httpx.Limits(max_connections=64))
            lo, hi = chunks[0]  # one call of a directory request

            def one_call(uri=uris[0]):
                response = http.get("/event_type_available_times", params={
                    "event_type": uri, "start_time": lo.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
                    "end_time": hi.strftime("%Y-%m-%dT%H:%M:%S.000000Z")})
                assert response.status_code == 200, response.text[:300]
                return response

            one_call()
            single = timed(one_call, ROUNDS)
            print(f"sandbox one call ({(hi - lo).days} days, one provider) {fmt(single)} ({LATENCY_MS} ms of it added latency)")
            for n in (8, 20):
                pool = ThreadPoolExecutor(max_workers=n)

                def burst(n=n, pool=pool):
                    list(pool.map(lambda i: one_call(uris[i % len(uris)]), range(n)))

                burst()
                figures = timed(burst, max(5, ROUNDS // 2))
                pool.shutdown()
                print(f"sandbox {n} calls at once {fmt(figures)} (parallel if close to one call)")
            http.close()

            # --- the Calendly client alone --------------------------------------------------------
            # The former defaults (7-day spans, 8 at once), then 31-day spans at 8 and 20 at once,
            # then the configured ones.
            variants = [(7, 8), (31, 8), (31, 20), (settings.CALENDLY_CHUNK_DAYS, settings.CALENDLY_CONCURRENCY)]
            for chunk_days, concurrency in dict.fromkeys(variants):
                def client_call(chunk_days=chunk_days, concurrency=concurrency):
                    with CalendlyClient(token=token, base_url=connection.base_url, concurrency=concurrency,
                                        chunk_days=chunk_days) as client:
                        times = client.available_times_many([(uri, start, end) for uri in uris])
                    assert all(times), "a provider without open times"

                figures = timed(client_call, max(5, ROUNDS // 2))
                n = len(uris) * len(time_chunks(start, end, chunk_days))
                waves = math.ceil(n / concurrency)
                print(f"client {n} calls ({chunk_days}-day spans) at concurrency {concurrency:>2} ({waves} waves) "
                      f"{fmt(figures)}; floor {waves} x one call = {waves * single[0]:.0f} ms")

            # --- the full stack -------------------------------------------------------------------
            web = Client(HTTP_HOST="localhost", HTTP_CV_API_KEY=api_key)
            params = {"provider_states": "ca", "event_type_id": event_type_id,
                      "start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "end_time": end.strftime("%Y-%m-%dT%H:%M:%SZ")}

            def directory():
                response = web.get("/api/v1/provider-availability", params)
                assert response.status_code == 200, response.content[:300]
                return response

            def invalidate():  # what a sync does: a new cache version, so nothing cached is reused
                CalendlyConnection.objects.filter(pk=connection.pk).update(cache_version=F("cache_version") + 1)

            answer = directory().json()["data"]
            assert len(answer) == PROVIDERS, len(answer)
            starts = sum(len(item["startTime"]) for item in answer)
            uncached = timed(directory, ROUNDS, before=invalidate)
            cached = timed(directory, ROUNDS * 4)
            print(f"directory {PROVIDERS} providers x {DAYS} days uncached {fmt(uncached)} ({calls} Calendly calls, "
                  f"{starts} open starts)")
            print(f"directory {PROVIDERS} providers x {DAYS} days cached {fmt(cached)}")
        load = load_average()
        print(f"targets: uncached p50 <= 600 ms, cached p50 <= 20 ms; {load_before} before, {load} after "
              f"(figures vary with the machine's load)")
    finally:
        Organization.objects.filter(pk=org.pk).delete()
        if settings.REDIS_URL:  # its own keys only: the prefix is the benchmark's
            from django_redis import get_redis_connection

            redis = get_redis_connection("default")
            for key in redis.scan_iter(match=f"{os.environ['CACHE_KEY_PREFIX']}:*", count=1000):
                redis.delete(key)


if __name__ == "__main__":
    main()
