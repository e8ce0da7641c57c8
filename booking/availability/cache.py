"""Rule 12, caching: "An answer is cached for one hour under its normalized query (tenant, sorted
ids, resolved zone, sanitized instants, effective duration/step/mode, flags). Any write that
affects it invalidates it first: a booking made a millisecond ago is never offered again."

How it holds:

- The key carries the organization's ``availability_version``, read with the credential at the
  start of the request. Every write that can change availability bumps that version in the same
  transaction as the data (``booking.services.invalidation``), so once a write has committed no
  process, on any machine, can reach an answer computed before it: old keys are simply never asked
  for again, and expire. An answer computed while a write commits is stored under the older
  version, which is already unreachable.
- Time passing without writes changes two things: slots slip into the past, and holds lapse.
  Past slots are dropped from a cached answer when it is served (the grid never depends on "now",
  not even for an open window that began days ago: rule 7 in the engine, and a property test, so
  what remains is exactly what a fresh computation would list); a ``firstAvailable`` answer whose
  one slot has passed is recomputed. An answer lives at most until the earliest hold expiry it
  depends on.
- The normalized query names the effective duration, step and mode, which depend on the
  service's settings; those are cached too, under the service id and the version (a service edit
  bumps the version), so a hit needs no query beyond authentication.
- Cache failures (e.g. Redis down) degrade to computing the answer.

With Redis, a computed answer is also stored under its raw query string (``availability_express_*``:
the organization and the SHA-256 of the query string as sent), headed by the generation it was
computed under, in a form a Lua script can check, so a repeated query is answered by
``booking.api.express`` in one round trip, before any parsing: the same query string parses to
the same parameters, and it is served only while its generation is the organization's, the same
one every write rotates, so these entries are exactly as reachable as the others. The body is then
stored once: the normalized key's entry names the raw key and the generation instead, and a hit
through it reads the body there, only while that entry is still the one computed under it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from array import array
from bisect import bisect_left

from django.conf import settings
from django.core.cache import cache

from tenants.shared_cache import shared_redis

logger = logging.getLogger(__name__)

KEY_PREFIX = "availability:v1"


def availability_cache_key(*, organization_id, version: int, normalized: str) -> str:
    digest = hashlib.sha256(normalized.encode()).hexdigest()[:40]
    return f"{KEY_PREFIX}:{organization_id}:{version}:{digest}"


def service_settings_cache_key(*, organization_id, version: int, service_id) -> str:
    return f"{KEY_PREFIX}:{organization_id}:{version}:service:{service_id}"


def service_settings_cache_get(*, key: str) -> tuple | None:
    """The service settings the normalized query depends on (``selectors``), or None."""
    try:
        return cache.get(key)
    except Exception:  # noqa: BLE001 - a broken cache must not break availability
        logger.warning("availability cache read failed", exc_info=True)
        return None


def service_settings_cache_set(*, entries: dict[str, tuple]) -> None:
    """Store service settings (``{key: settings}``) for ``AVAILABILITY_CACHE_SECONDS``."""
    try:
        cache.set_many(entries, timeout=settings.AVAILABILITY_CACHE_SECONDS)
    except Exception:  # noqa: BLE001
        logger.warning("availability cache write failed", exc_info=True)


def availability_cache_get(*, key: str, now: int) -> bytes | None:
    """The cached answer body as of ``now`` (epoch seconds), or None."""
    try:
        entry = cache.get(key)
    except Exception:  # noqa: BLE001 - a broken cache must not break availability
        logger.warning("availability cache read failed", exc_info=True)
        return None
    if entry is None:
        return None
    body, starts, first_available = entry[:3]
    if body is None:  # kept once, under the raw query string it was computed for
        try:
            body = _express_body_of(*entry[3:])
        except Exception:  # noqa: BLE001 - a broken cache must not break availability
            logger.warning("availability cache read failed", exc_info=True)
            return None
        if body is None:
            return None
    passed = bisect_left(starts, now)
    if passed == 0:
        return body
    if first_available:
        return None  # its one slot has passed; the next one is unknown
    return _without_first(body, passed)


def _without_first(body: bytes, count: int) -> bytes:
    """The answer without its ``count`` earliest slots (they are in the past now)."""
    data = json.loads(body)
    gone = {slot["start_time"] for slot in data["availableTimes"][:count]}
    data["availableTimes"] = data["availableTimes"][count:]
    for day, slots in data["availableDays"].items():
        if slots and slots[0]["start_time"] in gone:
            data["availableDays"][day] = [slot for slot in slots if slot["start_time"] not in gone]
    return answer_bytes(data)


def availability_cache_set(
    *, key: str, body: bytes, starts: list[int], first_available: bool, next_hold_expiry: int | None,
    also: dict[str, tuple] | None = None, express: tuple[str, str] | None = None,
) -> None:
    """Store for ``AVAILABILITY_CACHE_SECONDS``, but never past the next hold expiry: the lifetime
    is counted in whole seconds down from the moment of storing, not from when the computation
    began. ``also``: service settings (``service_settings_cache_set``) to store with it, for the
    answer's lifetime. ``express``: with Redis, the answer's key under its raw query string and
    the generation it was computed under (``availability_express_value``). One round trip."""
    ttl = _lifetime(next_hold_expiry)
    if ttl <= 0:
        if also:
            service_settings_cache_set(entries=also)
        return
    client = shared_redis() if express is not None else None
    try:
        if client is None:
            cache.set_many({key: (body, starts, first_available), **(also or {})}, timeout=ttl)
            return
        # The body goes to Redis once: under the raw query string, and the normalized key names it.
        entries = {key: (None, starts, first_available, *express), **(also or {})}
        encode = cache.client.encode  # django-redis's own serializing, as ``cache.get`` reads it
        with client.pipeline(transaction=False) as pipe:
            for name, value in entries.items():
                pipe.set(cache.make_key(name), encode(value), ex=ttl)
            pipe.set(express[0], availability_express_value(express[1], body, starts, first_available), ex=ttl)
            pipe.execute()
    except Exception:  # noqa: BLE001
        logger.warning("availability cache write failed", exc_info=True)


def _lifetime(next_hold_expiry: int | None) -> int:
    """Whole seconds an answer computed now may be kept (``availability_cache_set``)."""
    ttl = settings.AVAILABILITY_CACHE_SECONDS
    if next_hold_expiry is not None:
        ttl = min(ttl, math.floor(next_hold_expiry - time.time()))
    return ttl


def availability_express_key(*, organization_id, query_string: str) -> str:
    """The key of an answer under its raw query string (``availability_express_value``)."""
    digest = hashlib.sha256(query_string.encode("utf-8", "surrogatepass")).hexdigest()
    return cache.make_key(f"availability:raw:{organization_id}:{digest}")


def availability_express_value(generation: str, body: bytes, starts: list[int], first_available: bool) -> bytes:
    """An answer as stored under its raw query string (``availability_cache_set``):
    ``<generation>:<first_available 0|1>:<number of slots>:<first start or 0>:``, the starts as
    8-byte integers, then the body. ``tenants.shared_cache.express_read`` serves it only while
    ``generation`` is the organization's, and checks ``firstAvailable`` from the head; an answer
    under a newer generation replaces it."""
    head = b"%s:%d:%d:%d:" % (generation.encode(), first_available, len(starts), starts[0] if starts else 0)
    return head + array("q", starts).tobytes() + body


def _express_parts(entry: bytes) -> tuple[int, int, int]:
    """Where an ``availability_express_value`` entry's starts begin, how many, and the first."""
    end = 0
    for _ in range(4):
        end = entry.index(b":", end) + 1
    _, _, count, first, _ = entry[:end].split(b":")
    return end, int(count), int(first)


def _express_body_of(raw_key: str, generation: str) -> bytes | None:
    """The body stored under ``raw_key`` if it is still the one computed under ``generation`` (an
    answer of a newer generation may have replaced it, or the express read removed an older one)."""
    client = shared_redis()
    entry = client.get(raw_key) if client is not None else None
    if entry is None or not entry.startswith(generation.encode() + b":"):
        return None
    end, count, _ = _express_parts(entry)
    return entry[end + 8 * count :]


def availability_express_body(entry: bytes, *, now: int) -> bytes:
    """The body of an entry ``availability_express_value`` made, as of ``now`` (epoch seconds,
    rounded up): its past slots dropped as ``availability_cache_get`` drops them. A
    ``firstAvailable`` answer whose slot has passed never gets here (``express_read`` refuses it)."""
    end, count, first = _express_parts(entry)
    body = entry[end + 8 * count :]
    if count == 0 or first >= now:
        return body
    starts = array("q")
    starts.frombytes(entry[end : end + 8 * count])
    return _without_first(body, bisect_left(starts, now))


def answer_bytes(data: dict) -> bytes:
    """JSON exactly as DRF's renderer writes it (compact, UTF-8)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
