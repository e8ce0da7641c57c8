"""Race-free booking: real concurrent clients racing for the last places.

Each client is a thread with its own HTTP connection to the live server, which serves every
request on its own thread with its own database connection. All clients are released at once by a
barrier. Exactly as many win as there were places; the others get 409.

On PostgreSQL the live server shares the test database. The in-memory SQLite test database can't
be shared by concurrent connections, so on SQLite the same race runs against gunicorn worker
processes on a SQLite file, where the IMMEDIATE transaction mode (settings) serializes writers.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from django.db import connection

from booking import models as b
from tests.booking.conftest import MONDAY, clinic_make, utc

CLIENTS = 10


def _race(live_server, api_key: str, bodies: list[dict]) -> list[httpx.Response]:
    barrier = threading.Barrier(len(bodies))
    results: list[httpx.Response | BaseException] = [None] * len(bodies)

    def client(index: int) -> None:
        with httpx.Client(base_url=live_server.url, headers={"x-api-key": api_key}, timeout=60) as http:
            http.get("/v3/appointments", params={"limit": 1})  # connect and authenticate before the start line
            barrier.wait()
            try:
                results[index] = http.post("/v3/appointments", json=bodies[index])
            except BaseException as exc:  # noqa: BLE001 - reported below
                results[index] = exc

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(isinstance(r, BaseException) for r in results), results
    return results


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("capacity,existing,places", [(1, 0, 1), (2, 0, 2), (3, 2, 1)], ids=["last-of-1", "capacity-2", "last-of-3"])
def test_exactly_as_many_winners_as_places(requires_postgres, live_server, capacity, existing, places):
    clinic = clinic_make("Race")
    resource = clinic.resources[0]
    resource.bookings_per_slot = capacity
    resource.save()
    clinic.service.bookings_per_slot = capacity
    clinic.service.save()
    for _ in range(existing):
        appointment = b.Appointment.objects.create(
            organization=clinic.organization, start=utc(14),
            end=utc(14, 30), service=clinic.service, location=clinic.location,
        )
        b.AppointmentResource.objects.create(appointment=appointment, resource=resource)
    body = {
        "ServiceId": str(clinic.service.pk),
        "LocationId": str(clinic.location.pk),
        "startTime": f"{MONDAY}T09:00:00-05:00",
        "ResourceIds": [str(resource.pk)],
    }
    responses = _race(live_server, clinic.tenant.api_key, [body] * CLIENTS)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * places + [409] * (CLIENTS - places), [r.text for r in responses]
    assert all(r.json()["name"] == "ConflictError" for r in responses if r.status_code == 409)
    booked = b.AppointmentResource.objects.filter(resource=resource, appointment__status="BK").count()
    assert booked == existing + places


@pytest.mark.django_db(transaction=True)
def test_automatic_choice_never_double_books(requires_postgres, live_server):
    clinic = clinic_make("Race")  # two providers, capacity 1 each
    body = {"ServiceId": str(clinic.service.pk), "LocationId": str(clinic.location.pk), "startTime": f"{MONDAY}T09:00:00-05:00"}
    responses = _race(live_server, clinic.tenant.api_key, [body] * CLIENTS)
    winners = [r.json() for r in responses if r.status_code == 201]
    assert sorted(r.status_code for r in responses) == [201, 201] + [409] * (CLIENTS - 2)
    assert sorted(w["ResourceIds"][0] for w in winners) == sorted(str(r.pk) for r in clinic.resources)


@pytest.mark.django_db(transaction=True)
def test_overlapping_but_different_starts_race(requires_postgres, live_server):
    clinic = clinic_make("Race")
    resource = clinic.resources[0]
    starts = [f"{MONDAY}T09:{minute:02d}:00-05:00" for minute in (0, 5, 10, 15, 20, 25, 29, 3)]
    bodies = [
        {"ServiceId": str(clinic.service.pk), "LocationId": str(clinic.location.pk), "startTime": s, "ResourceIds": [str(resource.pk)]}
        for s in starts
    ]
    responses = _race(live_server, clinic.tenant.api_key, bodies)
    assert sorted(r.status_code for r in responses) == [201] + [409] * (len(bodies) - 1)


SETUP = """
import json
from tests.booking.conftest import clinic_make
clinic = clinic_make("Race")
print(json.dumps({"key": clinic.tenant.api_key, "service": str(clinic.service.pk), "location": str(clinic.location.pk),
                  "resource": str(clinic.resources[0].pk)}))
"""


class _Server:
    def __init__(self, url: str):
        self.url = url


def test_sqlite_file_serializes_writers_across_processes(tmp_path):
    if connection.vendor != "sqlite":
        pytest.skip("the PostgreSQL races above cover this database")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/race.sqlite3", "DJANGO_SETTINGS_MODULE": "config.settings",
           "V3_RATE_LIMIT": "100000/min"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=root, env=env, check=True)
    made = subprocess.run([sys.executable, "manage.py", "shell", "-c", SETUP], cwd=root, env=env, check=True,
                          capture_output=True, text=True)
    ids = json.loads(made.stdout.strip().splitlines()[-1])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "--workers", "4", "--bind", f"127.0.0.1:{port}",
         "--access-logfile", "/dev/null", "config.wsgi"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/v3/appointments", timeout=1)
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("gunicorn did not start: " + server.stderr.read().decode()[-2000:])
                time.sleep(0.1)
        body = {"ServiceId": ids["service"], "LocationId": ids["location"], "startTime": f"{MONDAY}T09:00:00-05:00",
                "ResourceIds": [ids["resource"]]}
        responses = _race(_Server(url), ids["key"], [body] * CLIENTS)
        assert sorted(r.status_code for r in responses) == [201] + [409] * (CLIENTS - 1), [r.text for r in responses]
        listed = httpx.get(url + "/v3/appointments", params={"ResourceId": ids["resource"]}, headers={"x-api-key": ids["key"]})
        assert listed.json()["count"] == 1
    finally:
        server.terminate()
        server.wait(timeout=10)
