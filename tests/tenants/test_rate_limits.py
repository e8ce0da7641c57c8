"""Rate limits are exact (``overview.md``): with a limit of N, concurrent requests through several
gunicorn workers get exactly N answers that are not 429, counted in Redis when ``REDIS_URL`` is
set and in the database otherwise; ``Retry-After`` is the seconds until the window frees.

The burst tests start gunicorn with four workers: on SQLite on a migrated file of their own, on
PostgreSQL on the test database itself (a transactional test, so the workers see its rows)."""

from __future__ import annotations

import os
import time
import uuid

import pytest
from django.db import connection
from limits import RateLimitItemPerSecond
from rest_framework.settings import api_settings

from tenants.api import throttling
from tenants.api.throttling import DatabaseWindows, RedisWindows
from tenants.models import RateLimitWindow
from tests.conftest import make_tenant
from tests.servers import burst, gunicorn_running, tenant_in_database

LIMIT = 60
BURST = 150
THREADS = 8
WORKERS = 4


class FlushGuard:
    """Other test processes share the Redis test database and flush it (the ``redis_url``
    fixture): a sentinel key tells whether that happened during an attempt, so a reset count is
    never mistaken for a rate-limit bug. Without Redis every attempt counts."""

    def __init__(self, url: str | None):
        self.client = None
        if url:
            import redis

            self.client = redis.Redis.from_url(url)

    def attempts(self, tries: int = 3):
        for _ in range(tries):
            sentinel = f"sentinel:{uuid.uuid4().hex}"
            if self.client is not None:
                self.client.set(sentinel, 1, ex=600)
            yield lambda key=sentinel: self.client is None or bool(self.client.exists(key))
            if self.client is None or self.client.exists(sentinel):
                return
        pytest.fail("the shared Redis test database was flushed during every attempt")


# --- the two stores, one window at a time ---------------------------------------------------------


def test_the_database_window_passes_n_then_answers_the_seconds_until_it_closes(db):
    store, t0 = DatabaseWindows(), 1_000_000.0
    assert [store.hit("v3:a", 3, 60, t0 + i) for i in range(3)] == [0.0, 0.0, 0.0]
    assert store.hit("v3:a", 3, 60, t0 + 20.5) == pytest.approx(39.5)
    assert store.hit("v3:a", 3, 60, t0 + 59.9) == pytest.approx(0.1)
    assert store.hit("v3:b", 3, 60, t0 + 30) == 0.0  # another credential has its own window
    # The window closes 60 s after it opened: a new one, counted from 1 again.
    assert [store.hit("v3:a", 3, 60, t0 + 60 + i) for i in range(3)] == [0.0, 0.0, 0.0]
    assert store.hit("v3:a", 3, 60, t0 + 70) == pytest.approx(50)
    assert RateLimitWindow.objects.get(bucket="v3:a").hits == 4


def test_the_database_forgets_windows_long_closed(db):
    store, t0 = DatabaseWindows(), 1_000_000.0
    store.hit("v3:gone", 3, 60, t0)
    store.hit("v3:still", 3, 60, t0 + 100)
    store.hit("v3:new", 3, 60, t0 + 150)  # opening a window sweeps those closed a period ago
    assert set(RateLimitWindow.objects.values_list("bucket", flat=True)) == {"v3:still", "v3:new"}


def test_the_redis_window_passes_n_then_answers_the_seconds_until_it_closes(redis_url):
    store = RedisWindows(redis_url, "test:ratelimit")
    for untouched in FlushGuard(redis_url).attempts():
        bucket, now = f"v3:{uuid.uuid4().hex}", time.time()
        hits = [store.hit(bucket, 3, 60, now) for _ in range(4)]
        other = store.hit(bucket + "-other", 3, 60, now)
        ttl = store.storage.get_connection().pttl(store.storage.prefixed_key(RateLimitItemPerSecond(3, 60).key_for(bucket)))
        if not untouched():
            continue
        assert hits[:3] == [0.0, 0.0, 0.0] and 0 < hits[3] <= 60
        assert other == 0.0  # another credential has its own window
        assert 0 < ttl <= 60_000  # the window expires with its period


# --- through the API: each family's 429 and Retry-After ---------------------------------------------


@pytest.fixture
def rates(settings):
    def set_rates(**rates):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                                   "DEFAULT_THROTTLE_RATES": {**api_settings.DEFAULT_THROTTLE_RATES, **rates}}

    return set_rates


