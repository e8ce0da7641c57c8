"""Claiming due deliveries: a conditional UPDATE that gives one worker a lease on a delivery."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from tenants.models import Delivery, DeliveryAttempt

_CLAIM_CANDIDATES = 20


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


def _stalled(now: datetime) -> Q:
    return Q(status=Delivery.Status.SENDING, lease_expires_at__lte=now)


def deliveries_due_count(*, now: datetime | None = None) -> int:
    return Delivery.objects.filter(_due(now or timezone.now())).count()


_CLAIM_FIELDS = ("pk", "status", "attempts", "cycle_attempts", "last_attempt_at", "endpoint__url")


def _lost_attempt(*, delivery_id: int, number: int, url: str, started_at: datetime) -> DeliveryAttempt:
    """The record of an attempt whose worker died: its claim was taken over after the lease."""
    return DeliveryAttempt(
        delivery_id=delivery_id,
        number=number,
        url=url,
        started_at=started_at,
        outcome=DeliveryAttempt.Outcome.LOST,
        error="The worker stopped before this attempt finished; taken over after its lease expired.",
    )


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
            _lost_attempt(delivery_id=pk, number=attempts, url=url, started_at=last_attempt_at or now).save()
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



def deliveries_claim(*, now: datetime, limit: int, stalled_only: bool = False) -> list[Claim]:
    """Claim up to ``limit`` due deliveries at once, the most overdue first (only those whose
    worker's lease ran out, with ``stalled_only``). One conditional UPDATE takes every candidate
    still in the state that was read, so a batch is as safe beside other workers as a single
    claim; on PostgreSQL rows another claimer holds are skipped rather than waited for."""
    due = _stalled(now) if stalled_only else _due(now)
    candidates = Delivery.objects.filter(due).order_by("next_attempt_at", "id")
    token = uuid.uuid4().hex
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        rows = list(candidates.values_list(*_CLAIM_FIELDS)[:limit])
        if not rows:
            return []
        as_read = Q()
        for pk, status, attempts, *_ in rows:
            as_read |= Q(pk=pk, status=status, attempts=attempts)
        Delivery.objects.filter(due).filter(as_read).update(
            status=Delivery.Status.SENDING,
            claim_token=token,
            lease_expires_at=now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS),
            attempts=F("attempts") + 1,
            cycle_attempts=F("cycle_attempts") + 1,
            last_attempt_at=now,
            updated_at=timezone.now(),
        )
        taken = set(
            Delivery.objects.filter(pk__in=[row[0] for row in rows], claim_token=token).values_list("pk", flat=True)
        )
        rows = [row for row in rows if row[0] in taken]
        DeliveryAttempt.objects.bulk_create(
            [
                _lost_attempt(delivery_id=pk, number=attempts, url=url, started_at=last_attempt_at or now)
                for pk, status, attempts, _cycle, last_attempt_at, url in rows
                if status == Delivery.Status.SENDING
            ]
        )
    return [
        Claim(delivery_id=pk, token=token, attempt=attempts + 1, cycle_attempt=cycle_attempts + 1)
        for pk, _status, attempts, cycle_attempts, _last, _url in rows
    ]
