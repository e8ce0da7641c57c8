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
from django.test.utils import CaptureQueriesContext

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


# --- the express path: a repeated query answered in one Redis round trip (booking.api.express) ---


@pytest.fixture
def express(settings, redis_url):
    """The production set-up: the cache and the rate limits in the same Redis, which knows the
    express script already (as it does after its first use: the first use loads it)."""
    import redis

    from tenants import shared_cache

    redis_cache_use(settings, redis_url)
    settings.REDIS_URL = redis_url
    redis.Redis.from_url(redis_url).script_load(shared_cache._EXPRESS_CHECK)
    return redis_url


@pytest.fixture
def round_trips(monkeypatch):
    """Every write to a Redis socket (one per command, or per pipeline or transaction), as sent."""
    from redis.connection import AbstractConnection

    sent = []
    original = AbstractConnection.send_packed_command

    def send(self, command, check_health=True):
        sent.append(command)
        return original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", send)
    return sent


@pytest.fixture
def rate(settings):
    from rest_framework.settings import api_settings

    def set_rate(value: str):
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {**api_settings.DEFAULT_THROTTLE_RATES, "v3": value},
        }

    return set_rate


def _get(api, params, round_trips, **headers):
    """The response and the number of Redis round trips it took."""
    before = len(round_trips)
    response = api.get("/v3/availability", params, **headers)
    return response, len(round_trips) - before


NOT_JSON_ONLY = {"HTTP_ACCEPT": "application/json, */*"}  # answered as JSON, but only by the usual path


def _served_express(api, params, round_trips, django_assert_num_queries):
    with django_assert_num_queries(0):
        response, trips = _get(api, params, round_trips)
    assert response.status_code == 200 and response["X-Cache"] == "HIT" and trips == 1, (response.status_code, trips)
    return response


def test_a_repeated_query_is_served_in_one_round_trip_as_the_usual_path_serves_it(
    db, express, round_trips, django_assert_num_queries
):
    clinic = clinic_make()
    api, params = clinic.tenant.v3(), clinic.params(roundRobin="NONE")
    assert api.get("/v3/availability", params)["X-Cache"] == "MISS"
    usual, trips = _get(api, params, round_trips, **NOT_JSON_ONLY)
    assert usual["X-Cache"] == "HIT" and trips > 1
    express_hit = _served_express(api, params, round_trips, django_assert_num_queries)
    assert express_hit.content == usual.content
    assert dict(express_hit.headers) == dict(usual.headers)
    assert express_hit["Allow"] == "GET, HEAD, OPTIONS"


@pytest.mark.parametrize("change", ["revoke", "rotate", "deactivate"])
def test_a_changed_credential_is_refused_at_once_on_a_repeated_query(
    db, express, round_trips, django_assert_num_queries, change
):
    import redis

    from tenants.services import api_client_revoke, api_client_rotate_key
    from tenants.shared_cache import credential_key

    clinic = clinic_make()
    api, params = clinic.tenant.v3(), clinic.params(roundRobin="NONE")
    api.get("/v3/availability", params)
    _served_express(api, params, round_trips, django_assert_num_queries)
    if change == "revoke":
        api_client_revoke(api_client=clinic.tenant.api_client)
    elif change == "rotate":
        new_key = api_client_rotate_key(api_client=clinic.tenant.api_client)
    else:
        clinic.organization.is_active = False
        clinic.organization.save()
    for _ in range(2):
        assert api.get("/v3/availability", params).status_code == 401
    if change == "deactivate":  # once the tombstone has expired, the entry read anew says inactive
        redis.Redis.from_url(express).delete(credential_key("sk", clinic.tenant.api_client.api_key_lookup))
        for _ in range(2):
            assert api.get("/v3/availability", params).status_code == 401
    if change == "rotate":
        from rest_framework.test import APIClient

        fresh = APIClient(HTTP_X_API_KEY=new_key)
        assert fresh.get("/v3/availability", params).status_code == 200
        assert fresh.get("/v3/availability", params).status_code == 200
        assert api.get("/v3/availability", params).status_code == 401


def test_a_client_moved_to_another_organization_is_never_served_the_old_ones_answers(
    db, express, round_trips, django_assert_num_queries
):
    """A worker keeps which organization an API key belonged to. When the client is moved to
    another organization and its credential entry is filled anew (its tombstone expired), a worker
    that still takes the key for the old organization must not serve that one's answers: the
    entry names its organization, and the express read compares it."""
    import redis

    from tenants.api import auth
    from tenants.shared_cache import credential_key

    clinic, other = clinic_make(), clinic_make("Other Clinic")
    api, params = clinic.tenant.v3(), clinic.params(roundRobin="NONE")
    api.get("/v3/availability", params)
    _served_express(api, params, round_trips, django_assert_num_queries)
    client = clinic.tenant.api_client
    lookup = client.api_key_lookup
    known_before = auth._holder_of_lookup[lookup]
    client.organization = other.organization
    client.save()
    redis.Redis.from_url(express).delete(credential_key("sk", lookup))  # as when the tombstone expires
    assert api.get("/v3/availability", params).status_code == 404  # the usual path: not the new one's location
    assert auth._holder_of_lookup[lookup][1] == other.organization.pk  # this worker knows it moved
    auth._holder_of_lookup[lookup] = known_before  # another worker, which does not yet
    response, _ = _get(api, params, round_trips)
    assert response.status_code == 404, (response.status_code, response.get("X-Cache"))


