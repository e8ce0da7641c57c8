"""Workers' loops: attempt whatever is due, or one delivery and its prompt retries."""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.utils import timezone

from tenants.webhooks.selectors import delivery_retry_at
from tenants.webhooks.services.attempts import (
    AttemptReport,
    PreparedBatch,
    batch_complete,
    batch_prepare,
    batch_send,
    batch_size,
    deliveries_attempt_send,
    delivery_attempt_run,
)
from tenants.webhooks.services.claims import deliveries_claim


def deliveries_process_due(
    *, now: datetime | None = None, limit: int | None = None, budget_seconds: float | None = None
) -> int:
    """Attempt due deliveries, a batch at a time sent concurrently, until none is due, ``limit``
    attempts were claimed or ``budget_seconds`` passed. With ``now`` fixed, only what is due at
    ``now`` is attempted. Returns the attempts made.

    Pipelined: while one batch is in flight (in a sending thread, which touches no database), the
    next is claimed and signed here, and the one in flight is recorded when it is back, so the
    database's round trips overlap the network's rather than add to them. At most two batches are
    claimed at once; each attempt still starts only within its own claim's lease."""
    started = time.monotonic()
    claimed = 0

    def next_batch() -> PreparedBatch | None:
        nonlocal claimed
        if limit is not None and claimed >= limit:
            return None
        if budget_seconds is not None and time.monotonic() - started > budget_seconds:
            return None
        size = batch_size() if limit is None else min(batch_size(), limit - claimed)
        claims = deliveries_claim(now=now or timezone.now(), limit=size)
        if not claims:
            return None
        claimed += len(claims)
        return batch_prepare(claims=claims, now=now)

    done = 0
    current = next_batch()
    if current is None:
        return 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-send") as sender:
        while current is not None:
            if now is None:  # prepared while the previous batch was in flight: its attempts start now
                current = dataclasses.replace(current, now=timezone.now())
            sending = sender.submit(batch_send, current)
            following = None
            try:
                following = next_batch()
            finally:  # the batch in flight is recorded whatever happened meanwhile
                done += len(batch_complete(current, sending.result()))
            current = following
    return done


def deliveries_resume_stalled(*, now: datetime | None = None) -> int:
    """Take over the deliveries whose worker died (their lease ran out) and attempt them now.
    Every delivery task calls this first, so a crashed worker's deliveries resume as soon as any
    worker runs, however long the queue in front of the periodic sweep. Returns the attempts."""
    done = 0
    while claims := deliveries_claim(now=now or timezone.now(), limit=batch_size(), stalled_only=True):
        done += len(deliveries_attempt_send(claims=claims, now=now))
    return done


def deliveries_process_until(*, until: datetime, poll_seconds: float) -> int:
    """Until ``until``, attempt whatever is due, any organization's, the most overdue first;
    while nothing is, look again every ``poll_seconds``. Returns the attempts made. Claims are
    safe beside other workers doing the same, so nothing is sent twice."""
    done = 0
    while (left := (until - timezone.now()).total_seconds()) > 0:
        if claims := deliveries_claim(now=timezone.now(), limit=batch_size()):
            done += len(deliveries_attempt_send(claims=claims))
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


