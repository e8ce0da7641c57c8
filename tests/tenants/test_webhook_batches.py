"""A worker's batch: deliveries claimed together, sent concurrently, recorded together.

Each attempt of a batch is its own: recorded as one row, decided on its own answer (a failure does
not touch the others), retried on the schedule of ``webhooks.md``; a claim whose lease ran out
while the batch was under way is handled as a single claim's would be; an attempt whose turn would
come too late in its lease is given back unsent.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from tenants.events import event_emit
from tenants.models import Delivery, DeliveryAttempt, Event
from tenants.services import organization_create
from tenants.webhooks.services import (
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    deliveries_attempt_send,
    deliveries_claim,
    deliveries_process_due,
    delivery_attempt_run,
    webhook_endpoint_create,
)
from tests.tenants.receiver import Reply


def _emit(organization, n: int) -> list:
    return [event_emit(organization=organization, type="appointment.created", data={"n": i}) for i in range(n)]


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@override_settings(WEBHOOK_TIMEOUT_SECONDS=4.0, WEBHOOK_BATCH_SIZE=6, WEBHOOK_CONCURRENCY_PER_URL=6)
def test_a_batch_is_in_flight_at_once_and_each_attempt_is_recorded(tenant, receiver):
    webhook_endpoint_create(organization=tenant.organization, url=receiver.url())
    events = _emit(tenant.organization, 6)
    # Every request is held until all six have arrived: sent one after another, the first would
    # time out waiting for the others, and no attempt would succeed.
    receiver.default = Reply(200, hold=True)
    releaser = threading.Thread(target=lambda: (receiver.wait_for(6, timeout=10), receiver.release()), daemon=True)
    releaser.start()

    assert deliveries_process_due(limit=6) == 6
    releaser.join(timeout=10)

    assert sorted(r.headers["webhook-id"] for r in receiver.requests) == sorted(e.pk for e in events)
    deliveries = Delivery.objects.filter(event__in=events)
    assert set(deliveries.values_list("status", "attempts", "claim_token")) == {(Delivery.Status.SUCCEEDED, 1, "")}
    rows = DeliveryAttempt.objects.filter(delivery__in=deliveries)
    assert sorted(rows.values_list("delivery__event_id", "number", "outcome", "status_code")) == sorted(
        (e.pk, 1, "succeeded", 200) for e in events
    )


def test_one_failing_send_of_a_batch_does_not_lose_the_others(tenant, receiver):
    receiver.routes.update({"/down": Reply(500), "/gone": Reply(410), "/refused": Reply(404)})
    ok = webhook_endpoint_create(organization=tenant.organization, url=receiver.url("/ok")).endpoint
    down = webhook_endpoint_create(organization=tenant.organization, url=receiver.url("/down")).endpoint
    gone = webhook_endpoint_create(organization=tenant.organization, url=receiver.url("/gone")).endpoint
    not_found = webhook_endpoint_create(organization=tenant.organization, url=receiver.url("/refused")).endpoint
    nobody = webhook_endpoint_create(
        organization=tenant.organization, url=f"http://127.0.0.1:{_unused_port()}/hook"
    ).endpoint
    [event] = _emit(tenant.organization, 1)
    t0 = timezone.now()

    assert deliveries_process_due(now=t0) == 5  # one batch: every endpoint's delivery

    def state(endpoint):
        delivery = Delivery.objects.get(event=event, endpoint=endpoint)
        [row] = delivery.attempt_rows.all()
        return delivery.status, delivery.next_attempt_at, row.outcome, row.status_code

    assert state(ok) == (Delivery.Status.SUCCEEDED, None, "succeeded", 200)
    assert state(down) == (Delivery.Status.PENDING, t0 + RETRY_DELAYS[0], "retry", 500)
    assert state(gone) == (Delivery.Status.FAILED, None, "failed", 410)
    assert state(not_found) == (Delivery.Status.FAILED, None, "failed", 404)
    assert state(nobody) == (Delivery.Status.PENDING, t0 + RETRY_DELAYS[0], "retry", None)
    assert "Connect" in DeliveryAttempt.objects.get(delivery__endpoint=nobody).error
    gone.refresh_from_db()
    assert not gone.is_active  # 410: the endpoint is disabled
    assert len(receiver.requests) == 4


def test_a_batch_of_failing_deliveries_follows_the_retry_schedule_then_fails(tenant, receiver):
    receiver.routes["/down"] = Reply(503)
    receiver.routes["/busy"] = Reply(429, headers={"Retry-After": "3600"})
    down = webhook_endpoint_create(organization=tenant.organization, url=receiver.url("/down")).endpoint
    busy = webhook_endpoint_create(organization=tenant.organization, url=receiver.url("/busy")).endpoint
    events = _emit(tenant.organization, 3)
    now = timezone.now()
    for n in range(1, MAX_ATTEMPTS + 1):
        due = Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now).count()
        assert deliveries_process_due(now=now) == due  # every delivery due now, in one go
        for delivery in Delivery.objects.filter(endpoint=down):
            assert delivery.attempts == n
            if n < MAX_ATTEMPTS:
                assert (delivery.status, delivery.next_attempt_at) == (Delivery.Status.PENDING, now + RETRY_DELAYS[n - 1])
            else:
                assert delivery.status == Delivery.Status.FAILED and "Gave up after 8 attempts" in delivery.last_error
        if n == 1:  # Retry-After is honoured where it asks for longer than the schedule: an hour, not 5 s
            assert set(Delivery.objects.filter(endpoint=busy).values_list("status", "next_attempt_at")) == {
                (Delivery.Status.PENDING, now + timedelta(hours=1))
            }
        now += RETRY_DELAYS[n - 1] if n < MAX_ATTEMPTS else timedelta(0)

    first_busy = DeliveryAttempt.objects.filter(delivery__endpoint=busy, number=1)
    assert first_busy.count() == 3 and set(first_busy.values_list("outcome", "status_code")) == {("retry", 429)}
    down_rows = DeliveryAttempt.objects.filter(delivery__endpoint=down)
    assert sorted(down_rows.values_list("number", flat=True)) == sorted(list(range(1, MAX_ATTEMPTS + 1)) * len(events))
    assert set(down_rows.values_list("status_code", flat=True)) == {503}


@override_settings(WEBHOOK_LEASE_SECONDS=60)
def test_a_claim_of_a_batch_taken_over_after_its_lease_keeps_the_takeovers_outcome(tenant, receiver):
    webhook_endpoint_create(organization=tenant.organization, url=receiver.url())
    slow, other = _emit(tenant.organization, 2)
    t0 = timezone.now()
    batch = deliveries_claim(now=t0, limit=10)  # worker A claims both, then stalls past the lease
    assert len(batch) == 2
    slow_delivery = Delivery.objects.get(event=slow)
    taken_over = delivery_attempt_run(delivery_id=slow_delivery.pk, now=t0 + timedelta(seconds=60))  # worker B
    assert taken_over.status == Delivery.Status.SUCCEEDED and taken_over.attempt == 2

    receiver.script(500, 500)  # whatever A's late attempts get
    reports = deliveries_attempt_send(claims=batch, now=t0 + timedelta(seconds=61))

    assert len(reports) == 2 and len(receiver.requests) == 3
    slow_delivery.refresh_from_db()
    assert slow_delivery.status == Delivery.Status.SUCCEEDED  # B's outcome stands
    rows = list(slow_delivery.attempt_rows.order_by("id").values_list("number", "outcome", "status_code"))
    assert rows == [(1, "lost", None), (2, "succeeded", 200), (1, "retry", 500)]
    assert "lease expired" in slow_delivery.attempt_rows.order_by("id").last().error
    # The batch's other claim still held: A's answer moves it on as usual.
    other_delivery = Delivery.objects.get(event=other)
    assert (other_delivery.status, other_delivery.next_attempt_at) == (
        Delivery.Status.PENDING,
        t0 + timedelta(seconds=61) + RETRY_DELAYS[0],
    )
    assert list(other_delivery.attempt_rows.values_list("number", "outcome")) == [(1, "retry")]


@override_settings(WEBHOOK_TIMEOUT_SECONDS=4.0, WEBHOOK_LEASE_SECONDS=60, WEBHOOK_CONCURRENCY_PER_URL=1)
def test_an_attempt_whose_turn_comes_too_late_in_the_lease_is_given_back_unsent(tenant, receiver):
    webhook_endpoint_create(organization=tenant.organization, url=receiver.url())
    events = _emit(tenant.organization, 3)
    receiver.default = Reply(200, hold=True)  # the first attempt runs into its 4 s timeout
    t0 = timezone.now()
    claims = deliveries_claim(now=t0, limit=3)
    assert len(claims) == 3
    # As if most of the lease had passed: an attempt may start during the next 2 seconds only
    # (the lease less the timeout less the 5 s margin). One at a time to the URL, so the first
    # holds the others back until its timeout, past that point.
    latest = settings.WEBHOOK_LEASE_SECONDS - settings.WEBHOOK_TIMEOUT_SECONDS - 5
    claimed = time.monotonic() + 2 - latest
    claims = [dataclasses.replace(claim, claimed_monotonic=claimed) for claim in claims]

    reports = deliveries_attempt_send(claims=claims, now=t0)
    receiver.release()

    assert len(reports) == 1 and len(receiver.requests) == 1
    [sent] = reports
    assert sent.status == Delivery.Status.PENDING and sent.error.startswith("Timed out")
    given_back = Delivery.objects.filter(event__in=events).exclude(pk=sent.delivery_id)
    assert set(given_back.values_list("status", "attempts", "cycle_attempts", "claim_token", "lease_expires_at")) == {
        (Delivery.Status.PENDING, 0, 0, "", None)
    }
    assert not DeliveryAttempt.objects.filter(delivery__in=given_back).exists()  # nothing was sent
    assert all(d.next_attempt_at <= timezone.now() for d in given_back)  # due again at once

    receiver.default = Reply(200)
    assert deliveries_process_due() == 2
    again = [r for r in receiver.requests[1:]]
    assert sorted(r.headers["webhook-id"] for r in again) == sorted(given_back.values_list("event_id", flat=True))
    assert {r.headers["webhook-attempt"] for r in again} == {"1"}  # the given-back attempt was never counted


@override_settings(WEBHOOK_LEASE_SECONDS=60)
def test_batch_claims_never_overlap_and_a_takeover_records_each_lost_attempt(tenant, receiver):
    other = organization_create(name="Other Clinic")
    mine = webhook_endpoint_create(organization=tenant.organization, url=receiver.url("/mine")).endpoint
    theirs = webhook_endpoint_create(organization=other, url=receiver.url("/theirs")).endpoint
    _emit(tenant.organization, 3)
    _emit(other, 2)
    t0 = timezone.now()

    first = deliveries_claim(now=t0, limit=3)
    second = deliveries_claim(now=t0, limit=10)
    assert len(first) == 3 and len(second) == 2
    assert not {c.delivery_id for c in first} & {c.delivery_id for c in second}
    assert deliveries_claim(now=t0, limit=10) == []
    assert len({c.token for c in first}) == 1 and {c.attempt for c in first + second} == {1}

    assert deliveries_claim(now=t0 + timedelta(seconds=59), limit=10, stalled_only=True) == []  # still leased
    taken = deliveries_claim(now=t0 + timedelta(seconds=60), limit=10, stalled_only=True)
    assert sorted(c.delivery_id for c in taken) == sorted(c.delivery_id for c in first + second)
    assert {c.attempt for c in taken} == {2}
    lost = DeliveryAttempt.objects.filter(outcome=DeliveryAttempt.Outcome.LOST)
    assert sorted(lost.values_list("delivery__endpoint_id", "number", "url")) == sorted(
        [(mine.pk, 1, mine.url)] * 3 + [(theirs.pk, 1, theirs.url)] * 2
    )
    assert receiver.requests == []


@override_settings(WEBHOOK_TIMEOUT_SECONDS=4.0, WEBHOOK_LEASE_SECONDS=60)
def test_a_claims_lease_is_counted_from_its_now_however_long_the_claim_waited(tenant, receiver):
    """The claim's ``now`` starts its lease: a claim that took most of the lease to be made (a
    worker waiting for a lock) has its attempts given back, not started after the lease ran out."""
    webhook_endpoint_create(organization=tenant.organization, url=receiver.url())
    events = _emit(tenant.organization, 2)
    receiver.default = Reply(200)
    now = timezone.now() - timedelta(seconds=55)  # past its last start: lease 60 - timeout 4 - margin 5
    Delivery.objects.filter(event__in=events).update(next_attempt_at=now)  # due at that moment

    claims = deliveries_claim(now=now, limit=2)
    assert len(claims) == 2
    assert deliveries_attempt_send(claims=claims, now=now) == []
    assert receiver.requests == []
    assert set(Delivery.objects.filter(event__in=events).values_list("status", "attempts", "claim_token")) == {
        (Delivery.Status.PENDING, 0, "")
    }


@override_settings(WEBHOOK_LEASE_SECONDS=60)
def test_a_batch_larger_than_sqlites_expression_depth_is_claimed_whole(tenant):
    endpoint = webhook_endpoint_create(organization=tenant.organization, url="https://hooks.example.com/h").endpoint
    [event] = _emit(tenant.organization, 1)
    events = Event.objects.bulk_create(
        [Event(organization=tenant.organization, type=event.type, payload=event.payload, body=event.body) for _ in range(1099)]
    )
    Delivery.objects.bulk_create(
        [
            Delivery(organization=tenant.organization, event=other, endpoint=endpoint, next_attempt_at=timezone.now())
            for other in events
        ]
    )
    assert Delivery.objects.filter(endpoint=endpoint).count() == 1100

    claims = deliveries_claim(now=timezone.now(), limit=1100)

    assert len(claims) == len({c.delivery_id for c in claims}) == 1100
    assert Delivery.objects.filter(endpoint=endpoint, status=Delivery.Status.SENDING, attempts=1).count() == 1100


def test_an_endpoint_path_with_non_ascii_characters_is_sent_percent_encoded(tenant, receiver):
    webhook_endpoint_create(organization=tenant.organization, url=receiver.url("/hook/caf\u00e9"))
    [event] = _emit(tenant.organization, 1)
    receiver.default = Reply(200)

    assert deliveries_process_due() == 1

    assert [r.path for r in receiver.requests] == ["/hook/caf%C3%A9"]
    assert Delivery.objects.get(event=event).status == Delivery.Status.SUCCEEDED

