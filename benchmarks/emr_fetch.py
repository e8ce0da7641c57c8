"""Benchmark: a live fetch of 5,000+ appointments from the sandbox EMR over HTTP, upserted into the
appointment cache, as the worker runs it (adapter → bulk upsert → job → event).

    python benchmarks/emr_fetch.py            # a scratch SQLite database in a temp directory
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/scratch python benchmarks/emr_fetch.py

Each pass runs a fetch job through ``job_run``, the function the django-q2 task calls. Prints
seconds (total; the part the sandbox EMR spent answering over HTTP; the rest: mapping, database
and events) and the number of database queries of the worker's connection, for a first fetch
(everything created), a second one (nothing changed) and a third one where every cached
appointment differs from the EMR (every row updated, one ``appointment.updated`` event each),
first without and then with a webhook endpoint registered (one delivery per event).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET = 5000


def _providers_for(target: int) -> tuple[int, int]:
    from emr.sandbox.data import SandboxDataset

    count = 6
    while True:
        ds = SandboxDataset.for_now(provider_count=count)
        first = ds.today + timedelta(days=1)
        total = len(ds.appointments(first=first, last=first + timedelta(days=6)))
        if total >= target:
            return count, total
        count += max(1, (target - total) // 80)


def main() -> None:
    scratch = tempfile.mkdtemp(prefix="emr-bench-")
    os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{scratch}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    providers, expected = _providers_for(TARGET)
    os.environ["SANDBOX_PROVIDERS"] = str(providers)

    import django

    django.setup()
    from django.core.management import call_command
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application
    from django.db import connection

    from booking.models import Appointment
    from emr.models import Job
    from emr.sandbox import PREFIX
    from emr.services.connections import emr_connection_create, sandbox_client_ensure
    from emr.services.live_fetch import FetchRequest, job_run
    from tenants.crypto import encrypt_text
    from tenants.models import Delivery, Event, WebhookEndpoint
    from tenants.services import organization_create

    call_command("migrate", verbosity=0, interactive=False)

    class Handler(WSGIRequestHandler):
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

    emr_seconds = [0.0]  # time the sandbox EMR spent answering (server side)
    wsgi = get_wsgi_application()

    def timed_app(environ, start_response):
        began = time.perf_counter()
        try:
            return list(wsgi(environ, start_response))
        finally:
            emr_seconds[0] += time.perf_counter() - began

    server = ThreadedWSGIServer(("127.0.0.1", 0), Handler)
    server.set_app(timed_app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}/{PREFIX}"

    org = organization_create(name=f"Bench {time.time_ns()}", timezone_name="America/New_York")
    conn = emr_connection_create(organization=org, base_url=base_url).connection
    sandbox_client_ensure(connection=conn)
    from emr.sandbox.data import SandboxDataset

    first_day = SandboxDataset.for_now().today + timedelta(days=1)
    request = FetchRequest(start_date=first_day, end_date=first_day + timedelta(days=6))

    def run(label: str) -> None:
        job = Job.objects.create(organization=org, emr_connection=conn, kind=Job.Kind.APPOINTMENTS_FETCH, params=request.params())
        emr_seconds[0] = 0.0
        started = time.perf_counter()
        queries = [0]

        def count(execute, sql, params, many, context):
            queries[0] += 1
            return execute(sql, params, many, context)

        # Counted as they run (Django's debug query log keeps only the last 9,000).
        with connection.execute_wrapper(count):
            job_run(job_id=job.pk)
        done = time.perf_counter()
        job.refresh_from_db()
        if job.status != Job.Status.SUCCEEDED:
            raise SystemExit(f"{label}: the job {job.status}: {job.error}")
        counts = job.counts
        events = Event.objects.filter(job_id=job.pk)
        print(
            f"  {label}: {done - started:.2f} s total = {emr_seconds[0]:.2f} s the EMR answering over HTTP "
            f"({counts['requests']} requests, {counts['pages']} pages) + {done - started - emr_seconds[0]:.2f} s "
            f"mapping, database and events; {queries[0]} queries; fetched {counts['fetched']}, "
            f"created {counts['created']}, updated {counts['updated']}, unchanged {counts['unchanged']}; "
            f"{events.count()} events, {Delivery.objects.filter(event__in=events).count()} deliveries"
        )

    def make_every_appointment_stale() -> None:
        """The cache differs from the EMR for every appointment, so the next fetch updates each
        one (the store compares field by field; which field differs does not matter)."""
        Appointment.objects.filter(emr_connection=conn).update(reason="(stale)")

    print(f"EMR live fetch benchmark ({connection.vendor}, sandbox with {providers} providers, "
          f"{first_day} .. {first_day + timedelta(days=6)}: {expected} appointments, page size "
          f"{__import__('django.conf').conf.settings.EMR_PAGE_SIZE})")
    run("first fetch (all new)")
    run("second fetch (unchanged)")
    make_every_appointment_stale()
    run("third fetch (every appointment changed)")
    WebhookEndpoint.objects.create(organization=org, url="https://hooks.example/bench", secret_encrypted=encrypt_text("whsec_bench"))
    make_every_appointment_stale()
    run("third fetch again, one webhook endpoint registered")
    server.shutdown()


if __name__ == "__main__":
    main()
