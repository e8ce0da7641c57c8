"""Reads: ``GET /v3/availability`` and its explanation, from parsed parameters to the answer."""

from __future__ import annotations

import gc
import logging
import math
import threading
import uuid
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from datetime import date, datetime

from django.utils import timezone

from booking.availability import engine, wallclock
from booking.availability.cache import (
    availability_cache_get,
    availability_cache_key,
    availability_cache_set,
    service_settings_cache_get,
    service_settings_cache_key,
    service_settings_cache_set,
)
from booking.availability.loader import ResourceRow, inputs_load, request_inputs
from booking.availability.render import answer_render
from booking.models import Location, Resource
from booking.selectors import tenant_get
from tenants.errors import InvalidInput, NotFound
from tenants.models import Organization
from tenants.shared_cache import generation_read, shared_redis

logger = logging.getLogger(__name__)


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

    def query(self, *, now: datetime, seed: str = "") -> engine.Query:
        return engine.Query(
            start=self.start,
            end=self.end,
            now=now,
            zone=self.zone,
            resource_ids=self.resource_ids,
            round_robin=self.round_robin,
            override_duration=self.override_duration,
            interval=self.interval,
            first_available=self.first_available,
            allow_padding_overflow=self.allow_padding_overflow,
            seed=seed,
        )

    def normalized(self, organization_id, effective: engine.Effective) -> str:
        """Rule 12's normalized query: tenant, sorted ids, resolved zone, sanitized instants,
        effective duration/step/mode (``engine.query_effective``: the service's defaults applied,
        so an omitted parameter and the value it defaults to are the same query), flags."""
        return self.seed(organization_id, effective) + ("|first" if self.first_available else "")

    def seed(self, organization_id, effective: engine.Effective) -> str:
        """Rule 9's seed: the normalized query without ``firstAvailable``, so the one slot of a
        ``firstAvailable`` answer is the first slot of the full answer, resource choice included."""
        return "|".join(
            [
                str(organization_id),
                str(self.location_id),
                str(self.service_id),
                ",".join(sorted(self.resource_ids)) if self.resource_ids is not None else "*",
                self.zone,
                str(wallclock.epoch(self.start)),
                str(wallclock.epoch(self.end)),
                str(effective.duration),
                str(effective.step),
                effective.mode,
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
    location: engine.LocationIn
    service: engine.ServiceIn
    rows: list[ResourceRow]
    query: engine.Query
    effective: engine.Effective
    service_entry: dict | None = None  # the service's settings for the shared cache, stored with the answer


def _service_settings(*, organization: Organization, params: AvailabilityParams, version) -> engine.ServiceIn | None:
    """The service's settings as the engine reads them, from the cache at the organization's data
    version (present only for the organization's own service: it is stored after reading it), or
    None."""
    if version is None:
        return None
    key = _service_settings_key(organization, params, version)
    found = _service_settings_seen.get(key)
    if found is None:
        cached = service_settings_cache_get(key=key)
        if cached is None:
            return None
        found = _service_settings_remember(key, engine.ServiceIn(*cached))
    return found


# The service settings this process has read, under the same keys as the cache: a key names the
# organization's data version, which every write to a service changes, so they never go stale.
_service_settings_seen: dict[str, engine.ServiceIn] = {}


def _service_settings_remember(key: str, service: engine.ServiceIn) -> engine.ServiceIn:
    if len(_service_settings_seen) > 10_000:
        _service_settings_seen.clear()
    _service_settings_seen[key] = service
    return service


def _service_settings_key(organization: Organization, params: AvailabilityParams, version) -> str:
    return service_settings_cache_key(organization_id=organization.pk, version=version, service_id=params.service_id)


def _cache_version(organization: Organization, *, fresh: bool = False):
    """The organization's data version the cache keys carry (rule 12): with a Redis cache its
    generation there, read without a query (None while a write is pending: then the cache is not
    used at all) and usually with the credential (``data_generation``), else the
    ``availability_version`` read with the credential (``cache``). ``fresh``: read it now (after
    a ``syncExternal`` sync, which may have changed it)."""
    client = shared_redis()
    if client is None:
        return organization.availability_version
    if not fresh and hasattr(organization, "data_generation"):
        return organization.data_generation
    try:
        return generation_read(client, organization.pk)
    except Exception:  # noqa: BLE001 - a broken cache must not break availability
        logger.warning("availability generation read failed", exc_info=True)
        return None


def _service_checks(*, params: AvailabilityParams, service: engine.ServiceIn, now: datetime) -> engine.Effective:
    """The 400s that depend on the service, then the effective duration/step/mode. They run before
    the cache is read: an invalid query may name the same effective values as a valid one (an
    ``overrideDuration`` equal to the duration of a service that allows no choice)."""
    if params.override_duration is not None:
        error = engine.override_duration_error(service, params.override_duration)
        if error:
            raise InvalidInput({"overrideDuration": [error]})
    effective = engine.query_effective(service, params.query(now=now))
    if effective.mode == engine.COMBINED and not params.resource_ids:
        raise InvalidInput({"ResourceIds": ["roundRobin COMBINED needs the resources to combine in ResourceIds."]})
    return effective


def _resolve(
    *, organization: Organization, params: AvailabilityParams, now: datetime, extra_resource: bool = False,
    service_first: bool = False, version=None,
) -> _Resolved:
    """The checks that need the data: 404 for an unknown (or another tenant's) location or service,
    then the service-dependent 400s (``service_first``: the service's 404 and 400s before the
    location's 404, the order of the listing), then the ``ResourceIds`` that are not linked. The
    location, the service and the resource rows are one statement (``loader.request_inputs``)."""
    location, service, rows = request_inputs(
        organization=organization, location_id=params.location_id, service_id=params.service_id,
        resource_ids=list(params.resource_ids) if params.resource_ids is not None else None,
    )
    if location is None and not service_first:
        raise NotFound(f"Location {params.location_id} not found.")
    if service is None:
        raise NotFound(f"Service {params.service_id} not found.")
    service_entry = None
    if version is not None:
        key = _service_settings_key(organization, params, version)
        service_entry = {key: astuple(service)}  # written with the answer: one round trip
        _service_settings_remember(key, service)
    effective = _service_checks(params=params, service=service, now=now)
    if location is None:
        raise NotFound(f"Location {params.location_id} not found.")
    if params.resource_ids is not None and not extra_resource:
        linked = {row.id for row in rows if row.linked}
        missing = [rid for rid in params.resource_ids if rid not in linked]
        if missing:
            raise InvalidInput(
                {"ResourceIds": [f"Resource {rid} does not offer this service at this location." for rid in missing]}
            )
    query = params.query(now=now, seed=params.seed(organization.pk, effective))
    return _Resolved(location, service, rows, query, effective, service_entry)


def _inputs(organization: Organization, resolved: _Resolved) -> engine.Inputs:
    return inputs_load(
        organization_id=organization.pk, location=resolved.location, service=resolved.service, query=resolved.query,
        rows=resolved.rows,
    )


_collector_lock = threading.Lock()
_collector_pauses = 0  # computations running with the collector paused
_collector_was_enabled = False  # as the first of them found it


@contextmanager
def _collector_paused():
    """Python's cyclic garbage collector paused while an answer is computed.

    Loading, computing and rendering an answer allocate tens of thousands of short-lived tuples,
    dataclasses, lists and dicts; the collector, triggered by allocation counts, then traversed the
    whole heap several times per request (measured: a fifth of an uncached 20 x 7 request, a third
    of an 80 x 31 one). None of these objects form cycles, so reference counting frees them all
    the same; collection resumes when the last computation running in the process ends."""
    global _collector_pauses, _collector_was_enabled
    with _collector_lock:
        if _collector_pauses == 0:
            _collector_was_enabled = gc.isenabled()
            gc.disable()
        _collector_pauses += 1
    try:
        yield
    finally:
        with _collector_lock:
            _collector_pauses -= 1
            if _collector_pauses == 0 and _collector_was_enabled:
                gc.enable()


def availability_sync_candidates(*, organization: Organization, params: AvailabilityParams) -> list[str]:
    """The resources a ``syncExternal`` request syncs first (rule 2's candidates), after the checks
    that need the data (404, the service's 400s), so a refused request syncs nothing."""
    resolved = _resolve(organization=organization, params=params, now=timezone.now())
    return [row.id for row in engine.candidates_among(resolved.rows, params.resource_ids)]


def availability_answer(
    *, organization: Organization, params: AvailabilityParams, sync_failed: bool = False,
    express_key: str | None = None,
) -> AvailabilityAnswer:
    """The ``GET /v3/availability`` body (rules 1 to 12).

    The cache keys carry ``_cache_version``: the generation in Redis, else
    ``organization.availability_version`` as read with the credential or, after a ``syncExternal``
    sync (``booking.services.external_calendars.availability_external_sync``), as it re-read it.
    ``sync_failed``: the answer is computed from the last synced data and neither read from nor
    written to the cache. ``express_key``: with Redis, where a computed answer is stored under its
    raw query string too (``booking.api.express``), headed by its generation.
    """
    now = timezone.now()
    now_epoch = math.ceil(now.timestamp())
    version = None if sync_failed else _cache_version(organization, fresh=params.sync_external)
    resolved = None
    service_input = _service_settings(organization=organization, params=params, version=version)
    if service_input is None:
        resolved = _resolve(organization=organization, params=params, now=now, service_first=True, version=version)
        effective = resolved.effective
    else:
        effective = _service_checks(params=params, service=service_input, now=now)
    key = None
    if version is not None:
        key = availability_cache_key(
            organization_id=organization.pk, version=version, normalized=params.normalized(organization.pk, effective)
        )
        cached = availability_cache_get(key=key, now=now_epoch)
        if cached is not None:
            if resolved is not None and resolved.service_entry:
                service_settings_cache_set(entries=resolved.service_entry)
            return AvailabilityAnswer(cached, "HIT")
    with _collector_paused():
        if resolved is None:
            resolved = _resolve(organization=organization, params=params, now=now, service_first=True)
        result = engine.availability_compute(_inputs(organization, resolved))
        body = answer_render(result, service_id=resolved.service.id, location_id=resolved.location.id, zone=params.zone)
        starts = sorted(slot.start for slot in result.slots)
        next_hold_expiry = result.next_hold_expiry
        del result  # freed while the collector is paused: it would otherwise walk every slot once more
    if key is not None:
        availability_cache_set(
            key=key,
            body=body,
            starts=starts,
            first_available=params.first_available,
            next_hold_expiry=next_hold_expiry,
            also=resolved.service_entry,
            express=(express_key, version) if express_key is not None and isinstance(version, str) else None,
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
    inputs = _inputs(organization, resolved)
    explanation = engine.candidate_explain(inputs, str(resource.pk), at)
    return {
        "ResourceId": str(resource.pk),
        "ServiceId": resolved.service.id,
        "LocationId": resolved.location.id,
        "time": wallclock.instant(wallclock.epoch(at), params.zone).isoformat(),
        "available": explanation.available,
        "onGrid": explanation.on_grid,
        "reasons": [{"code": r.code, "id": r.ref or None, "message": r.message} for r in explanation.reasons],
    }


def _reason_body(reason: engine.Reason, zone: str) -> dict:
    def render(moment: int | None) -> str | None:
        return None if moment is None else wallclock.instant(moment, zone).isoformat()

    return {
        "code": reason.code, "kind": reason.kind, "id": reason.ref or None, "message": reason.message,
        "start": render(reason.start), "end": render(reason.end),
    }


def availability_explain_day(
    *, organization: Organization, location_id: uuid.UUID, service_id: uuid.UUID, resource_id: uuid.UUID, day: date,
    zone: str | None = None,
) -> dict:
    """The explainer's day view: every start of local ``day`` (in ``zone``, default the
    location's) for the resource and the service, bookable or not and why, each reason naming its
    object (``kind``, ``id``) and the interval of it in the way (``engine.day_explain``, the rule
    functions the listing and the validator use). 404 for another tenant's objects."""
    resource = tenant_get(model=Resource, organization=organization, pk=resource_id)
    location = tenant_get(model=Location, organization=organization, pk=location_id)
    zone = zone or location.timezone
    params = AvailabilityParams(
        location_id=location.pk, service_id=service_id, zone=zone, resource_ids=(str(resource.pk),),
        start=wallclock.instant(wallclock.wall_to_epoch(zone, day, wallclock.MIDNIGHT, False), zone),
        end=wallclock.instant(wallclock.wall_to_epoch(zone, day, wallclock.MIDNIGHT, True) - 1, zone),
    )
    resolved = _resolve(organization=organization, params=params, now=timezone.now(), extra_resource=True)
    inputs = _inputs(organization, resolved)
    return {
        "ResourceId": str(resource.pk),
        "ServiceId": resolved.service.id,
        "LocationId": resolved.location.id,
        "date": day.isoformat(),
        "timezone": zone,
        "starts": [
            {
                "time": wallclock.instant(item.start, zone).isoformat(),
                "available": item.explanation.available,
                "onGrid": item.explanation.on_grid,
                "reasons": [_reason_body(r, zone) for r in item.explanation.reasons],
            }
            for item in engine.day_explain(inputs, str(resource.pk), day, zone)
        ],
    }
