"""Rule 12 with a real Redis: a booked slot is never served again, in one process or across
several gunicorn workers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.db import connection

from booking.services.appointments import appointment_book
from tests.booking.conftest import MONDAY, clinic_make, utc
from tests.conftest import redis_cache_use
from tests.servers import free_port

NINE = f"{MONDAY}T09:00:00-05:00"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def redis_cache(settings, redis_url):
    redis_cache_use(settings, redis_url)
    return redis_url


def _listed(response) -> dict[str, list[str]]:
    return {s["start_time"]: s["ResourceIds"] for s in response.json()["availableTimes"]}


def test_booking_then_availability_misses_and_omits_the_slot(db, redis_cache):
    import redis

    clinic = clinic_make()
    adams = clinic.resources[0]
    api = clinic.tenant.v3()
    params = clinic.params(roundRobin="NONE")
    first = api.get("/v3/availability", params)
    assert first["X-Cache"] == "MISS" and str(adams.pk) in _listed(first)[NINE]
    assert api.get("/v3/availability", params)["X-Cache"] == "HIT"
    assert any(b"availability" in key for key in redis.Redis.from_url(redis_cache).keys("*"))  # really in Redis
    booked = api.post(
        "/v3/appointments",
        {"ServiceId": str(clinic.service.pk), "LocationId": str(clinic.location.pk), "startTime": NINE, "ResourceIds": [str(adams.pk)]},
        format="json",
    )
    assert booked.status_code == 201
    after = api.get("/v3/availability", params)
    assert after["X-Cache"] == "MISS" and str(adams.pk) not in _listed(after)[NINE]


@pytest.fixture
def gunicorn(requires_postgres, transactional_db, redis_url, settings):
    """Two gunicorn workers on the test database and the test Redis; this process shares their
    cache, as every process of a deployment does (writes rotate the generation there)."""
    redis_cache_use(settings, redis_url, key_prefix="sched")
    settings.REDIS_URL = redis_url
    port = free_port()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "CONN_MAX_AGE": "0",
        "CACHE_KEY_PREFIX": "sched",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "--workers", "2", "--bind", f"127.0.0.1:{port}",
         "--access-logfile", "/dev/null", "config.wsgi"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(base + "/v3/availability", timeout=1)
            break
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("gunicorn did not start: " + process.stderr.read().decode()[-2000:])
            time.sleep(0.1)
    yield base
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def test_several_gunicorn_workers_never_serve_a_booked_slot(gunicorn):
    clinic = clinic_make()
    adams = clinic.resources[0]
    params = clinic.params(roundRobin="NONE")
    headers = {"x-api-key": clinic.tenant.api_key}

    def ask() -> httpx.Response:
        # A new connection each time, so requests spread over the workers.
        response = httpx.get(gunicorn + "/v3/availability", params=params, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        return response

    first = ask()
    assert first.headers["X-Cache"] == "MISS" and str(adams.pk) in _listed(first)[NINE]
    assert {ask().headers["X-Cache"] for _ in range(6)} == {"HIT"}  # every worker reads the shared cache

    booked = httpx.post(
        gunicorn + "/v3/appointments", headers=headers, timeout=10,
        json={"ServiceId": str(clinic.service.pk), "LocationId": str(clinic.location.pk), "startTime": NINE,
              "ResourceIds": [str(adams.pk)]},
    )
    assert booked.status_code == 201, booked.text
    answers = [ask() for _ in range(6)]
    assert answers[0].headers["X-Cache"] == "MISS"
    assert all(str(adams.pk) not in _listed(a).get(NINE, []) for a in answers)

    # A booking written by another process (here: this one) is just as invisible afterwards.
    appointment_book(organization=clinic.organization, service=clinic.service, location=clinic.location,
                     start=utc(14, 30), resource_ids=[str(adams.pk)])
    answers = [ask() for _ in range(6)]
    assert all(str(adams.pk) not in _listed(a).get(f"{MONDAY}T09:30:00-05:00", []) for a in answers)


def test_revoking_or_rotating_a_key_stops_it_at_once_on_every_worker(gunicorn):
    """The workers cache the key in Redis; a revocation or rotation by another process (here: this
    one) reaches every worker before it returns."""
    from tenants.services import api_client_create, api_client_revoke, api_client_rotate_key

    clinic = clinic_make()
    params = clinic.params(roundRobin="NONE")

    def statuses(key: str) -> set[int]:
        # A new connection each time, so requests spread over the workers.
        return {
            httpx.get(gunicorn + "/v3/availability", params=params, headers={"x-api-key": key}, timeout=10).status_code
            for _ in range(8)
        }

    assert statuses(clinic.tenant.api_key) == {200}  # cached by every worker that served it
    new_key = api_client_rotate_key(api_client=clinic.tenant.api_client)
    assert statuses(clinic.tenant.api_key) == {401}
    assert statuses(new_key) == {200}
    api_client_revoke(api_client=clinic.tenant.api_client)
    assert statuses(new_key) == {401}
    other = api_client_create(organization=clinic.organization)
    assert statuses(other.api_key) == {200}