@pytest.mark.parametrize("store", ["database", "redis"])
def test_each_family_answers_429_in_its_shape_with_retry_after(db, rates, settings, request, store):
    settings.REDIS_URL = request.getfixturevalue("redis_url") if store == "redis" else ""
    rates(v3="2/min", v1="2/min", provider_directory="2/min")
    for attempt, untouched in enumerate(FlushGuard(settings.REDIS_URL).attempts()):
        tenant = make_tenant(f"Limited {attempt}")
        calls = {
            "v3": lambda t=tenant: t.v3().get("/v3/locations"),
            "v1": lambda t=tenant: t.v1().get("/v1/locations"),
            "directory": lambda t=tenant: t.v3().get("/api/v1/provider-availability", {"provider_states": "CA"},
                                                     HTTP_CV_API_KEY=t.api_key),
        }
        answers = {family: [call() for _ in range(3)] for family, call in calls.items()}
        if not untouched():
            continue
        for family, (first, second, limited) in answers.items():
            assert [first.status_code, second.status_code, limited.status_code] == [200, 200, 429], (family, limited.content)
            assert 1 <= int(limited["Retry-After"]) <= 60, family
            body = limited.json()
            if family == "v3":
                assert body["statusCode"] == 429 and body["name"] == "TooManyRequestsError"
            elif family == "v1":
                assert body == {"success": False, "message": body["message"]} and body["message"]
            else:
                assert body["status"] == 429 and body["message"] == "Too many requests"
                assert limited["Retry-After"] in body["error"]
        if store == "database":
            assert RateLimitWindow.objects.filter(bucket__endswith=f":{tenant.api_client.pk}").count() == 3


def test_retry_after_counts_down_to_the_end_of_the_window(db, rates, settings, monkeypatch):
    settings.REDIS_URL = ""
    rates(v3="1/min")
    tenant = make_tenant("Clocked")
    now = [2_000_000.0]
    monkeypatch.setattr(throttling.CredentialRateThrottle, "timer", staticmethod(lambda: now[0]))
    assert tenant.v3().get("/v3/locations").status_code == 200
    now[0] += 15.2
    assert tenant.v3().get("/v3/locations")["Retry-After"] == "45"
    now[0] += 44
    assert tenant.v3().get("/v3/locations")["Retry-After"] == "1"
    now[0] += 0.8
    assert tenant.v3().get("/v3/locations").status_code == 200  # the window freed when it said


# --- real concurrent clients against several gunicorn workers ---------------------------------------


@pytest.fixture
def served(request, tmp_path):
    """The environment for gunicorn and the credentials of a tenant in its database."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "V3_RATE_LIMIT": f"{LIMIT}/min",
           "V1_RATE_LIMIT": f"{LIMIT}/min", "PROVIDER_DIRECTORY_RATE_LIMIT": f"{LIMIT}/min", "REDIS_URL": ""}
    if connection.vendor == "postgresql":
        request.getfixturevalue("transactional_db")
        s = connection.settings_dict
        password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
        env["DATABASE_URL"] = f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
        env["CONN_MAX_AGE"] = "0"
        return env, tenant_in_database(env, migrate=False)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path}/burst.sqlite3"
    return env, tenant_in_database(env, migrate=True)


def _counts(answers) -> tuple[int, int]:
    assert not [a for a in answers if not hasattr(a, "status_code")], answers
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {200, 429}, [a.text for a in answers if a.status_code not in (200, 429)][:3]
    for answer in answers:
        if answer.status_code == 429:
            assert 1 <= int(answer.headers["Retry-After"]) <= LIMIT
    return statuses.count(200), statuses.count(429)


@pytest.mark.parametrize("store", ["database", "redis"])
def test_a_burst_through_several_workers_gets_exactly_the_limit(served, request, store):
    env, tenant = served
    if store == "redis":
        env = {**env, "REDIS_URL": request.getfixturevalue("redis_url")}
    guard = FlushGuard(env["REDIS_URL"])
    with gunicorn_running(env, workers=WORKERS) as url:
        for untouched in guard.attempts():
            v3 = burst(url, "/v3/locations", {"x-api-key": tenant["api_key"]}, requests=BURST, threads=THREADS)
            directory = burst(url, "/api/v1/provider-availability?provider_states=CA", {"cv-api-key": tenant["api_key"]},
                              requests=BURST, threads=THREADS)
            v1_headers = {"client_id": tenant["client_id"], "client_secret": tenant["client_secret"],
                          "access_token": tenant["access_token"]}
            v1 = burst(url, "/v1/locations", v1_headers, requests=BURST, threads=THREADS)
            if not untouched():
                tenant = tenant_in_database(env, migrate=False)  # fresh credentials, fresh windows
                continue
            assert _counts(v3) == (LIMIT, BURST - LIMIT)
            assert _counts(directory) == (LIMIT, BURST - LIMIT)  # the cv-api-key limit counts on its own
            assert _counts(v1) == (LIMIT, BURST - LIMIT)
