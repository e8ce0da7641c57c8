"""From events to deliveries: one pending delivery per endpoint that wants the event, enqueued
for a prompt first attempt once the caller's transaction commits; and redelivery."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime
from functools import partial

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from tenants.models import Delivery, Event, WebhookEndpoint

logger = logging.getLogger(__name__)

ATTEMPT_TASK = "tenants.webhooks.tasks.delivery_attempt_task"
DRAIN_TASK = "tenants.webhooks.tasks.deliveries_process_task"
# Deliveries committed together up to this many get a task each; more get draining tasks.
ENQUEUE_EACH_UP_TO = 20


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

