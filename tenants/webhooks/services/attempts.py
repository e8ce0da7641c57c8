"""Attempting a claimed delivery: POST it, decide what the answer means, record the attempt."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tenants.models import Delivery, DeliveryAttempt, WebhookEndpoint
from tenants.webhooks.client import ErrorKind, SendResult, elapsed_ms, webhook_post
from tenants.webhooks.services.claims import Claim, delivery_claim
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


def _finish(*, claim: Claim, decision: Decision, url: str, now: datetime, result: SendResult | None) -> AttemptReport:
    final = decision.status in (Delivery.Status.SUCCEEDED, Delivery.Status.FAILED)
    with transaction.atomic():
        held = Delivery.objects.filter(pk=claim.delivery_id, claim_token=claim.token, status=Delivery.Status.SENDING).update(
            status=decision.status,
            next_attempt_at=decision.next_attempt_at,
            lease_expires_at=None,
            claim_token="",
            last_status_code=result.status_code if result else None,
            last_error=decision.error,
            completed_at=now if final else None,
            updated_at=timezone.now(),
        )
        if result is not None and Delivery.objects.filter(pk=claim.delivery_id).exists():
            error = decision.error
            if not held:
                error = (error + " " if error else "") + "(Finished after the lease expired; another worker took over.)"
            DeliveryAttempt.objects.create(
                delivery_id=claim.delivery_id,
                number=claim.attempt,
                url=url,
                started_at=now,
                duration_ms=result.duration_ms,
                status_code=result.status_code,
                response_excerpt=result.response_excerpt,
                error=error,
                outcome=decision.outcome,
            )
        if decision.disable_reason:
            endpoint = WebhookEndpoint.objects.filter(deliveries__pk=claim.delivery_id).first()
            if endpoint is not None:
                webhook_endpoint_disable(endpoint=endpoint, reason=decision.disable_reason, now=now)
    return AttemptReport(
        delivery_id=claim.delivery_id,
        attempt=claim.attempt,
        status=decision.status,
        status_code=result.status_code if result else None,
        next_attempt_at=decision.next_attempt_at,
        error=decision.error,
    )


def delivery_attempt_run(*, delivery_id: int | None = None, now: datetime | None = None) -> AttemptReport | None:
    """Claim a due delivery (the given one, or the most overdue) and make one attempt.
    None when nothing was due (or another worker got it first)."""
    now = now or timezone.now()
    claim = delivery_claim(now=now, delivery_id=delivery_id)
    if claim is None:
        return None
    return delivery_attempt_send(claim=claim, now=now)


def delivery_attempt_send(*, claim: Claim, now: datetime | None = None) -> AttemptReport | None:
    """Make the attempt a claim is for and record it. The outcome changes the delivery only if
    the claim still holds (a worker that outlived its lease records its attempt, nothing more)."""
    now = now or timezone.now()
    delivery = Delivery.objects.select_related("event", "endpoint").filter(pk=claim.delivery_id).first()
    if delivery is None:  # its organization was deleted meanwhile
        return None
    endpoint = delivery.endpoint
    if not endpoint.is_deliverable:
        decision = Decision(DeliveryAttempt.Outcome.FAILED, Delivery.Status.FAILED, f"Endpoint {endpoint.status}.")
        return _finish(claim=claim, decision=decision, url=endpoint.url, now=now, result=None)
    if claim.cycle_attempt > MAX_ATTEMPTS:  # the last allowed attempt was lost with its worker
        decision = Decision(
            DeliveryAttempt.Outcome.FAILED, Delivery.Status.FAILED, f"Gave up after {MAX_ATTEMPTS} attempts."
        )
        return _finish(claim=claim, decision=decision, url=endpoint.url, now=now, result=None)

    event = delivery.event
    started = time.monotonic()
    try:
        body = (event.body or event_body_serialize(event.payload)).encode("utf-8")
        headers = headers_build(
            event_id=event.pk,
            body=body,
            secrets=webhook_endpoint_secrets(endpoint=endpoint, now=now),
            attempt=claim.attempt,
            timestamp=timezone.now(),
        )
        result = webhook_post(
            url=endpoint.url,
            body=body,
            headers=headers,
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            allow_private=settings.WEBHOOK_ALLOW_PRIVATE_URLS,
        )
    except Exception as exc:  # noqa: BLE001 - one attempt's failure, not the batch's
        # Whatever went wrong is this attempt's error, retried on the schedule; raised, it would
        # stop the sweep's batch and leave the delivery "sending" until its lease ran out.
        logger.exception("webhook delivery %s: attempt %s failed unexpectedly", claim.delivery_id, claim.attempt)
        result = SendResult(
            status_code=None,
            duration_ms=elapsed_ms(started),
            error=f"Unexpected error while sending: {type(exc).__name__}: {exc}"[:1000],
            error_kind=ErrorKind.INTERNAL,
        )
    decision = attempt_decide(result=result, cycle_attempt=claim.cycle_attempt, now=now)
    return _finish(claim=claim, decision=decision, url=endpoint.url, now=now, result=result)


