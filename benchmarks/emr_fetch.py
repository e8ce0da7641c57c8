"""Benchmark: a live fetch of 5,000+ appointments from the sandbox EMR over HTTP, upserted into the
appointment cache, as the worker runs it (adapter → bulk upsert → job → event).

    python benchmarks/emr_fetch.py            # a scratch SQLite database in a temp directory
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/scratch python benchmarks/emr_fetch.py

Prints seconds (HTTP fetch, database work, total) and the number of database queries of the
worker's connection, for a first fetch (everything created) and a second one (nothing changed).
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
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from emr.models import Job
    from emr.sandbox import PREFIX
    from emr.services.appointments import appointments_store
    from emr.services.connections import emr_connection_create, sandbox_client_ensure
    from emr.services.live_fetch import FetchRequest, appointments_fetch_remote, live_fetch_payload
    from tenants.events import event_emit
    from tenants.services import organization_create

    call_command("migrate", verbosity=0, interactive=False)

    class Handler(WSGIRequestHandler):
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), Handler)
    server.set_app(get_wsgi_application())
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
        started = time.perf_counter()
        scope, fetched, stats = appointments_fetch_remote(connection=conn, request=request)
        fetched_at = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            with transaction.atomic():
                result = appointments_store(connection=conn, scope=scope, fetched=fetched)
                Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, counts=result.counts())
                event_emit(
                    organization=org,
                    type="appointment.live_fetch_completed",
                    data=live_fetch_payload(request=request, result=result, fetched=fetched, connection=conn),
                    job_id=job.pk,
                    access_token_reference_id=conn.access_token_reference_id,
                )
        done = time.perf_counter()
        counts = result.counts()
        print(
            f"  {label}: {done - started:.2f} s total = {fetched_at - started:.2f} s fetch over HTTP "
            f"({stats.requests} requests, {stats.pages} pages) + {done - fetched_at:.2f} s database and event; "
            f"{len(queries)} queries; fetched {counts['fetched']}, created {counts['created']}, "
            f"updated {counts['updated']}, unchanged {counts['unchanged']}"
        )

    print(f"EMR live fetch benchmark ({connection.vendor}, sandbox with {providers} providers, "
          f"{first_day} .. {first_day + timedelta(days=6)}: {expected} appointments, page size "
          f"{__import__('django.conf').conf.settings.EMR_PAGE_SIZE})")
    run("first fetch (all new)")
    run("second fetch (unchanged)")
    server.shutdown()


if __name__ == "__main__":
    main()