def test_the_usual_path_reads_the_body_kept_under_the_raw_query_string_and_only_while_it_is_there(
    db, express, round_trips, django_assert_num_queries
):
    """With the express copy, the answer's body is stored once: the normalized entry names it. A
    hit through the usual path (another Accept) serves that body; when the raw entry is gone, the
    usual path computes the answer again instead of serving nothing or something stale."""
    import redis

    clinic = clinic_make()
    api, params = clinic.tenant.v3(), clinic.params(roundRobin="NONE")
    first = api.get("/v3/availability", params)
    assert first["X-Cache"] == "MISS"
    usual, _ = _get(api, params, round_trips, **NOT_JSON_ONLY)
    assert usual["X-Cache"] == "HIT" and usual.content == first.content
    client = redis.Redis.from_url(express)
    raw = [key for key in client.keys("*availability:raw:*")]
    assert len(raw) == 1
    client.delete(*raw)
    again, _ = _get(api, params, round_trips, **NOT_JSON_ONLY)
    assert again["X-Cache"] == "MISS" and again.content == first.content


def test_a_wrong_key_with_a_known_lookup_is_refused(db, express, round_trips, django_assert_num_queries):
    from rest_framework.test import APIClient

    clinic = clinic_make()
    api, params = clinic.tenant.v3(), clinic.params(roundRobin="NONE")
    api.get("/v3/availability", params)
    _served_express(api, params, round_trips, django_assert_num_queries)
    key = clinic.tenant.api_key
    forged = key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")  # same lookup, another secret
    assert APIClient(HTTP_X_API_KEY=forged).get("/v3/availability", params).status_code == 401


def test_a_booking_makes_the_next_repeated_query_a_miss(
    db, express, round_trips, django_assert_num_queries, django_capture_on_commit_callbacks
):
    clinic = clinic_make()
    adams = clinic.resources[0]
    api, params = clinic.tenant.v3(), clinic.params(roundRobin="NONE")
    api.get("/v3/availability", params)
    assert str(adams.pk) in _listed(_served_express(api, params, round_trips, django_assert_num_queries))[NINE]
    with django_capture_on_commit_callbacks(execute=True):  # the commit rotates the generation
        appointment_book(organization=clinic.organization, service=clinic.service, location=clinic.location,
                         start=utc(14), resource_ids=[str(adams.pk)])
    after = api.get("/v3/availability", params)
    assert after["X-Cache"] == "MISS" and str(adams.pk) not in _listed(after)[NINE]
    again = _served_express(api, params, round_trips, django_assert_num_queries)
    assert again.content == after.content


def test_the_rate_limit_is_exact_across_both_paths(db, express, rate, round_trips):
    rate("4/min")
    clinic = clinic_make()
    api, params = clinic.tenant.v3(), clinic.params(roundRobin="NONE")
    answers = [
        _get(api, params, round_trips),  # MISS, the usual path
        _get(api, params, round_trips),  # express
        _get(api, params, round_trips, **NOT_JSON_ONLY),  # the usual path's HIT
        _get(api, params, round_trips),  # express
        _get(api, params, round_trips),  # over the limit: the usual path answers
        _get(api, params, round_trips, **NOT_JSON_ONLY),
    ]
    assert [(r.status_code, trips == 1) for r, trips in answers] == [
        (200, False), (200, True), (200, False), (200, True), (429, False), (429, False)
    ]
    limited = answers[4][0]
    assert limited.json()["name"] == "TooManyRequestsError" and 1 <= int(limited["Retry-After"]) <= 60


def test_a_query_spelled_differently_still_hits_the_usual_way(db, express, round_trips, django_assert_num_queries):
    clinic = clinic_make()
    api = clinic.tenant.v3()
    params = clinic.params(roundRobin="NONE")
    first = api.get("/v3/availability", params)
    respelled = dict(reversed(list(params.items())))
    with django_assert_num_queries(0):
        hit, trips = _get(api, respelled, round_trips)
    assert hit["X-Cache"] == "HIT" and trips > 1 and hit.content == first.content


def _at(monkeypatch, moment):
    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: moment)


