"""Reads: ``GET /v3/availability`` and its explanation, from parsed parameters to the answer."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from django.utils import timezone
from rest_framework.exceptions import ValidationError

from booking.availability import engine
from booking.availability.cache import (
    answer_bytes,
    availability_cache_get,
    availability_cache_key,
    availability_cache_set,
)
from booking.availability.loader import ResourceRow, availability_inputs_load, resource_rows, service_in
from booking.models import Location, Resource, Service
from booking.selectors import tenant_get
from tenants.models import Organization


@dataclass(frozen=True)
class AvailabilityParams:
    """``GET /v3/availability`` parameters, parsed and sanitized (rule 1: instants are aware, date-only
    inputs already turned into 00:00:00 / 23:59:59 in ``zone``)."""

    location_id: uuid.UUID
    service_id: uuid.UUID
    start: datetime
    end: datetime
    zone: str = "UTC"
    resource_ids: tuple[str, ...] | None = None  # deduplicated, in the order given
    round_robin: str | None = None
    sync_external: bool = False
    override_duration: int | None = None
    interval: int | None = None
    first_available: bool = False
    allow_padding_overflow: bool = False

    def normalized(self, organization_id) -> str:
        """Rule 12's normalized query: tenant, sorted ids, resolved zone, sanitized instants, the
        duration/step/mode asked for (with the service, at the data version in the cache key, they
        fix the effective ones), flags."""
        return self.seed(organization_id) + ("|first" if self.first_available else "")

    def seed(self, organization_id) -> str:
        """Rule 9's seed: the normalized query without ``firstAvailable``, so the one slot of a
        ``firstAvailable`` answer is the first slot of the full answer, resource choice included."""
        return "|".join(
            [
                str(organization_id),
                str(self.location_id),
                str(self.service_id),
                ",".join(sorted(self.resource_ids)) if self.resource_ids is not None else "*",
                self.zone,
                str(engine.epoch(self.start)),
                str(engine.epoch(self.end)),
                str(self.override_duration or ""),
                str(self.interval or ""),
                self.round_robin or "",
                "overflow" if self.allow_padding_overflow else "",
            ]
        )


@dataclass(frozen=True)
class AvailabilityAnswer:
    body: bytes
    cache: str  # "HIT" | "MISS"
    sync_failed: bool = False


@dataclass
class _Resolved:
    location: Location
    service: Service
    rows: list[ResourceRow]
    query: engine.Query


def _resolve(
    *, organization: Organization, params: AvailabilityParams, now: datetime, extra_resource: bool = False
) -> _Resolved:
    """The checks that need the data: 404 for an unknown (or another tenant's) location or service,
    then the service-dependent 400s."""
    location = tenant_get(model=Location, organization=organization, pk=params.location_id)
    service = tenant_get(model=Service, organization=organization, pk=params.service_id)
    if params.override_duration is not None:
        error = engine.override_duration_error(service_in(service), params.override_duration)
        if error:
            raise ValidationError({"overrideDuration": [error]})
    mode = params.round_robin or service.round_robin or engine.RANDOM
    if mode == engine.COMBINED and not params.resource_ids:
        raise ValidationError({"ResourceIds": ["roundRobin COMBINED needs the resources to combine in ResourceIds."]})
    rows = resource_rows(
        organization=organization, location=location, service=service,
        resource_ids=list(params.resource_ids) if params.resource_ids is not None else None,
    )
    if params.resource_ids is not None and not extra_resource:
        linked = {row.id for row in rows if row.linked}
        missing = [rid for rid in params.resource_ids if rid not in linked]
        if missing:
            raise ValidationError(
                {"ResourceIds": [f"Resource {rid} does not offer this service at this location." for rid in missing]}
            )
    query = engine.Query(
        start=params.start,
        end=params.end,
        now=now,
        zone=params.zone,
        resource_ids=params.resource_ids,
        round_robin=params.round_robin,
        override_duration=params.override_duration,
        interval=params.interval,
        first_available=params.first_available,
        allow_padding_overflow=params.allow_padding_overflow,
        seed=params.seed(organization.pk),
    )
    return _Resolved(location, service, rows, query)


def availability_answer(*, organization: Organization, params: AvailabilityParams) -> AvailabilityAnswer:
    """The ``GET /v3/availability`` body (rules 1 to 12).

    ``organization.availability_version`` is the one read with the credential; only a
    ``syncExternal`` request, whose sync may have written, reads it again.
    """
    now = timezone.now()
    now_epoch = math.ceil(now.timestamp())
    normalized = params.normalized(organization.pk)
    resolved = None
    sync_failed = False
    if params.sync_external:
        from booking.services.external_calendars import external_calendars_sync_for_resources

        resolved = _resolve(organization=organization, params=params, now=now)
        candidates = engine.candidates_among(resolved.rows, params.resource_ids)
        sync_failed = not external_calendars_sync_for_resources(resource_ids=[r.id for r in candidates])
        organization.refresh_from_db(fields=["availability_version"])
        now = timezone.now()
        now_epoch = math.ceil(now.timestamp())
        resolved.query = replace(resolved.query, now=now)
    key = availability_cache_key(
        organization_id=organization.pk, version=organization.availability_version, normalized=normalized
    )
    if not sync_failed:
        cached = availability_cache_get(key=key, now=now_epoch)
        if cached is not None:
            return AvailabilityAnswer(cached, "HIT")
    if resolved is None:
        resolved = _resolve(organization=organization, params=params, now=now)
    inputs = availability_inputs_load(
        organization=organization, location=resolved.location, service=resolved.service,
        query=resolved.query, rows=resolved.rows,
    )
    result = engine.availability_compute(inputs)
    body = answer_bytes(
        engine.rule_10_output(
            result, service_id=str(resolved.service.pk), location_id=str(resolved.location.pk), zone=params.zone
        )
    )
    if not sync_failed:
        availability_cache_set(
            key=key,
            body=body,
            starts=[slot.start for slot in sorted(result.slots, key=lambda s: s.start)],
            first_available=params.first_available,
            next_hold_expiry=result.next_hold_expiry,
        )
    return AvailabilityAnswer(body, "MISS", sync_failed)


def availability_explain(
    *, organization: Organization, params: AvailabilityParams, resource_id: uuid.UUID, at: datetime
) -> dict:
    """``GET /v3/availability/explain``: can that resource take the service at ``at``, and if not,
    why (``engine.candidate_explain``, the same code as the listing and the booking validator)."""
    resource = tenant_get(model=Resource, organization=organization, pk=resource_id)
    params = AvailabilityParams(
        **{**params.__dict__, "resource_ids": (str(resource.pk),), "start": at, "end": at, "first_available": False}
    )
    resolved = _resolve(organization=organization, params=params, now=timezone.now(), extra_resource=True)
    inputs = availability_inputs_load(
        organization=organization, location=resolved.location, service=resolved.service,
        query=resolved.query, rows=resolved.rows,
    )
    explanation = engine.candidate_explain(inputs, str(resource.pk), at)
    return {
        "ResourceId": str(resource.pk),
        "ServiceId": str(resolved.service.pk),
        "LocationId": str(resolved.location.pk),
        "time": engine.instant(engine.epoch(at), params.zone).isoformat(),
        "available": explanation.available,
        "onGrid": explanation.on_grid,
        "reasons": [{"code": r.code, "id": r.ref or None, "message": r.message} for r in explanation.reasons],
    }
