"""Claiming due deliveries: a conditional UPDATE that gives one worker a lease on a delivery."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from tenants.models import Delivery, DeliveryAttempt

_CLAIM_CANDIDATES = 20
_AS_READ_PART = 200  # deliveries one conditional UPDATE takes (SQLite)


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    token: str
    attempt: int  # the webhook-attempt of this attempt
    cycle_attempt: int  # position in the retry schedule (1-based)
    previous_attempt_at: datetime | None = None  # last_attempt_at before this claim (to give it back)
    # When its lease started (the claim's ``now``), on this process's monotonic clock: the lease
    # runs out WEBHOOK_LEASE_SECONDS later, so an attempt not started in time is given back instead.
    claimed_monotonic: float = field(default_factory=time.monotonic, compare=False)


def _monotonic_at(moment: datetime) -> float:
    """``moment`` (a recent wall-clock time) on this process's monotonic clock: a claim's lease is
    counted from the ``now`` it was computed with, however long the claim then waited for a lock."""
    return time.monotonic() - max(0.0, (timezone.now() - moment).total_seconds())


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
    return Claim(
        delivery_id=pk, token=token, attempt=attempts + 1, cycle_attempt=cycle_attempts + 1,
        previous_attempt_at=last_attempt_at, claimed_monotonic=_monotonic_at(now),
    )


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
    worker's lease ran out, with ``stalled_only``), all under one claim token. On PostgreSQL one
    statement locks the candidates (skipping rows another claimer holds) and takes them; elsewhere
    one conditional UPDATE takes every candidate still in the state that was read. Either way a
    batch is as safe beside other workers as a single claim, and a delivery taken over from a
    worker whose lease ran out gets its lost attempt recorded."""
    due = _stalled(now) if stalled_only else _due(now)
    candidates = Delivery.objects.filter(due).order_by("next_attempt_at", "id")
    token = uuid.uuid4().hex
    lease = now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked and connection.vendor == "postgresql":
            rows = _claim_locked(candidates, limit=limit, token=token, lease=lease, now=now)
        else:
            rows = _claim_as_read(candidates, due=due, limit=limit, token=token, lease=lease, now=now)
        taken_over = [row for row in rows if row[1] == Delivery.Status.SENDING]
        if taken_over:
            urls = dict(
                Delivery.objects.filter(pk__in=[row[0] for row in taken_over]).values_list("pk", "endpoint__url")
            )
            DeliveryAttempt.objects.bulk_create(
                [
                    _lost_attempt(delivery_id=pk, number=attempts, url=urls[pk], started_at=last_attempt_at or now)
                    for pk, _status, attempts, _cycle, last_attempt_at in taken_over
                ]
            )
    claimed_monotonic = _monotonic_at(now)
    return [
        Claim(
            delivery_id=pk, token=token, attempt=attempts + 1, cycle_attempt=cycle_attempts + 1,
            previous_attempt_at=last_attempt_at, claimed_monotonic=claimed_monotonic,
        )
        for pk, _status, attempts, cycle_attempts, last_attempt_at in rows
    ]


_ROW_FIELDS = ("pk", "status", "attempts", "cycle_attempts", "last_attempt_at")


def _claim_locked(candidates, *, limit: int, token: str, lease: datetime, now: datetime) -> list[tuple]:
    """PostgreSQL: lock up to ``limit`` candidates (``FOR UPDATE SKIP LOCKED``) and take them in
    the same statement; returns their rows as they were before the claim, in primary-key order.
    The candidates' query is the ORM's, so the due rule lives in one place."""
    select, params = (
        candidates.select_for_update(skip_locked=True, of=("self",))
        .values_list(*_ROW_FIELDS)[:limit]
        .query.sql_with_params()
    )
    table = connection.ops.quote_name(Delivery._meta.db_table)
    sql = f"""
        WITH picked (id, status, attempts, cycle_attempts, last_attempt_at) AS ({select})
        UPDATE {table} AS d SET
            status = %s, claim_token = %s, lease_expires_at = %s, attempts = d.attempts + 1,
            cycle_attempts = d.cycle_attempts + 1, last_attempt_at = %s, updated_at = %s
        FROM picked WHERE d.id = picked.id
        RETURNING picked.id, picked.status, picked.attempts, picked.cycle_attempts, picked.last_attempt_at
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, (*params, Delivery.Status.SENDING, token, lease, now, timezone.now()))
        rows = cursor.fetchall()
    return sorted(rows, key=lambda row: row[0])


def _claim_as_read(candidates, *, due: Q, limit: int, token: str, lease: datetime, now: datetime) -> list[tuple]:
    """Without row locks (SQLite): read the candidates, then take in one conditional UPDATE those
    still in the state that was read; returns the rows taken, as read."""
    rows = list(candidates.values_list(*_ROW_FIELDS)[:limit])
    if not rows:
        return []
    # SQLite parses a chain of ORs as a tree at most 1,000 deep: a large batch is taken in parts.
    for start in range(0, len(rows), _AS_READ_PART):
        as_read = Q()
        for pk, status, attempts, *_ in rows[start : start + _AS_READ_PART]:
            as_read |= Q(pk=pk, status=status, attempts=attempts)
        Delivery.objects.filter(due).filter(as_read).update(
            status=Delivery.Status.SENDING,
            claim_token=token,
            lease_expires_at=lease,
            attempts=F("attempts") + 1,
            cycle_attempts=F("cycle_attempts") + 1,
            last_attempt_at=now,
            updated_at=timezone.now(),
        )
    taken = set(Delivery.objects.filter(pk__in=[row[0] for row in rows], claim_token=token).values_list("pk", flat=True))
    return [row for row in rows if row[0] in taken]


def claims_release(*, claims: list[Claim], now: datetime) -> int:
    """Give back claims whose attempt was never started (no request was sent): the deliveries are
    due again at once, their attempt counts and last attempt time as before the claim. Only where
    the claim still holds. Returns how many were given back."""
    released = 0
    with transaction.atomic():
        for claim in sorted(claims, key=lambda c: c.delivery_id):
            released += Delivery.objects.filter(
                pk=claim.delivery_id, claim_token=claim.token, status=Delivery.Status.SENDING
            ).update(
                status=Delivery.Status.PENDING,
                claim_token="",
                lease_expires_at=None,
                next_attempt_at=now,
                attempts=F("attempts") - 1,
                cycle_attempts=F("cycle_attempts") - 1,
                last_attempt_at=claim.previous_attempt_at,
                updated_at=timezone.now(),
            )
    return released
