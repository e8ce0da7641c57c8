"""Delivery to a real HTTP receiver on 127.0.0.1, exactly as ``webhooks.md`` says.

Time is driven (``now=``) through the services rather than slept; the ``webhook-timestamp``
header is always the real send time, so the ``standardwebhooks`` verifier accepts it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tenants.events import event_emit
from tenants.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint
from tenants.webhooks.client import retry_after_parse
from tenants.webhooks.services import (
    ENQUEUE_EACH_UP_TO,
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    deliveries_process_due,
    delivery_attempt_run,
    delivery_claim,
    delivery_redeliver,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
)
from tests.tenants.receiver import Reply, TricklingReceiver

SECOND = timedelta(seconds=1)


def emit(tenant, type="appointment.created", data=None, **kwargs) -> Event:
    return event_emit(organization=tenant.organization, type=type, data=data or {"appointment": {"id": "a1"}}, **kwargs)


def only_delivery(event: Event) -> Delivery:
    return Delivery.objects.get(event=event)


def verify(request, secret: str) -> dict:
    return Webhook(secret).verify(request.body, request.headers)


@pytest.fixture
def hook(tenant, receiver):
    return webhook_endpoint_create(organization=tenant.organization, url=receiver.url())


# --- what is sent ---------------------------------------------------------------------------------


def test_body_is_the_stored_payload_and_the_signature_verifies_with_standardwebhooks(tenant, receiver, hook):
    event = emit(tenant, data={"appointment": {"id": "a1", "note": "Zoë ✓"}})
    report = delivery_attempt_run(delivery_id=only_delivery(event).pk)

    assert report.status == Delivery.Status.SUCCEEDED
    [request] = receiver.wait_for(1)
    assert request.method == "POST" and request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.body == event.body.encode()  # the bytes sent are the stored bytes
    assert verify(request, hook.secret) == event.payload == {
        "id": event.pk,
        "object": "event",
        "created": event.payload["created"],
        "type": "appointment.created",
        "data": {"appointment": {"id": "a1", "note": "Zoë ✓"}},
    }
    assert request.headers["webhook-id"] == event.pk
    assert request.headers["webhook-attempt"] == "1"
    assert abs(int(request.headers["webhook-timestamp"]) - timezone.now().timestamp()) < 60
    assert request.headers["webhook-signature"].startswith("v1,") and " " not in request.headers["webhook-signature"]


def test_cobalt_verification_is_hex_hmac_of_the_body_keyed_by_the_whole_secret(tenant, receiver, hook):
    event = emit(tenant)
    delivery_attempt_run(delivery_id=only_delivery(event).pk)
    [request] = receiver.wait_for(1)
    expected = hmac.new(hook.secret.encode("utf-8"), request.body, hashlib.sha256).hexdigest()
    assert request.headers["cobalt-verification"] == expected
    # keyed by the whole string, "whsec_" included: not by the decoded key
    wrong = hmac.new(hook.secret.removeprefix("whsec_").encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["cobalt-verification"] != wrong


def test_a_tampered_body_does_not_verify(tenant, receiver, hook):
    event = emit(tenant)
    delivery_attempt_run(delivery_id=only_delivery(event).pk)
    [request] = receiver.wait_for(1)
    with pytest.raises(WebhookVerificationError):
        Webhook(hook.secret).verify(request.body.replace(b"a1", b"a2"), request.headers)


def test_live_fetch_events_use_the_cobalt_envelope(tenant, receiver, hook):
    event = emit(
        tenant,
        type="appointment.live_fetch_completed",
        data={"success": True, "appointment_count": 0, "appointments": []},
        job_id="job_abc123",
        access_token_reference_id=tenant.emr_connection.access_token_reference_id,
    )
    delivery_attempt_run(delivery_id=only_delivery(event).pk)
    [request] = receiver.wait_for(1)
    body = json.loads(request.body)
    assert list(body) == ["id", "access_token_reference_id", "job_id", "timestamp", "type", "action", "data"]
    assert body["job_id"] == "job_abc123" and body["action"] == "sync"
    assert body["access_token_reference_id"] == tenant.emr_connection.access_token_reference_id
    assert body["timestamp"].endswith("Z")


def test_response_excerpt_is_the_first_kilobyte_and_duration_is_recorded(tenant, receiver, hook):
    receiver.script(Reply(200, body=b"x" * 5000))
    event = emit(tenant)
    delivery_attempt_run(delivery_id=only_delivery(event).pk)
    [attempt] = DeliveryAttempt.objects.filter(delivery__event=event)
    assert attempt.response_excerpt == "x" * 1024
    assert attempt.status_code == 200 and attempt.number == 1 and attempt.outcome == "succeeded"
    assert attempt.duration_ms is not None and attempt.error == ""
    assert attempt.url == receiver.url()


# --- retries ------------------------------------------------------------------------------------


def test_500_is_retried_after_5_seconds_with_the_same_id_and_attempt_2(tenant, receiver, hook):
    receiver.script(500, 200)
    event = emit(tenant)
    delivery = only_delivery(event)
    t0 = timezone.now()

    first = delivery_attempt_run(delivery_id=delivery.pk, now=t0)
    assert first.status == Delivery.Status.PENDING and first.status_code == 500
    assert first.next_attempt_at == t0 + timedelta(seconds=5)
    assert deliveries_process_due(now=t0 + timedelta(seconds=5) - SECOND) == 0
    assert len(receiver.requests) == 1

    assert deliveries_process_due(now=t0 + timedelta(seconds=5)) == 1
    one, two = receiver.wait_for(2)
    assert one.headers["webhook-id"] == two.headers["webhook-id"] == event.pk
    assert (one.headers["webhook-attempt"], two.headers["webhook-attempt"]) == ("1", "2")
    assert one.body == two.body
    assert verify(two, hook.secret) == event.payload

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 2, 200)
    rows = list(delivery.attempt_rows.values_list("number", "status_code", "outcome"))
    assert rows == [(1, 500, "retry"), (2, 200, "succeeded")]


def test_the_whole_retry_schedule_then_failed(tenant, receiver, hook):
    receiver.default = Reply(503)
    event = emit(tenant)
    delivery = only_delivery(event)
    expected = [timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
                timedelta(hours=5), timedelta(hours=10), timedelta(hours=10)]
    assert list(RETRY_DELAYS) == expected and MAX_ATTEMPTS == 8

    now = timezone.now()
    for attempt, delay in enumerate(expected, start=1):
        assert deliveries_process_due(now=now) == 1
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("pending", attempt)
        assert delivery.next_attempt_at == now + delay
        assert deliveries_process_due(now=now + delay - SECOND) == 0
        now += delay
    assert deliveries_process_due(now=now) == 1  # the 8th attempt
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.next_attempt_at is None
    assert "Gave up after 8 attempts" in delivery.last_error
    assert deliveries_process_due(now=now + timedelta(days=30)) == 0
    assert [r.headers["webhook-attempt"] for r in receiver.wait_for(8)] == [str(n) for n in range(1, 9)]
    assert len(receiver.requests) == 8


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_4xx_fails_without_retry(tenant, receiver, hook, status):
    receiver.script(status)
    event = emit(tenant)
    t0 = timezone.now()
    report = delivery_attempt_run(delivery_id=only_delivery(event).pk, now=t0)
    assert report.status == Delivery.Status.FAILED and report.next_attempt_at is None
    assert deliveries_process_due(now=t0 + timedelta(days=2)) == 0
    assert len(receiver.requests) == 1
    hook.endpoint.refresh_from_db()
    assert hook.endpoint.is_active  # only 410 disables


def test_410_fails_and_disables_the_endpoint(tenant, receiver, hook):
    receiver.script(410)
    first, waiting = emit(tenant), emit(tenant)
    t0 = timezone.now()
    report = delivery_attempt_run(delivery_id=only_delivery(first).pk, now=t0)

    assert report.status == Delivery.Status.FAILED
    endpoint = WebhookEndpoint.objects.get(pk=hook.endpoint.pk)
    assert not endpoint.is_active and endpoint.status == "disabled"
    assert "410" in endpoint.disabled_reason and endpoint.disabled_at == t0
    # what was waiting for it fails too, and nothing new is sent to it
    assert only_delivery(waiting).status == Delivery.Status.FAILED
    later = emit(tenant)
    assert not Delivery.objects.filter(event=later).exists()
    assert deliveries_process_due(now=t0 + timedelta(days=1)) == 0
    assert len(receiver.requests) == 1


def test_429_honours_retry_after_seconds(tenant, receiver, hook):
    receiver.script(Reply(429, headers={"Retry-After": "120"}), 200)
    event = emit(tenant)
    t0 = timezone.now()
    report = delivery_attempt_run(delivery_id=only_delivery(event).pk, now=t0)
    assert report.status == Delivery.Status.PENDING and report.next_attempt_at == t0 + timedelta(seconds=120)
    assert deliveries_process_due(now=t0 + timedelta(seconds=119)) == 0  # not at the schedule's 5 s
    assert deliveries_process_due(now=t0 + timedelta(seconds=120)) == 1
    assert [r.headers["webhook-attempt"] for r in receiver.wait_for(2)] == ["1", "2"]
    assert only_delivery(event).status == Delivery.Status.SUCCEEDED


def test_429_retry_after_as_http_date(tenant, receiver, hook):
    event = emit(tenant)
    t0 = timezone.now()
    later = (t0 + timedelta(minutes=10)).replace(microsecond=0)  # HTTP dates have whole seconds
    receiver.script(Reply(429, headers={"Retry-After": later.strftime("%a, %d %b %Y %H:%M:%S GMT")}))
    report = delivery_attempt_run(delivery_id=only_delivery(event).pk, now=t0)
    # t0 + (the date - the moment the answer was read): the date, less the time the attempt took
    assert later - SECOND <= report.next_attempt_at <= later
    assert abs((report.next_attempt_at - t0).total_seconds() - 600) < 2
    assert deliveries_process_due(now=later - 2 * SECOND) == 0


@pytest.mark.parametrize("soon", ["1", "http-date"])
def test_retry_after_never_sooner_than_the_schedule(tenant, receiver, hook, soon):
    if soon == "http-date":
        soon = (timezone.now() + timedelta(seconds=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    receiver.script(Reply(429, headers={"Retry-After": soon}))
    event = emit(tenant)
    t0 = timezone.now()
    report = delivery_attempt_run(delivery_id=only_delivery(event).pk, now=t0)
    assert report.next_attempt_at == t0 + timedelta(seconds=5)  # the schedule's minimum wins


@pytest.mark.parametrize("value", ["\u00b2", "\u0661\u0662", "12\u00b3"])  # "²", Arabic-Indic "12", "12³"
def test_retry_after_that_is_not_plain_ascii_digits_is_ignored(value):
    assert value.isdigit()  # what made them look like delta-seconds
    assert retry_after_parse(value) is None


def test_an_unusable_retry_after_does_not_stop_the_batch(tenant, receiver, hook):
    receiver.script(Reply(503, headers={"Retry-After": "\u00b2"}), 200)
    first, second = emit(tenant), emit(tenant)
    t0 = timezone.now()

    assert deliveries_process_due(now=t0) == 2

    # The batch is sent concurrently: the first request to arrive gets the 503.
    one, two = receiver.wait_for(2)
    assert {one.headers["webhook-id"], two.headers["webhook-id"]} == {first.pk, second.pk}
    answered_503, answered_200 = (first, second) if one.headers["webhook-id"] == first.pk else (second, first)
    failed = only_delivery(answered_503)
    assert (failed.status, failed.next_attempt_at, failed.last_status_code) == ("pending", t0 + timedelta(seconds=5), 503)
    assert failed.lease_expires_at is None and failed.claim_token == ""
    assert only_delivery(answered_200).status == Delivery.Status.SUCCEEDED


def test_an_unexpected_error_is_that_attempts_error_and_retried_while_the_batch_goes_on(tenant, receiver):
    broken = webhook_endpoint_create(organization=tenant.organization, url=receiver.url("/broken")).endpoint
    webhook_endpoint_create(organization=tenant.organization, url=receiver.url("/fine"))
    # Its secret was encrypted with a key that is no longer configured: it cannot be signed.
    WebhookEndpoint.objects.filter(pk=broken.pk).update(secret_encrypted="gAAAAA-not-a-fernet-token")
    event = emit(tenant)
    t0 = timezone.now()

    assert deliveries_process_due(now=t0) == 2

    assert [r.path for r in receiver.wait_for(1)] == ["/fine"]
    delivery = Delivery.objects.get(event=event, endpoint=broken)
    assert (delivery.status, delivery.next_attempt_at, delivery.claim_token) == ("pending", t0 + timedelta(seconds=5), "")
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.outcome == DeliveryAttempt.Outcome.RETRY and attempt.status_code is None and attempt.number == 1
    assert attempt.error.startswith("Unexpected error while sending: DecryptionError:")
    assert Delivery.objects.get(event=event, endpoint__url=receiver.url("/fine")).status == Delivery.Status.SUCCEEDED


def test_network_errors_are_retried(tenant, receiver):
    receiver.stop()  # nothing listens on that port any more
    endpoint = webhook_endpoint_create(organization=tenant.organization, url=receiver.url()).endpoint
    event = emit(tenant)
    t0 = timezone.now()
    report = delivery_attempt_run(delivery_id=only_delivery(event).pk, now=t0)
    assert report.status == Delivery.Status.PENDING and report.status_code is None
    assert report.next_attempt_at == t0 + timedelta(seconds=5)
    attempt = DeliveryAttempt.objects.get(delivery__endpoint=endpoint)
    assert attempt.status_code is None and "Connect" in attempt.error and attempt.outcome == "retry"


@override_settings(WEBHOOK_TIMEOUT_SECONDS=0.3)
def test_timeouts_are_retried(tenant, receiver, hook):
    receiver.script(Reply(200, delay=3))
    event = emit(tenant)
    t0 = timezone.now()
    report = delivery_attempt_run(delivery_id=only_delivery(event).pk, now=t0)
    receiver.release()
    assert report.status == Delivery.Status.PENDING and report.next_attempt_at == t0 + timedelta(seconds=5)
    attempt = DeliveryAttempt.objects.get(delivery__event=event)
    assert attempt.status_code is None and attempt.error.startswith("Timed out after 0.3 s")


@pytest.fixture
def trickling_receiver():
    server = TricklingReceiver(interval=0.08)  # its whole answer takes about 5.5 s
    yield server
    server.stop()


@override_settings(WEBHOOK_TIMEOUT_SECONDS=0.5)
def test_the_timeout_bounds_the_whole_attempt_even_when_every_read_gets_a_byte(tenant, trickling_receiver):
    webhook_endpoint_create(organization=tenant.organization, url=trickling_receiver.url())
    event = emit(tenant)
    t0 = timezone.now()
    started = time.monotonic()
    report = delivery_attempt_run(delivery_id=only_delivery(event).pk, now=t0)
    elapsed = time.monotonic() - started

    assert elapsed < 2.0  # a few times the 0.5 s timeout, far from the 5.5 s the answer takes
    assert trickling_receiver.connections == 1
    assert report.status == Delivery.Status.PENDING and report.status_code is None
    assert report.next_attempt_at == t0 + timedelta(seconds=5)
    attempt = DeliveryAttempt.objects.get(delivery__event=event)
    assert attempt.outcome == DeliveryAttempt.Outcome.RETRY and attempt.status_code is None
    assert attempt.error.startswith("Timed out after 0.5 s") and attempt.duration_ms < 2000


@override_settings(WEBHOOK_TIMEOUT_SECONDS=0.5)
def test_the_timeout_bounds_the_name_lookup_too(tenant, receiver, monkeypatch):
    real = socket.getaddrinfo
    released = threading.Event()

    def getaddrinfo(host, port, *args, **kwargs):  # a resolver that does not answer
        if host in ("hooks.slow-dns.test", b"hooks.slow-dns.test"):
            released.wait(10)
            host = "127.0.0.1"
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    webhook_endpoint_create(organization=tenant.organization, url=f"http://hooks.slow-dns.test:{receiver.port}/hook")
    event = emit(tenant)
    t0 = timezone.now()
    started = time.monotonic()
    try:
        report = delivery_attempt_run(delivery_id=only_delivery(event).pk, now=t0)
        elapsed = time.monotonic() - started
    finally:
        released.set()

    assert elapsed < 2.0  # the lookup alone would have held it 10 s
    assert report.status == Delivery.Status.PENDING and report.next_attempt_at == t0 + timedelta(seconds=5)
    attempt = DeliveryAttempt.objects.get(delivery__event=event)
    assert attempt.outcome == DeliveryAttempt.Outcome.RETRY
    assert attempt.error == "Timed out after 0.5 s (looking up the host)."
    assert receiver.requests == []


def test_redirects_are_not_followed(tenant, receiver, hook):
    receiver.script(Reply(302, headers={"Location": "http://127.0.0.1:1/elsewhere"}))
    event = emit(tenant)
    report = delivery_attempt_run(delivery_id=only_delivery(event).pk)
    assert report.status == Delivery.Status.FAILED and "redirects are not followed" in report.error
    assert len(receiver.requests) == 1


# --- a worker that died ---------------------------------------------------------------------------


@override_settings(WEBHOOK_LEASE_SECONDS=60)
def test_a_delivery_left_in_flight_by_a_dead_worker_is_retried_after_its_lease(tenant, receiver, hook):
    event = emit(tenant)
    delivery = only_delivery(event)
    t0 = timezone.now()
    claim = delivery_claim(now=t0)  # a worker claims it ... and dies before sending
    assert claim.delivery_id == delivery.pk and claim.attempt == 1
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENDING and delivery.lease_expires_at == t0 + timedelta(seconds=60)

    assert deliveries_process_due(now=t0 + timedelta(seconds=59)) == 0  # still its lease
    assert receiver.requests == []
    assert deliveries_process_due(now=t0 + timedelta(seconds=60)) == 1

    [request] = receiver.wait_for(1)
    assert request.headers["webhook-id"] == event.pk and request.headers["webhook-attempt"] == "2"
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SUCCEEDED
    rows = list(delivery.attempt_rows.values_list("number", "outcome", "status_code"))
    assert rows == [(1, "lost", None), (2, "succeeded", 200)]


def test_a_claimed_delivery_is_not_claimed_twice(tenant, receiver, hook):
    event = emit(tenant)
    t0 = timezone.now()
    assert delivery_claim(now=t0) is not None
    assert delivery_claim(now=t0) is None
    assert delivery_attempt_run(delivery_id=only_delivery(event).pk, now=t0) is None
    assert receiver.requests == []


# --- secrets rotation --------------------------------------------------------------------------------


def test_during_rotation_two_signatures_verify_and_after_24_hours_only_the_new(tenant, receiver, hook):
    rotated_at = timezone.now()
    new = webhook_endpoint_rotate_secret(endpoint=hook.endpoint, now=rotated_at)
    assert new.secret != hook.secret and new.secret.startswith("whsec_")

    during = emit(tenant)
    delivery_attempt_run(delivery_id=only_delivery(during).pk, now=rotated_at + timedelta(hours=24) - SECOND)
    [request] = receiver.wait_for(1)
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    assert verify(request, new.secret) == during.payload
    assert verify(request, hook.secret) == during.payload
    # each secret matches exactly one of the two, the new one first
    for secret, signature in ((new.secret, signatures[0]), (hook.secret, signatures[1])):
        single = {**request.headers, "webhook-signature": signature}
        assert Webhook(secret).verify(request.body, single) == during.payload
    assert request.headers["cobalt-verification"] == hmac.new(new.secret.encode(), request.body, hashlib.sha256).hexdigest()

    after = emit(tenant)
    delivery_attempt_run(delivery_id=only_delivery(after).pk, now=rotated_at + timedelta(hours=24))
    _, request = receiver.wait_for(2)
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    assert verify(request, new.secret) == after.payload
    with pytest.raises(WebhookVerificationError):
        verify(request, hook.secret)


def test_secrets_are_stored_encrypted(tenant, hook):
    stored = WebhookEndpoint.objects.get(pk=hook.endpoint.pk)
    assert hook.secret not in stored.secret_encrypted
    assert hook.secret.removeprefix("whsec_") not in stored.secret_encrypted


# --- fan-out and isolation ---------------------------------------------------------------------------


def test_an_organizations_events_never_reach_another_organizations_endpoints(tenant, other_tenant, receiver):
    own = webhook_endpoint_create(organization=tenant.organization, url=receiver.url("/own"))
    webhook_endpoint_create(organization=other_tenant.organization, url=receiver.url("/other"))
    event = emit(tenant)
    assert list(Delivery.objects.values_list("event_id", "endpoint_id", "organization_id")) == [
        (event.pk, own.endpoint.pk, tenant.organization.pk)
    ]
    assert deliveries_process_due() == 1
    assert [r.path for r in receiver.wait_for(1)] == ["/own"]


def test_one_delivery_per_endpoint_and_event_type_filters(tenant, receiver):
    every = webhook_endpoint_create(organization=tenant.organization, url=receiver.url("/every"))
    only_cancel = webhook_endpoint_create(
        organization=tenant.organization, url=receiver.url("/cancel"), event_types=["appointment.cancelled"]
    )
    created, cancelled = emit(tenant, "appointment.created"), emit(tenant, "appointment.cancelled")
    assert set(Delivery.objects.values_list("event_id", "endpoint_id")) == {
        (created.pk, every.endpoint.pk),
        (cancelled.pk, every.endpoint.pk),
        (cancelled.pk, only_cancel.endpoint.pk),
    }
    assert deliveries_process_due() == 3
    paths = sorted((r.path, r.headers["webhook-id"]) for r in receiver.wait_for(3))
    assert paths == sorted([("/every", created.pk), ("/every", cancelled.pk), ("/cancel", cancelled.pk)])


def test_events_are_stored_even_without_endpoints(tenant):
    event = emit(tenant, job_id="job_123")
    assert Event.objects.get(pk=event.pk).payload["id"] == event.pk
    assert not Delivery.objects.exists()


def test_first_attempt_is_enqueued_after_commit_only(tenant, receiver, hook, django_capture_on_commit_callbacks):
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        event = emit(tenant)
        assert OrmQ.objects.count() == 0  # nothing before commit
    assert len(callbacks) == 1
    [queued] = OrmQ.objects.all()
    task = SignedPackage.loads(queued.payload)
    assert task["func"] == "tenants.webhooks.tasks.delivery_attempt_task"
    assert task["args"] == (only_delivery(event).pk,)


@pytest.mark.parametrize("count", [ENQUEUE_EACH_UP_TO, ENQUEUE_EACH_UP_TO + 1])
def test_a_large_batch_is_enqueued_as_one_draining_task_per_worker_and_each_is_sent_once(
    tenant, receiver, hook, django_capture_on_commit_callbacks, settings, count
):
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    from tenants.events import NewEvent, events_emit
    from tests.emr.conftest import run_queued_tasks

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 3}
    with django_capture_on_commit_callbacks(execute=True):
        events = events_emit(
            organization=tenant.organization, events=[NewEvent("appointment.updated", {"n": n}) for n in range(count)]
        )
    tasks = [SignedPackage.loads(q.payload) for q in OrmQ.objects.all()]
    if count <= ENQUEUE_EACH_UP_TO:  # a task per delivery
        assert sorted(t["args"][0] for t in tasks) == sorted(Delivery.objects.values_list("pk", flat=True))
        assert {t["func"] for t in tasks} == {"tenants.webhooks.tasks.delivery_attempt_task"}
    else:  # one broker write per worker, not per delivery
        assert [(t["func"], t["args"]) for t in tasks] == [("tenants.webhooks.tasks.deliveries_process_task", ())] * 3

    finished = run_queued_tasks()
    assert all(t["success"] for t in finished)
    received = receiver.wait_for(count)
    assert sorted(r.headers["webhook-id"] for r in received) == sorted(e.pk for e in events)  # each once
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SUCCEEDED}


def test_a_rolled_back_event_leaves_nothing_to_send(tenant, receiver, hook):
    from django.db import transaction

    with pytest.raises(RuntimeError):
        with transaction.atomic():
            emit(tenant)
            raise RuntimeError("the change the event reported failed")
    assert not Event.objects.exists() and not Delivery.objects.exists()


def test_deleted_endpoint_gets_nothing_more(tenant, receiver, hook):
    waiting = emit(tenant)
    webhook_endpoint_delete(endpoint=hook.endpoint)
    assert only_delivery(waiting).status == Delivery.Status.FAILED
    emit(tenant)
    assert Delivery.objects.count() == 1
    assert deliveries_process_due(now=timezone.now() + timedelta(days=1)) == 0
    assert receiver.requests == []


def test_redeliver_sends_again_with_a_fresh_schedule(tenant, receiver, hook):
    receiver.script(400, 200)
    event = emit(tenant)
    delivery = only_delivery(event)
    delivery_attempt_run(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED

    t1 = timezone.now()
    assert delivery_redeliver(delivery=delivery, now=t1) is True
    delivery.refresh_from_db()
    assert (delivery.status, delivery.next_attempt_at, delivery.cycle_attempts) == ("pending", t1, 0)
    assert deliveries_process_due(now=t1) == 1
    one, two = receiver.wait_for(2)
    assert two.headers["webhook-id"] == event.pk and two.headers["webhook-attempt"] == "2"
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SUCCEEDED


def test_redeliver_refuses_a_disabled_endpoint(tenant, receiver, hook):
    receiver.script(410)
    event = emit(tenant)
    delivery_attempt_run(delivery_id=only_delivery(event).pk)
    assert delivery_redeliver(delivery=only_delivery(event)) is False
    assert only_delivery(event).status == Delivery.Status.FAILED


@override_settings(WEBHOOK_LEASE_SECONDS=60)
def test_a_worker_that_outlived_its_lease_does_not_overwrite_the_takeover(tenant, receiver, hook):
    from tenants.webhooks.services import delivery_attempt_send

    receiver.script(200, 500)
    event = emit(tenant)
    delivery = only_delivery(event)
    t0 = timezone.now()
    slow = delivery_claim(now=t0)  # worker A claims, then stalls past its lease
    taken_over = delivery_attempt_run(now=t0 + timedelta(seconds=60))  # worker B takes over: 200
    assert taken_over.status == Delivery.Status.SUCCEEDED and taken_over.attempt == 2

    late = delivery_attempt_send(claim=slow, now=t0 + timedelta(seconds=61))  # A finally sends: 500
    assert late.status_code == 500
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SUCCEEDED and delivery.next_attempt_at is None
    rows = list(delivery.attempt_rows.order_by("id").values_list("number", "outcome", "status_code"))
    assert rows == [(1, "lost", None), (2, "succeeded", 200), (1, "retry", 500)]
    assert "lease expired" in delivery.attempt_rows.order_by("id").last().error
    assert deliveries_process_due(now=t0 + timedelta(hours=1)) == 0
