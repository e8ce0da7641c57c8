"""Attempting a claimed delivery: POST it, decide what the answer means, record the attempt."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tenants.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint
from tenants.webhooks.client import ErrorKind, Post, SendResult, elapsed_ms, webhook_post_many
from tenants.webhooks.services.claims import Claim, claims_release, delivery_claim
from tenants.webhooks.services.endpoints import webhook_endpoint_disable, webhook_endpoint_secrets
from tenants.webhooks.services.fanout import event_body_serialize
from tenants.webhooks.signing import headers_build

logger = logging.getLogger(__name__)

# Waits after the 1st, 2nd, … failed attempt; after the last one the delivery has failed.
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
MAX_RETRY_AFTER = timedelta(hours=24)  # a receiver's Retry-After is honoured up to this
# An attempt of a batch starts only while it can end (one timeout) this long before its claim's
# lease runs out, leaving time to record it; a later one is given back unsent. With one URL at
# WEBHOOK_CONCURRENCY_PER_URL at a time, a batch of slow answers can take several timeouts.
LEASE_MARGIN_SECONDS = 5.0


def _start_by(claim: Claim, *, timeout: float) -> float | None:
    """The latest time.monotonic() at which the claim's attempt may start: it then ends, at the
    latest, LEASE_MARGIN_SECONDS before the lease does. None (no limit) with a lease the system
    check refuses (tenants.E002), where no start could end inside it."""
    latest = settings.WEBHOOK_LEASE_SECONDS - timeout - LEASE_MARGIN_SECONDS
    return claim.claimed_monotonic + latest if latest > 0 else None


def batch_size() -> int:
    """Deliveries one worker claims at once and sends concurrently (WEBHOOK_BATCH_SIZE)."""
    return max(1, int(settings.WEBHOOK_BATCH_SIZE))


@dataclass(frozen=True)
class Decision:
    outcome: str  # DeliveryAttempt.Outcome
    status: str  # Delivery.Status after the attempt
    error: str = ""
    next_attempt_at: datetime | None = None
    disable_reason: str = ""


@dataclass(frozen=True)
class AttemptReport:
    delivery_id: int
    attempt: int
    status: str
    status_code: int | None
    next_attempt_at: datetime | None
    error: str


def _retry_or_fail(*, error: str, cycle_attempt: int, retry_after: float | None, now: datetime) -> Decision:
    if cycle_attempt >= MAX_ATTEMPTS:
        return Decision(
            DeliveryAttempt.Outcome.FAILED, Delivery.Status.FAILED, f"{error} Gave up after {MAX_ATTEMPTS} attempts."
        )
    delay = RETRY_DELAYS[cycle_attempt - 1]
    if retry_after is not None:
        delay = max(delay, min(timedelta(seconds=retry_after), MAX_RETRY_AFTER))
    return Decision(DeliveryAttempt.Outcome.RETRY, Delivery.Status.PENDING, error, next_attempt_at=now + delay)


def attempt_decide(*, result: SendResult, cycle_attempt: int, now: datetime) -> Decision:
    """What an attempt's result means (webhooks.md): 2xx done; 410 failed and the endpoint
    disabled; 429 and 5xx retried (honouring Retry-After), other 4xx and 3xx failed; network
    errors, timeouts and addresses that are not allowed right now retried; a URL that can never
    be allowed failed."""
    code = result.status_code
    if code is not None:
        if 200 <= code < 300:
            return Decision(DeliveryAttempt.Outcome.SUCCEEDED, Delivery.Status.SUCCEEDED)
        if code == 410:
            return Decision(
                DeliveryAttempt.Outcome.FAILED,
                Delivery.Status.FAILED,
                "HTTP 410 Gone: the endpoint was disabled.",
                disable_reason="The receiver answered 410 Gone.",
            )
        if code == 429 or code >= 500:
            return _retry_or_fail(
                error=f"HTTP {code}.", cycle_attempt=cycle_attempt, retry_after=result.retry_after_seconds, now=now
            )
        if 300 <= code < 400:
            return Decision(DeliveryAttempt.Outcome.FAILED, Delivery.Status.FAILED, f"HTTP {code}: redirects are not followed.")
        return Decision(DeliveryAttempt.Outcome.FAILED, Delivery.Status.FAILED, f"HTTP {code}.")
    if result.error_kind == ErrorKind.UNSAFE_URL:
        return Decision(DeliveryAttempt.Outcome.FAILED, Delivery.Status.FAILED, result.error)
    return _retry_or_fail(error=result.error, cycle_attempt=cycle_attempt, retry_after=None, now=now)


@dataclass(frozen=True)
class _Outcome:
    claim: Claim
    url: str
    decision: Decision
    result: SendResult | None


def _unexpected(exc: Exception, *, started: float) -> SendResult:
    """Whatever went wrong is this attempt's error, retried on the schedule; raised, it would stop
    the batch and leave its deliveries "sending" until their leases ran out."""
    return SendResult(
        status_code=None,
        duration_ms=elapsed_ms(started),
        error=f"Unexpected error while sending: {type(exc).__name__}: {exc}"[:1000],
        error_kind=ErrorKind.INTERNAL,
    )


def _finish(*, outcomes: list[_Outcome], now: datetime) -> list[AttemptReport]:
    """Record the attempts and move each delivery on — only where its claim still holds (a worker
    that outlived its lease records its attempt, nothing more). One transaction for the batch:
    the held rows are locked in primary-key order, deliveries with the same outcome are updated
    together and the attempts inserted in bulk."""
    if not outcomes:
        return []
    with transaction.atomic():
        current = {
            pk: (token, status)
            for pk, token, status in Delivery.objects.select_for_update()
            .filter(pk__in=[o.claim.delivery_id for o in outcomes])
            .order_by("pk")
            .values_list("pk", "claim_token", "status")
        }
        held = {
            o.claim.delivery_id
            for o in outcomes
            if current.get(o.claim.delivery_id) == (o.claim.token, Delivery.Status.SENDING)
        }
        groups: dict[tuple, list[int]] = {}
        for o in outcomes:
            if o.claim.delivery_id in held:
                key = (o.decision.status, o.decision.next_attempt_at, o.result.status_code if o.result else None, o.decision.error)
                groups.setdefault(key, []).append(o.claim.delivery_id)
        for (status, next_attempt_at, status_code, error), ids in groups.items():
            Delivery.objects.filter(pk__in=ids).update(
                status=status,
                next_attempt_at=next_attempt_at,
                lease_expires_at=None,
                claim_token="",
                last_status_code=status_code,
                last_error=error,
                completed_at=now if status in (Delivery.Status.SUCCEEDED, Delivery.Status.FAILED) else None,
                updated_at=timezone.now(),
            )
        attempts = []
        for o in outcomes:
            # Not when nothing was sent, nor for a delivery whose organization was deleted meanwhile.
            if o.result is None or o.claim.delivery_id not in current:
                continue
            error = o.decision.error
            if o.claim.delivery_id not in held:
                error = (error + " " if error else "") + "(Finished after the lease expired; another worker took over.)"
            attempts.append(
                DeliveryAttempt(
                    delivery_id=o.claim.delivery_id,
                    number=o.claim.attempt,
                    url=o.url,
                    started_at=now,
                    duration_ms=o.result.duration_ms,
                    status_code=o.result.status_code,
                    response_excerpt=o.result.response_excerpt,
                    error=error,
                    outcome=o.decision.outcome,
                )
            )
        DeliveryAttempt.objects.bulk_create(attempts)
        for o in outcomes:
            if o.decision.disable_reason:
                endpoint = WebhookEndpoint.objects.filter(deliveries__pk=o.claim.delivery_id).first()
                if endpoint is not None:
                    webhook_endpoint_disable(endpoint=endpoint, reason=o.decision.disable_reason, now=now)
    return [
        AttemptReport(
            delivery_id=o.claim.delivery_id,
            attempt=o.claim.attempt,
            status=o.decision.status,
            status_code=o.result.status_code if o.result else None,
            next_attempt_at=o.decision.next_attempt_at,
            error=o.decision.error,
        )
        for o in outcomes
    ]


def delivery_attempt_run(*, delivery_id: int | None = None, now: datetime | None = None) -> AttemptReport | None:
    """Claim a due delivery (the given one, or the most overdue) and make one attempt.
    None when nothing was due (or another worker got it first)."""
    now = now or timezone.now()
    claim = delivery_claim(now=now, delivery_id=delivery_id)
    if claim is None:
        return None
    return delivery_attempt_send(claim=claim, now=now)


def delivery_attempt_send(*, claim: Claim, now: datetime | None = None) -> AttemptReport | None:
    """Make the attempt a claim is for and record it (None: the delivery is gone)."""
    reports = deliveries_attempt_send(claims=[claim], now=now)
    return reports[0] if reports else None


def _batch_load(delivery_ids: list[int]) -> dict[int, tuple[WebhookEndpoint, str, str, dict | None]]:
    """What sending a batch needs, per delivery: its endpoint (one instance per endpoint), the
    event id, the exact body, and the payload only for an event stored without its body. Plain
    rows rather than a model per delivery and event."""
    rows = list(Delivery.objects.filter(pk__in=delivery_ids).values_list("pk", "endpoint_id", "event_id", "event__body"))
    endpoints = WebhookEndpoint.objects.in_bulk({row[1] for row in rows})
    unserialized = {event_id for _pk, _endpoint, event_id, body in rows if not body}
    payloads = dict(Event.objects.filter(pk__in=unserialized).values_list("pk", "payload")) if unserialized else {}
    return {
        pk: (endpoints[endpoint_id], event_id, body, payloads.get(event_id))
        for pk, endpoint_id, event_id, body in rows
    }


@dataclass(frozen=True)
class PreparedBatch:
    """Claims ready to send: what is already decided without a request, and the signed requests."""

    now: datetime
    outcomes: list[_Outcome]
    posts: list[tuple[Claim, str, Post]]
    timeout: float
    allow_private: bool
    allowed_networks: tuple[str, ...]
    per_url: int


def batch_prepare(*, claims: list[Claim], now: datetime | None = None) -> PreparedBatch:
    """Read what the claims need and sign their requests (database work, this thread's)."""
    now = now or timezone.now()
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    deliveries = _batch_load([claim.delivery_id for claim in claims])
    outcomes: list[_Outcome] = []
    posts: list[tuple[Claim, str, Post]] = []
    secrets: dict = {}  # endpoint id -> its signing secrets, decrypted once per batch
    for claim in claims:
        delivery = deliveries.get(claim.delivery_id)
        if delivery is None:  # its organization was deleted meanwhile
            continue
        endpoint, event_id, body_text, payload = delivery
        if not endpoint.is_deliverable:
            decision = Decision(DeliveryAttempt.Outcome.FAILED, Delivery.Status.FAILED, f"Endpoint {endpoint.status}.")
            outcomes.append(_Outcome(claim, endpoint.url, decision, None))
            continue
        if claim.cycle_attempt > MAX_ATTEMPTS:  # the last allowed attempt was lost with its worker
            decision = Decision(
                DeliveryAttempt.Outcome.FAILED, Delivery.Status.FAILED, f"Gave up after {MAX_ATTEMPTS} attempts."
            )
            outcomes.append(_Outcome(claim, endpoint.url, decision, None))
            continue
        started = time.monotonic()
        try:
            if endpoint.pk not in secrets:
                secrets[endpoint.pk] = webhook_endpoint_secrets(endpoint=endpoint, now=now)
            body = (body_text or event_body_serialize(payload)).encode("utf-8")
            headers = headers_build(
                event_id=event_id, body=body, secrets=secrets[endpoint.pk], attempt=claim.attempt, timestamp=timezone.now()
            )
        except Exception as exc:  # noqa: BLE001 - one attempt's failure, not the batch's
            logger.exception("webhook delivery %s: attempt %s failed unexpectedly", claim.delivery_id, claim.attempt)
            result = _unexpected(exc, started=started)
            outcomes.append(_Outcome(claim, endpoint.url, attempt_decide(result=result, cycle_attempt=claim.cycle_attempt, now=now), result))
            continue
        posts.append((claim, endpoint.url, Post(url=endpoint.url, body=body, headers=headers, start_by=_start_by(claim, timeout=timeout))))
    return PreparedBatch(
        now=now,
        outcomes=outcomes,
        posts=posts,
        timeout=timeout,
        allow_private=settings.WEBHOOK_ALLOW_PRIVATE_URLS,
        allowed_networks=tuple(settings.OUTBOUND_ALLOWED_NETWORKS),
        per_url=max(1, int(settings.WEBHOOK_CONCURRENCY_PER_URL)),
    )


def batch_send(batch: PreparedBatch) -> list[SendResult | None]:
    """POST the batch's requests concurrently. No database: any thread may run it."""
    return webhook_post_many(
        [post for _claim, _url, post in batch.posts],
        timeout=batch.timeout,
        allow_private=batch.allow_private,
        allowed_networks=batch.allowed_networks,
        concurrency=max(1, len(batch.posts)),
        per_url=batch.per_url,
    )


def batch_complete(batch: PreparedBatch, results: list[SendResult | None]) -> list[AttemptReport]:
    """Record the batch's attempts (``batch_send``'s results, in order) and give back the claims
    whose attempt was not made (database work, this thread's)."""
    now = batch.now
    outcomes = list(batch.outcomes)
    unsent = []
    for (claim, url, _post), result in zip(batch.posts, results, strict=True):
        if result is None:  # its turn came too late in the lease: nothing was sent
            unsent.append(claim)
            continue
        if result.error_kind == ErrorKind.INTERNAL:
            logger.error("webhook delivery %s: attempt %s failed unexpectedly: %s", claim.delivery_id, claim.attempt, result.error)
        outcomes.append(_Outcome(claim, url, attempt_decide(result=result, cycle_attempt=claim.cycle_attempt, now=now), result))
    if unsent:
        released = claims_release(claims=unsent, now=timezone.now())
        logger.warning("webhook deliveries: %s of a batch not sent within their lease, given back (%s)", len(unsent), released)
    return _finish(outcomes=outcomes, now=now)


def deliveries_attempt_send(*, claims: list[Claim], now: datetime | None = None) -> list[AttemptReport]:
    """Make the attempts the claims are for, concurrently (at most WEBHOOK_CONCURRENCY_PER_URL at
    a time to any one URL), each within its own timeout, and record them in one transaction (a
    delivery deleted meanwhile, with its organization, gets no report). An attempt that could
    not start while its claim's lease still covered it is not made: the claim is given back and
    the delivery is due again, with no attempt counted or recorded."""
    batch = batch_prepare(claims=claims, now=now)
    return batch_complete(batch, batch_send(batch))
