"""The one way anything in the product says that something happened.

``event_emit`` stores the event (its id, type, the exact payload later sent, the job that produced
it) in the same transaction as the change it reports, together with one pending delivery per
webhook endpoint that wants it; after commit the first attempts are enqueued. If the transaction
rolls back, the event and its deliveries vanish with it and nothing is sent.

``events_emit`` does the same for many events of one organization in a fixed number of queries
(bulk inserts of the events and of their deliveries), e.g. for every appointment a live fetch saw
change. Each event still has its own id and its own body, serialized once: the exact bytes that
are stored, signed and POSTed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

from tenants.models import Event, Organization, event_id_new
from tenants.webhooks.services import (
    EVENT_TYPES,
    deliveries_create_for_events,
    deliveries_enqueue_on_commit,
    event_body_serialize,
)

__all__ = ["EVENT_TYPES", "LIVE_FETCH_TYPES", "NewEvent", "event_emit", "event_payload_build", "events_emit"]

LIVE_FETCH_TYPES = frozenset({"appointment.live_fetch_completed", "availability.live_fetch_completed"})
BULK_BATCH = 500


@dataclass(frozen=True)
class NewEvent:
    """One event for ``events_emit``."""

    type: str
    data: dict
    access_token_reference_id: str | None = None


def _iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_payload_build(
    *,
    event_id: str,
    type: str,
    data: dict,
    created: datetime,
    job_id: str | None = None,
    access_token_reference_id: str | None = None,
    action: str = "sync",
) -> dict:
    """The envelope: Cobalt's for live-fetch events (seed 003), ``object: "event"`` for the rest."""
    if type in LIVE_FETCH_TYPES:
        return {
            "id": event_id,
            "access_token_reference_id": access_token_reference_id,
            "job_id": job_id,
            "timestamp": _iso_z(created),
            "type": type,
            "action": action,
            "data": data,
        }
    return {"id": event_id, "object": "event", "created": _iso_z(created), "type": type, "data": data}


def event_emit(
    *,
    organization: Organization | None = None,
    organization_id=None,
    type: str,
    data: dict,
    job_id: str | None = None,
    access_token_reference_id: str | None = None,
) -> Event:
    (event,) = events_emit(
        organization=organization,
        organization_id=organization_id,
        events=[NewEvent(type=type, data=data, access_token_reference_id=access_token_reference_id)],
        job_id=job_id,
    )
    return event


def events_emit(
    *,
    organization: Organization | None = None,
    organization_id=None,
    events: Sequence[NewEvent],
    job_id: str | None = None,
) -> list[Event]:
    """Store events of one organization (all produced by ``job_id``, when given; ``event_emit``
    is the one-event form) with their deliveries: the events and deliveries are bulk-inserted, so the number of queries does not
    grow with the number of events (only with their insert batches). They share one creation
    time: they report one change, made in one transaction."""
    if not events:
        return []
    org_id = organization.pk if organization is not None else organization_id
    created = timezone.now()
    rows = [
        _event_build(
            organization_id=org_id,
            type=new.type,
            data=new.data,
            created=created,
            job_id=job_id,
            access_token_reference_id=new.access_token_reference_id,
        )
        for new in events
    ]
    with transaction.atomic():
        Event.objects.bulk_create(rows, batch_size=BULK_BATCH)
        delivery_ids = deliveries_create_for_events(events=rows, batch_size=BULK_BATCH)
        deliveries_enqueue_on_commit(delivery_ids=delivery_ids)
    return rows


def _event_build(
    *, organization_id, type: str, data: dict, created: datetime, job_id: str | None, access_token_reference_id: str | None
) -> Event:
    """The unsaved event with its envelope serialized once (``body``: the bytes later signed)."""
    event_id = event_id_new()
    payload = event_payload_build(
        event_id=event_id,
        type=type,
        data=data,
        created=created,
        job_id=job_id,
        access_token_reference_id=access_token_reference_id,
    )
    body = event_body_serialize(payload)
    return Event(
        id=event_id,
        organization_id=organization_id,
        type=type,
        payload=json.loads(body),
        body=body,
        job_id=job_id,
        access_token_reference_id=access_token_reference_id,
        created_at=created,
    )