def test_past_slots_are_dropped_from_a_repeated_query(db, express, round_trips, django_assert_num_queries, monkeypatch):
    clinic = clinic_make()
    api, params = clinic.tenant.v3(), clinic.params(roundRobin="NONE")
    _at(monkeypatch, utc(13))  # 08:00 in New York
    first = api.get("/v3/availability", params)
    assert first["X-Cache"] == "MISS" and NINE in _listed(first)
    _at(monkeypatch, utc(14, 5))  # 09:05: the 09:00 slot has passed
    api.get("/v3/locations")  # the last use is recorded anew (it was more than a minute ago)
    trimmed = _served_express(api, params, round_trips, django_assert_num_queries)
    assert NINE not in _listed(trimmed) and f"{MONDAY}T09:30:00-05:00" in _listed(trimmed)
    usual = api.get("/v3/availability", params, **NOT_JSON_ONLY)
    assert usual["X-Cache"] == "HIT" and usual.content == trimmed.content


def test_first_available_whose_slot_passed_is_computed_again(db, express, round_trips, django_assert_num_queries, monkeypatch):
    clinic = clinic_make()
    api, params = clinic.tenant.v3(), clinic.params(roundRobin="NONE", firstAvailable="true")
    _at(monkeypatch, utc(13))
    first = api.get("/v3/availability", params)
    assert list(_listed(first)) == [NINE]
    _served_express(api, params, round_trips, django_assert_num_queries)
    _at(monkeypatch, utc(14, 5))
    api.get("/v3/locations")  # the last use is recorded anew, so only the passed slot stands in the way
    again, trips = _get(api, params, round_trips)
    assert again["X-Cache"] == "MISS" and trips > 1 and list(_listed(again)) == [f"{MONDAY}T09:30:00-05:00"]
    assert _served_express(api, params, round_trips, django_assert_num_queries).content == again.content


def test_last_use_is_still_recorded_once_a_minute(db, express, round_trips, django_assert_num_queries, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from tenants.models import ApiClient

    clinic = clinic_make()
    api, params = clinic.tenant.v3(), clinic.params(roundRobin="NONE")
    api.get("/v3/availability", params)
    _served_express(api, params, round_trips, django_assert_num_queries)
    recorded = ApiClient.objects.get(pk=clinic.tenant.api_client.pk).last_used_at
    later = timezone.now() + timedelta(minutes=2)
    _at(monkeypatch, later)
    hit, trips = _get(api, params, round_trips)
    assert hit["X-Cache"] == "HIT" and trips > 1  # the usual path, which records the use
    assert ApiClient.objects.get(pk=clinic.tenant.api_client.pk).last_used_at == later != recorded
    _served_express(api, params, round_trips, django_assert_num_queries)


@pytest.mark.parametrize("accept", ["text/html", ""])
def test_an_accept_header_json_does_not_satisfy_is_answered_the_usual_way(db, express, round_trips, accept):
    clinic = clinic_make()
    api, params = clinic.tenant.v3(), clinic.params(roundRobin="NONE")
    api.get("/v3/availability", params)
    assert _get(api, params, round_trips)[1] == 1
    refused = api.get("/v3/availability", params, HTTP_ACCEPT=accept)
    assert refused.status_code == 406 and refused.json()["name"] == "NotAcceptableError"


def test_sync_external_queries_never_take_the_express_path(db, express, round_trips):
    import redis

    clinic = clinic_make()
    api, params = clinic.tenant.v3(), clinic.params(roundRobin="NONE", syncExternal="true")
    answers = [_get(api, params, round_trips) for _ in range(3)]
    assert all(r.status_code == 200 and trips > 1 for r, trips in answers)
    assert not redis.Redis.from_url(express).keys("*availability:raw:*")


def test_a_flushed_last_use_record_is_written_back_without_a_database_write(
    db, express, round_trips, django_assert_num_queries
):
    """The cached credential and its ``used`` key lost (a flush): the usual path reads the client
    again, whose last use was recorded less than a minute ago, and writes that back to Redis
    without writing it to the database again, so the express path resumes at once rather than a
    minute later."""
    import redis

    from tenants.shared_cache import credential_key, used_key

    clinic = clinic_make()
    api, params = clinic.tenant.v3(), clinic.params(roundRobin="NONE")
    api.get("/v3/availability", params)
    _served_express(api, params, round_trips, django_assert_num_queries)
    lookup = clinic.tenant.api_client.api_key_lookup
    redis.Redis.from_url(express).delete(credential_key("sk", lookup), used_key("sk", lookup))
    with CaptureQueriesContext(connection) as ctx:
        usual, trips = _get(api, params, round_trips)
    assert usual["X-Cache"] == "HIT" and trips > 1
    assert [q["sql"].split()[0] for q in ctx.captured_queries] == ["SELECT"]  # the client; no last-use write
    _served_express(api, params, round_trips, django_assert_num_queries)
