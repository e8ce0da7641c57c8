"""A live fetch run by a real ``manage.py qcluster`` process.

On PostgreSQL the worker uses the test database itself. SQLite tests run in memory, which another
process cannot open, so the database is copied to a file for the worker and copied back after.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection

from booking.models import Appointment
from emr.models import Job
from emr.services.connections import sandbox_client_ensure
from tenants.models import Event
from tests.emr.test_live_fetch import expected_appointments, fetch, next_weekday

WAIT_SECONDS = 90


def _database_url(tmp_path) -> tuple[str, str | None]:
    if connection.vendor == "postgresql":
        s = connection.settings_dict
        auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
        return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}", None
    path = str(tmp_path / "worker.sqlite3")
    target = sqlite3.connect(path)
    connection.ensure_connection()
    connection.connection.backup(target)
    target.close()
    return f"sqlite:///{path}", path


def _job_status(job_id: str, sqlite_path: str | None) -> str:
    if sqlite_path is None:
        return Job.objects.get(pk=job_id).status
    db = sqlite3.connect(sqlite_path, timeout=5)
    try:
        row = db.execute("SELECT status FROM emr_job WHERE id = ?", (job_id,)).fetchone()
    except sqlite3.OperationalError:  # locked by the worker: ask again
        return "running"
    finally:
        db.close()
    return row[0]


def test_a_real_qcluster_process_runs_the_live_fetch(sandbox_tenant, tmp_path):
    sandbox_client_ensure(connection=sandbox_tenant.emr_connection)  # the live server reads this copy
    start = next_weekday(1)
    end = start + timedelta(days=1)
    job_id = fetch(sandbox_tenant, {"start_date": start.isoformat(), "end_date": end.isoformat()})
    database_url, sqlite_path = _database_url(tmp_path)

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url,
        "SECRET_KEY": settings.SECRET_KEY,
        "Q_WORKERS": "1",
        "Q_POLL": "0.2",
        "Q_BROKER": "orm",
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
    }
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"], cwd=settings.BASE_DIR, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        status = "queued"
        while time.monotonic() < deadline and status not in ("succeeded", "failed"):
            time.sleep(0.3)
            status = _job_status(job_id, sqlite_path)
    finally:
        worker.send_signal(signal.SIGINT)  # the cluster stops its own workers
        try:
            output, _ = worker.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            output, _ = worker.communicate()
    assert status == "succeeded", output.decode(errors="replace")[-3000:]

    if sqlite_path is not None:
        source = sqlite3.connect(sqlite_path)
        source.backup(connection.connection)
        source.close()

    job = Job.objects.get(pk=job_id)
    assert job.status == Job.Status.SUCCEEDED and job.attempts == 1
    expected = expected_appointments(start, end)
    assert sorted(Appointment.objects.filter(emr_connection=sandbox_tenant.emr_connection).values_list("ehr_appointment_id", flat=True)) == sorted(a["id"] for a in expected)
    event = Event.objects.get(job_id=job_id, type="appointment.live_fetch_completed")
    assert event.payload["data"]["success"] is True and event.payload["data"]["appointment_count"] == len(expected)
