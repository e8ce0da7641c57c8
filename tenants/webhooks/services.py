"""Webhook endpoints, and the delivery state machine every worker shares.

A delivery is one row per (event, endpoint); every attempt is a ``DeliveryAttempt`` row. Workers
never trust memory: they *claim* a due delivery in the database (a conditional UPDATE, after
``SELECT … FOR UPDATE SKIP LOCKED`` where the database has it), POST it, and record the outcome
only if they still hold the claim. A claim is a lease: a worker that dies mid-attempt leaves the
row ``sending`` until the lease expires, then any worker takes it over (recording the lost
attempt). The first attempt is enqueued right after the event's transaction commits; a periodic
django-q2 schedule (``tasks.deliveries_sweep``) picks up everything else that is due.

Every function that makes a decision in time takes ``now`` (default: the current time), so tests
drive the retry schedule instead of sleeping. The ``webhook-timestamp`` header is always the real
send time, since receivers check it against their clock.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from tenants.crypto import decrypt_text, encrypt_text
from tenants.models import Delivery, DeliveryAttempt, Event, Organization, WebhookEndpoint
from tenants.webhooks.client import ErrorKind, SendResult, elapsed_ms, webhook_post
from tenants.webhooks.selectors import delivery_retry_at
from tenants.webhooks.signing import headers_build, secret_generate
from tenants.webhooks.url_safety import UnsafeUrl, url_check

logger = logging.getLogger(__name__)

EVENT_TYPES = (
    "appointment.live_fetch_completed",
    "availability.live_fetch_completed",
    "appointment.created",
    "appointment.updated",
    "appointment.cancelled",
    "access_token.login_required",
)
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
ROTATION_OVERLAP = timedelta(hours=24)
MAX_ENDPOINTS_PER_ORGANIZATION = 20
_CLAIM_CANDIDATES = 20

ATTEMPT_TASK = "tenants.webhooks.tasks.delivery_attempt_task"
DRAIN_TASK = "tenants.webhooks.tasks.deliveries_process_task"
# Deliveries committed together up to this many get a task each; more get draining tasks.
ENQUEUE_EACH_UP_TO = 20


class EndpointConflict(Exception):
    """The organization already has a live endpoint with this URL."""


@dataclass(frozen=True)
class IssuedEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once


# --- endpoints --------------------------------------------------------------------------------


def webhook_url_validate(*, url: str) -> str:
    """The URL, stripped, if we may POST to it; ``ValidationError({"url": …})`` otherwise."""
    if not isinstance(url, str):
        raise ValidationError({"url": "must be a string."})
    url = url.strip()
    try:
        url_check(url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE_URLS)
    except UnsafeUrl as exc:
        raise ValidationError({"url": exc.message}) from None
    return url


def webhook_event_types_validate(*, event_types: Iterable[str] | None) -> list[str]:
    if event_types is None:
        return []
    if isinstance(event_types, str) or not isinstance(event_types, (list, tuple)):
        raise ValidationError({"event_types": "must be a list of event types."})
    cleaned: list[str] = []
    for value in event_types:
        if value not in EVENT_TYPES:
            raise ValidationError({"event_types": f"unknown event type {str(value)[:64]!r}; known: {', '.join(EVENT_TYPES)}."})
        if value not in cleaned:
            cleaned.append(value)
    return cleaned


def _live_endpoints(organization_id) -> Q:
    return Q(organization_id=organization_id, deleted_at__isnull=True)


def webhook_endpoint_create(
    *, organization: Organization, url: str, event_types: Iterable[str] | None = None
) -> IssuedEndpoint:
    url = webhook_url_validate(url=url)
    types = webhook_event_types_validate(event_types=event_types)
    secret = secret_generate()
    with transaction.atomic():
        # One creation at a time per organization, so the limit and the duplicate check hold.
        Organization.objects.select_for_update().filter(pk=organization.pk).first()
        live = WebhookEndpoint.objects.filter(_live_endpoints(organization.pk))
        if live.filter(url=url).exists():
            raise EndpointConflict("A webhook with this URL is already registered.")
        if live.count() >= MAX_ENDPOINTS_PER_ORGANIZATION:
            raise ValidationError({"url": f"an organization can register at most {MAX_ENDPOINTS_PER_ORGANIZATION} webhooks."})
        endpoint = WebhookEndpoint.objects.create(
            organization=organization, url=url, event_types=types, secret_encrypted=encrypt_text(secret)
        )
    return IssuedEndpoint(endpoint=endpoint, secret=secret)


def webhook_endpoint_update(*, endpoint: WebhookEndpoint, url: str, event_types: Iterable[str] | None) -> WebhookEndpoint:
    url = webhook_url_validate(url=url)
    types = webhook_event_types_validate(event_types=event_types)
    if WebhookEndpoint.objects.filter(_live_endpoints(endpoint.organization_id), url=url).exclude(pk=endpoint.pk).exists():
        raise EndpointConflict("A webhook with this URL is already registered.")
    endpoint.url, endpoint.event_types = url, types
    endpoint.save(update_fields=["url", "event_types", "updated_at"])
    return endpoint


def webhook_endpoint_secrets(*, endpoint: WebhookEndpoint, now: datetime | None = None) -> list[str]:
    """The secrets that sign now: the current one, then the previous one while it is still valid."""
    now = now or timezone.now()
    valid = [decrypt_text(endpoint.secret_encrypted)]
    if endpoint.previous_secret_encrypted and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        valid.append(decrypt_text(endpoint.previous_secret_encrypted))
    return valid


def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint, now: datetime | None = None) -> IssuedEndpoint:
    """A new secret; the current one keeps signing beside it for ``ROTATION_OVERLAP``. Rotating
    again within that window retires the oldest secret at once (only two are ever valid)."""
    now = now or timezone.now()
    secret = secret_generate()
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.previous_secret_encrypted = locked.secret_encrypted
        locked.previous_secret_expires_at = now + ROTATION_OVERLAP
        locked.secret_encrypted = encrypt_text(secret)
        locked.save(update_fields=["previous_secret_encrypted", "previous_secret_expires_at", "secret_encrypted", "updated_at"])
    return IssuedEndpoint(endpoint=locked, secret=secret)


def _pending_deliveries_fail(*, endpoint_id, error: str, now: datetime) -> int:
    return Delivery.objects.filter(endpoint_id=endpoint_id, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.FAILED, last_error=error, next_attempt_at=None, completed_at=now, updated_at=timezone.now()
    )


def webhook_endpoint_disable(*, endpoint: WebhookEndpoint, reason: str, now: datetime | None = None) -> None:
    """Stop sending to the endpoint; its waiting deliveries fail (staff can redeliver later)."""
    now = now or timezone.now()
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
            is_active=False, disabled_reason=reason[:500], disabled_at=now, updated_at=timezone.now()
        )
        _pending_deliveries_fail(endpoint_id=endpoint.pk, error=f"Endpoint disabled: {reason}", now=now)
    endpoint.refresh_from_db()


def webhook_endpoint_enable(*, endpoint: WebhookEndpoint) -> None:
    WebhookEndpoint.objects.filter(pk=endpoint.pk, deleted_at__isnull=True).update(
        is_active=True, disabled_reason="", disabled_at=None, updated_at=timezone.now()
    )
    endpoint.refresh_from_db()


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, now: datetime | None = None) -> None:
    """Nothing more is sent to it; the endpoint and its delivery history stay for the admin."""
    now = now or timezone.now()
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk, deleted_at__isnull=True).update(
            deleted_at=now, is_active=False, previous_secret_encrypted="", updated_at=timezone.now()
        )
        _pending_deliveries_fail(endpoint_id=endpoint.pk, error="Endpoint deleted.", now=now)
    endpoint.refresh_from_db()


# --- fan-out ----------------------------------------------------------------------------------


def event_body_serialize(payload: dict) -> str:
    """The exact body sent (and signed): compact JSON, ASCII only, serialized once per event."""
    return json.dumps(payload, cls=DjangoJSONEncoder, ensure_ascii=True, separators=(",", ":"))


def deliveries_create_for_events(*, events: list[Event], batch_size: int = 500) -> list[int]:
    """One pending delivery per live endpoint of the events' organization that wants each event's
    type: the endpoints are read once and the deliveries inserted in bulk, whatever the number of
    events."""
    if not events:
        return []
    organization_ids = {event.organization_id for event in events}
    if len(organization_ids) != 1:
        raise ValueError("deliveries_create_for_events takes the events of one organization.")
    (organization_id,) = organization_ids
    endpoints = list(
        WebhookEndpoint.objects.filter(organization_id=organization_id, is_active=True, deleted_at__isnull=True)
    )
    if not endpoints:
        return []
    rows = Delivery.objects.bulk_create(
        [
            Delivery(
                organization_id=organization_id,
                event=event,
                endpoint=endpoint,
                status=Delivery.Status.PENDING,
                next_attempt_at=event.created_at,
            )
            for event in events
            for endpoint in endpoints
            if endpoint.accepts(event.type)
        ],
        batch_size=batch_size,
    )
    return [row.pk for row in rows]


def deliveries_enqueue(*, delivery_ids: Iterable[int]) -> None:
    """Ask the task queue for a prompt first attempt. A few deliveries get a task each; a large
    batch (a live fetch that changed thousands of appointments) gets one draining task per worker
    instead, which claim the due deliveries from the database as the sweep does, so enqueueing
    costs a few broker writes rather than one per delivery. Best effort: whatever is not enqueued
    (the broker is down, the process dies) is still due in the database and the sweep sends it."""
    from django_q.tasks import async_task

    delivery_ids = list(delivery_ids)
    if len(delivery_ids) <= ENQUEUE_EACH_UP_TO:
        tasks = [(ATTEMPT_TASK, (delivery_id,), f"webhook delivery {delivery_id}") for delivery_id in delivery_ids]
    else:
        workers = max(1, int(settings.Q_CLUSTER.get("workers", 1)))
        tasks = [(DRAIN_TASK, (), f"webhook deliveries: {len(delivery_ids)} due")] * workers
    for func, args, name in tasks:
        try:
            async_task(func, *args, group="webhooks", task_name=name)
        except Exception:  # noqa: BLE001 - the schedule is the safety net
            logger.warning("could not enqueue %s; the periodic sweep will send it", name, exc_info=True)


def deliveries_enqueue_on_commit(*, delivery_ids: list[int]) -> None:
    if delivery_ids:
        transaction.on_commit(partial(deliveries_enqueue, delivery_ids=list(delivery_ids)), robust=True)


# --- claiming ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    token: str
    attempt: int  # the webhook-attempt of this attempt
    cycle_attempt: int  # position in the retry schedule (1-based)


def _due(now: datetime) -> Q:
    return Q(status=Delivery.Status.PENDING, next_attempt_at__lte=now) | Q(
        status=Delivery.Status.SENDING, lease_expires_at__lte=now
    )


def deliveries_due_count(*, now: datetime | None = None) -> int:
    return Delivery.objects.filter(_due(now or timezone.now())).count()


_CLAIM_FIELDS = ("pk", "status", "attempts", "cycle_attempts", "last_attempt_at", "endpoint__url")


def _take(row: tuple, *, now: datetime) -> Claim | None:
    """Claim one candidate row if it is still in the state we saw (conditional UPDATE)."""
    pk, status, attempts, cycle_attempts, last_attempt_at, url = row
    token = uuid.uuid4().hex
    with transaction.atomic():
        taken = (
            Delivery.objects.filter(_due(now), pk=pk, status=status, attempts=attempts)
            .update(
                status=Delivery.Status.SENDING,
                claim_token=token,
                lease_expires_at=now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS),
                attempts=attempts + 1,
                cycle_attempts=cycle_attempts + 1,
                last_attempt_at=now,
                updated_at=timezone.now(),
            )
        )
        if not taken:
            return None
        if status == Delivery.Status.SENDING:
            DeliveryAttempt.objects.create(
                delivery_id=pk,
                number=attempts,
                url=url,
                started_at=last_attempt_at or now,
                outcome=DeliveryAttempt.Outcome.LOST,
                error="The worker stopped before this attempt finished; taken over after its lease expired.",
            )
    return Claim(delivery_id=pk, token=token, attempt=attempts + 1, cycle_attempt=cycle_attempts + 1)


def delivery_claim(*, now: datetime, delivery_id: int | None = None) -> Claim | None:
    """Claim the given delivery (if due) or the most overdue one. Safe with any number of workers:
    on PostgreSQL rows locked by another claimer are skipped; everywhere the UPDATE only matches
    the state that was read, so two workers never hold the same delivery."""
    candidates = Delivery.objects.filter(_due(now)).order_by("next_attempt_at", "id")
    if delivery_id is not None:
        candidates = candidates.filter(pk=delivery_id)
    if connection.features.has_select_for_update_skip_locked:
        with transaction.atomic():
            row = (
                candidates.select_for_update(skip_locked=True, of=("self",))
                .values_list(*_CLAIM_FIELDS)
                .first()
            )
            return _take(row, now=now) if row is not None else None
    for row in candidates.values_list(*_CLAIM_FIELDS)[:_CLAIM_CANDIDATES]:
        claim = _take(row, now=now)
        if claim is not None:
            return claim
    return None


# --- attempting -------------------------------------------------------------------------------


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


def deliveries_process_due(
    *, now: datetime | None = None, limit: int | None = None, budget_seconds: float | None = None
) -> int:
    """Attempt due deliveries one by one until none is due, ``limit`` attempts were made or
    ``budget_seconds`` passed. With ``now`` fixed, only what is due at ``now`` is attempted."""
    started = time.monotonic()
    done = 0
    while limit is None or done < limit:
        if budget_seconds is not None and time.monotonic() - started > budget_seconds:
            break
        if delivery_attempt_run(now=now or timezone.now()) is None:
            break
        done += 1
    return done


def deliveries_process_until(*, until: datetime, poll_seconds: float) -> int:
    """Until ``until``, attempt whatever is due, any organization's, the most overdue first;
    while nothing is, look again every ``poll_seconds``. Returns the attempts made. Claims are
    safe beside other workers doing the same, so nothing is sent twice."""
    done = 0
    while (left := (until - timezone.now()).total_seconds()) > 0:
        if delivery_attempt_run() is not None:
            done += 1
            continue
        time.sleep(min(poll_seconds, left))
    return done


def delivery_attempt_run_with_retries(
    *, delivery_id: int, retry_window: timedelta, poll_seconds: float
) -> AttemptReport | None:
    """Attempt the delivery, then every retry of it that falls due within ``retry_window`` (the
    schedule's first retry comes 5 s after the first attempt) rather than leaving it to the next
    sweep a minute later; also when another worker made the attempt. While waiting, the worker
    keeps sending whatever else is due (``deliveries_process_until``), so a failing endpoint does
    not hold it idle while other organizations' deliveries queue up behind it. The delivery is
    ``pending`` meanwhile: if this worker dies, the sweep sends it. Returns the last report of an
    attempt of this delivery made here (None: none was)."""
    last = None
    while True:
        report = delivery_attempt_run(delivery_id=delivery_id)
        if report is not None:
            last = report
        retry_at = report.next_attempt_at if report is not None else delivery_retry_at(delivery_id=delivery_id)
        if retry_at is None or retry_at - timezone.now() > retry_window:
            return last
        deliveries_process_until(until=retry_at, poll_seconds=poll_seconds)


def delivery_redeliver(*, delivery: Delivery, now: datetime | None = None) -> bool:
    """Send the event to the endpoint again, with a fresh retry schedule (same ``webhook-id``;
    ``webhook-attempt`` keeps counting). False when the endpoint is not active or the delivery
    is in flight right now."""
    now = now or timezone.now()
    if not WebhookEndpoint.objects.filter(pk=delivery.endpoint_id, is_active=True, deleted_at__isnull=True).exists():
        return False
    with transaction.atomic():
        queued = (
            Delivery.objects.filter(pk=delivery.pk)
            .exclude(status=Delivery.Status.SENDING)
            .update(
                status=Delivery.Status.PENDING,
                next_attempt_at=now,
                cycle_attempts=0,
                completed_at=None,
                lease_expires_at=None,
                claim_token="",
                updated_at=timezone.now(),
            )
        )
        if queued:
            deliveries_enqueue_on_commit(delivery_ids=[delivery.pk])
    return bool(queued)


# --- the periodic schedule ----------------------------------------------------------------------

SWEEP_SCHEDULE_NAME = "webhooks: send due and stalled deliveries"
SWEEP_FUNC = "tenants.webhooks.tasks.deliveries_sweep"


def webhook_schedule_ensure(*, using: str = "default") -> None:
    """The every-minute django-q2 schedule that sends due retries and takes over stalled
    deliveries; created once, kept as is afterwards (idempotent)."""
    from django_q.models import Schedule

    schedule, created = Schedule.objects.using(using).get_or_create(
        name=SWEEP_SCHEDULE_NAME,
        defaults={"func": SWEEP_FUNC, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1},
    )
    if not created and (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) != (
        SWEEP_FUNC,
        Schedule.MINUTES,
        1,
        -1,
    ):
        schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats = SWEEP_FUNC, Schedule.MINUTES, 1, -1
        schedule.save(using=using)
