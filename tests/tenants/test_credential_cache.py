"""API keys cached in the shared cache (Redis): a cached availability answer costs no database
query, and revocation, rotation, deactivation and the last-used rule stay exact
(``tenants.shared_cache``). The same across gunicorn workers: ``tests/booking/test_availability_redis.py``."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from booking import models as b
from booking.services.invalidation import availability_invalidate
from tenants import services, shared_cache, signals
from tenants.api.auth import api_client_by_key
from tenants.models import ApiClient, Organization
from tenants.services import api_client_create, api_client_revoke, api_client_rotate_key
from tests.booking.conftest import clinic_make
from tests.conftest import redis_cache_use


@pytest.fixture
def shared(settings, redis_url):
    """The production set-up: the cache and the rate limits in Redis."""
    redis_cache_use(settings, redis_url)
    settings.REDIS_URL = redis_url
    return shared_cache.shared_redis()


def _availability(clinic, api=None):
    return (api or clinic.tenant.v3()).get("/v3/availability", clinic.params(roundRobin="NONE"))


def test_a_cached_answer_runs_no_query(db, shared):
    clinic = clinic_make()
    first = _availability(clinic)
    assert first.status_code == 200 and first["X-Cache"] == "MISS"
    with CaptureQueriesContext(connection) as ctx:
        second = _availability(clinic)
    assert second["X-Cache"] == "HIT" and second.content == first.content
    assert ctx.captured_queries == []


def test_a_cached_answer_runs_no_query_on_the_usual_path_either(db, shared):
    """An ``Accept`` the express path leaves to DRF: the credential comes from its cached entry."""
    clinic = clinic_make()
    api = clinic.tenant.v3()
    assert _availability(clinic, api).status_code == 200
    with CaptureQueriesContext(connection) as ctx:
        second = api.get("/v3/availability", clinic.params(roundRobin="NONE"), HTTP_ACCEPT="application/json, */*")
    assert second["X-Cache"] == "HIT"
    assert ctx.captured_queries == []


def test_without_a_shared_cache_credentials_are_read_from_the_database(db, settings):
    """A per-process cache is never trusted with a credential: every request reads it."""
    assert shared_cache.shared_redis() is None
    clinic = clinic_make()
    _availability(clinic)
    with CaptureQueriesContext(connection) as ctx:
        assert _availability(clinic)["X-Cache"] == "HIT"
    assert any("tenants_apiclient" in q["sql"] for q in ctx.captured_queries)


def test_revoking_a_cached_key_stops_it_at_once(db, shared):
    clinic = clinic_make()
    assert _availability(clinic).status_code == 200
    assert _availability(clinic)["X-Cache"] == "HIT"  # the key is cached now
    api_client_revoke(api_client=clinic.tenant.api_client)
    for _ in range(2):
        assert _availability(clinic).status_code == 401


def test_rotating_a_cached_key_retires_the_old_one_at_once(db, shared):
    clinic = clinic_make()
    assert _availability(clinic).status_code == 200
    new_key = api_client_rotate_key(api_client=clinic.tenant.api_client)
    assert _availability(clinic).status_code == 401
    assert _availability(clinic, APIClient(HTTP_X_API_KEY=new_key)).status_code == 200
    assert _availability(clinic).status_code == 401  # the old one stays retired once the new one is cached


def test_deactivating_the_organization_stops_its_cached_keys(db, shared):
    clinic = clinic_make()
    assert _availability(clinic).status_code == 200
    organization = clinic.organization
    organization.is_active = False
    organization.save()
    assert _availability(clinic).status_code == 401


def test_deleting_a_cached_client_stops_its_key(db, shared):
    clinic = clinic_make()
    extra = api_client_create(organization=clinic.organization)
    api = APIClient(HTTP_X_API_KEY=extra.api_key)
    assert _availability(clinic, api).status_code == 200
    ApiClient.objects.get(pk=extra.api_client.pk).delete()
    assert _availability(clinic, api).status_code == 401


def test_a_read_overtaken_by_a_revocation_is_not_stored(db, shared):
    """A worker read the key from the database just before another revoked it: its lease is gone,
    so what it read is not stored, and the next request reads the revocation."""
    clinic = clinic_make()
    lookup = clinic.tenant.api_client.api_key_lookup
    key = shared_cache.credential_key("sk", lookup)
    used = shared_cache.used_key("sk", lookup)
    read = shared_cache.credential_read(shared, key, used=used)
    assert read.entry is None and read.lease is not None
    api_client_revoke(api_client=clinic.tenant.api_client)
    assert not shared_cache.credential_fill(shared, key, read.lease, b"stale", secret_hash="0" * 64, active=True, organization_id=1)
    again = shared_cache.credential_read(shared, key, used=used)
    assert (again.entry, again.lease) == (None, None)  # tombstoned: read the database
    assert _availability(clinic).status_code == 401


def test_last_used_is_recorded_at_most_once_a_minute_with_cached_keys(db, shared, monkeypatch):
    clinic = clinic_make()
    ApiClient.objects.update(last_used_at=None)
    assert _availability(clinic).status_code == 200
    first = ApiClient.objects.get(pk=clinic.tenant.api_client.pk).last_used_at
    assert first is not None
    with CaptureQueriesContext(connection) as ctx:
        assert _availability(clinic).status_code == 200
    assert not any("last_used_at" in q["sql"] for q in ctx.captured_queries)
    assert ApiClient.objects.get(pk=clinic.tenant.api_client.pk).last_used_at == first
    later = timezone.now() + timedelta(minutes=2)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert _availability(clinic).status_code == 200
    assert ApiClient.objects.get(pk=clinic.tenant.api_client.pk).last_used_at == later
    with CaptureQueriesContext(connection) as ctx:  # written once, and every worker knows it
        assert _availability(clinic).status_code == 200
    assert ctx.captured_queries == []


def test_cached_keys_keep_tenants_apart(db, shared):
    a, b_clinic = clinic_make("A"), clinic_make("B")
    for clinic in (a, b_clinic):  # both keys and both answers cached
        assert _availability(clinic).status_code == 200
        assert _availability(clinic)["X-Cache"] == "HIT"
    theirs = b_clinic.tenant.v3()
    for change in ({"LocationId": str(a.location.pk)}, {"ServiceId": str(a.service.pk)}):
        response = theirs.get("/v3/availability", b_clinic.params(roundRobin="NONE", **change))
        assert response.status_code == 404, change
    same_query = theirs.get("/v3/availability", a.params(roundRobin="NONE"))
    assert same_query.status_code == 404  # A's cached answer for exactly this query is not B's
    assert _availability(b_clinic).json()["ServiceId"] == str(b_clinic.service.pk)


def test_a_write_makes_cached_answers_unreachable_and_pending_writes_bypass_the_cache(
    db, shared, django_capture_on_commit_callbacks
):
    clinic = clinic_make()
    organization_id = clinic.organization.pk
    before = shared_cache.generation_read(shared, organization_id)
    assert before is not None
    token = shared_cache.generation_pending(shared, organization_id)
    assert shared_cache.generation_read(shared, organization_id) is None  # mid-write: no cache
    assert _availability(clinic)["X-Cache"] == "MISS"
    assert _availability(clinic)["X-Cache"] == "MISS"  # nothing was stored meanwhile
    shared_cache.generation_rotate(shared, organization_id, token)
    after = shared_cache.generation_read(shared, organization_id)
    assert after not in (None, before)
    assert _availability(clinic)["X-Cache"] == "MISS"
    assert _availability(clinic)["X-Cache"] == "HIT"
    b.Block.objects.create(organization=clinic.organization, resource=clinic.resources[0],
                           start=timezone.now() + timedelta(days=400), end=timezone.now() + timedelta(days=401))
    with django_capture_on_commit_callbacks(execute=True):
        availability_invalidate(organization_id=organization_id)
        assert shared_cache.generation_read(shared, organization_id) is None  # not committed yet
    assert shared_cache.generation_read(shared, organization_id) not in (None, after)
    assert _availability(clinic)["X-Cache"] == "MISS"
    assert _availability(clinic)["X-Cache"] == "HIT"


def test_a_pending_mark_whose_writer_died_expires_into_a_new_generation(db, shared, monkeypatch):
    clinic = clinic_make()
    organization_id = clinic.organization.pk
    before = shared_cache.generation_read(shared, organization_id)
    monkeypatch.setattr(shared_cache, "PENDING_SECONDS", -1)  # a mark already past its time, never rotated
    shared_cache.generation_pending(shared, organization_id)
    after = shared_cache.generation_read(shared, organization_id)
    assert after is not None and after != before  # the reader dropped it and started a new generation
    assert shared_cache.generation_read(shared, organization_id) == after


def _paused_after_forgetting(module, monkeypatch, write):
    """Run ``write`` in a thread of its own that stops right after it told the cache to forget the
    keys it read (its transaction still open); answers the thread, the event that lets it go on,
    and the list its error lands in."""
    forgot, go, errors = threading.Event(), threading.Event(), []
    original = module.api_keys_forget

    def forget(lookups):
        original(lookups)
        forgot.set()
        assert go.wait(30)

    monkeypatch.setattr(module, "api_keys_forget", forget)

    def run():
        try:
            write()
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    assert forgot.wait(30)
    monkeypatch.setattr(module, "api_keys_forget", original)
    return thread, go, errors


def _rotation_racing(client):
    """A rotation of ``client`` in a thread of its own (it waits while another write holds the
    row); once it has committed and its key has been used, that key may be cached."""
    box = {}

    def rotate():
        try:
            box["key"] = api_client_rotate_key(api_client=client)
        finally:
            connection.close()

    thread = threading.Thread(target=rotate)
    thread.start()
    thread.join(timeout=2)
    if "key" in box:  # it was not held back: a request with the new key caches it now
        api_client_by_key(box["key"])
    return thread, box


@pytest.mark.django_db(transaction=True)
def test_a_revocation_racing_a_rotation_leaves_no_key_accepted(requires_postgres, shared, monkeypatch):
    """The revocation holds the client's row from reading its key to committing, so a rotation in
    between waits for it instead of bringing in a key the revocation never forgets."""
    issued = api_client_create(organization=clinic_make().organization)
    client = issued.api_client
    revoking, go, errors = _paused_after_forgetting(services, monkeypatch, lambda: api_client_revoke(api_client=client))
    rotating, box = _rotation_racing(client)
    go.set()
    revoking.join(30)
    rotating.join(30)
    assert not errors and not revoking.is_alive() and not rotating.is_alive()
    assert ApiClient.objects.get(pk=client.pk).revoked_at is not None
    assert api_client_by_key(box["key"]) is None
    assert api_client_by_key(issued.api_key) is None


@pytest.mark.django_db(transaction=True)
def test_deactivating_an_organization_racing_a_rotation_leaves_no_key_accepted(requires_postgres, shared, monkeypatch):
    clinic = clinic_make()
    client = api_client_create(organization=clinic.organization).api_client

    def deactivate():
        with transaction.atomic():
            organization = Organization.objects.get(pk=clinic.organization.pk)
            organization.is_active = False
            organization.save()

    deactivating, go, errors = _paused_after_forgetting(signals, monkeypatch, deactivate)
    rotating, box = _rotation_racing(client)
    go.set()
    deactivating.join(30)
    rotating.join(30)
    assert not errors and not deactivating.is_alive() and not rotating.is_alive()
    assert Organization.objects.get(pk=clinic.organization.pk).is_active is False
    assert api_client_by_key(box["key"]) is None


def test_an_entry_of_the_earlier_format_is_read_but_never_served_by_the_express_path(db, shared, monkeypatch):
    """Entries without the header (``E:``, written before it existed) stay valid for the usual
    path until they expire; the express read, which needs the header, leaves them to it."""
    import pickle

    from redis.connection import AbstractConnection

    clinic = clinic_make()
    client = ApiClient.objects.select_related("organization").get(pk=clinic.tenant.api_client.pk)
    assert _availability(clinic).status_code == 200  # known to this process, the answer stored
    key = shared_cache.credential_key("sk", client.api_key_lookup)
    shared.set(key, b"E:" + pickle.dumps(client))
    sent, original = [], AbstractConnection.send_packed_command
    monkeypatch.setattr(AbstractConnection, "send_packed_command", lambda self, c, check_health=True: (sent.append(c), original(self, c, check_health))[1])
    with CaptureQueriesContext(connection) as ctx:
        answer = _availability(clinic)
    assert answer.status_code == 200 and answer["X-Cache"] == "HIT"
    assert ctx.captured_queries == []  # the credential was read from the old entry
    assert len(sent) > 1  # by the usual path: the express read is one round trip
