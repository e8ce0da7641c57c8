"""Exact per-credential rate limits, shared by every web worker.

A limit of N per period is a fixed window that opens with a credential's first request and lasts
the period: the first N requests in it pass, every later one is a 429 whose ``Retry-After`` is
the seconds until the window closes (rounded up). Counting and deciding is one atomic step, so
concurrent requests through any number of workers never get more than N through:

- with ``REDIS_URL``: the ``limits`` library's fixed window in Redis (an ``INCRBY`` and its
  expiry in one Lua script), under ``<CACHE_KEY_PREFIX>:ratelimit``;
- without it: one row per credential and scope (``RateLimitWindow``) changed by a single
  ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` (PostgreSQL, and SQLite 3.35+), which opens a
  new window when the old one has expired and otherwise adds one to its count.
"""

from __future__ import annotations

import math
import threading
import time

from django.conf import settings
from django.db import connection
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from tenants.models import RateLimitWindow


class RedisWindows:
    """Fixed windows in Redis through ``limits`` (``FixedWindowRateLimiter``)."""

    def __init__(self, url: str, key_prefix: str):
        from limits.storage import RedisStorage
        from limits.strategies import FixedWindowRateLimiter

        self.storage = RedisStorage(url, key_prefix=key_prefix)
        self.limiter = FixedWindowRateLimiter(self.storage)

    def hit(self, bucket: str, limit: int, period: int, now: float) -> float:
        """0 when the request may pass, else the seconds until its window closes."""
        from limits import RateLimitItemPerSecond

        item = RateLimitItemPerSecond(limit, period)
        if self.limiter.hit(item, bucket):
            return 0.0
        remaining_ms = self.storage.get_connection(True).pttl(self.storage.prefixed_key(item.key_for(bucket)))
        return remaining_ms / 1000 if remaining_ms > 0 else float(period)  # -2: just expired

    def key(self, bucket: str, limit: int, period: int) -> str:
        """The Redis key ``hit`` counts ``bucket`` under."""
        from limits import RateLimitItemPerSecond

        return self.storage.prefixed_key(RateLimitItemPerSecond(limit, period).key_for(bucket))


class DatabaseWindows:
    """Fixed windows in the ``RateLimitWindow`` table."""

    def hit(self, bucket: str, limit: int, period: int, now: float) -> float:
        table = connection.ops.quote_name(RateLimitWindow._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (bucket, hits, expires_at) VALUES (%s, 1, %s) "
                f"ON CONFLICT (bucket) DO UPDATE SET "
                f"hits = CASE WHEN {table}.expires_at <= %s THEN 1 ELSE {table}.hits + 1 END, "
                f"expires_at = CASE WHEN {table}.expires_at <= %s THEN excluded.expires_at ELSE {table}.expires_at END "
                f"RETURNING hits, expires_at",
                [bucket, now + period, now, now],
            )
            hits, expires_at = cursor.fetchone()
            if hits == 1:  # a window opened: forget the windows of credentials no longer calling
                cursor.execute(f"DELETE FROM {table} WHERE expires_at < %s", [now - period])
        return 0.0 if hits <= limit else max(expires_at - now, 0.001)


PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """DRF's rate notation: ``"1200/min"`` is (1200, 60); the period's first letter counts."""
    count, period = rate.split("/")
    return int(count), PERIODS[period[0]]


_redis_lock = threading.Lock()
_redis_windows: dict[tuple[str, str], RedisWindows] = {}


def windows() -> RedisWindows | DatabaseWindows:
    """Where the counts live: Redis when ``REDIS_URL`` is set, else the database."""
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return DatabaseWindows()
    prefix = settings.CACHES.get("default", {}).get("KEY_PREFIX") or "sched"
    key = (url, f"{prefix}:ratelimit")
    with _redis_lock:
        if key not in _redis_windows:
            _redis_windows[key] = RedisWindows(*key)
        return _redis_windows[key]


def window_in_cache(scope: str, api_client_id) -> tuple[str, int, int] | None:
    """The Redis key, limit and period that ``CredentialRateThrottle`` counts an API client's
    requests in (``("", 0, 0)``: no limit), for a caller that counts them itself in the default
    cache's Redis (``tenants.shared_cache.express_read``, with the same increment and expiry as
    ``limits``). None when the counts live elsewhere (the database, another Redis)."""
    rate = api_settings.DEFAULT_THROTTLE_RATES.get(scope)
    if rate is None:
        return ("", 0, 0)
    url = getattr(settings, "REDIS_URL", "")
    if not url or url != settings.CACHES.get("default", {}).get("LOCATION"):
        return None
    found = _window_keys.get((scope, api_client_id, rate, url))
    if found is None:
        limit, period = parse_rate(rate)
        found = (windows().key(f"{scope}:{api_client_id}", limit, period), limit, period)
        if len(_window_keys) > 100_000:
            _window_keys.clear()
        _window_keys[(scope, api_client_id, rate, url)] = found
    return found


# ``window_in_cache``'s answers by everything they depend on: worked out once per client and rate.
_window_keys: dict[tuple, tuple[str, int, int]] = {}


class CredentialRateThrottle(BaseThrottle):
    """``DEFAULT_THROTTLE_RATES[scope]`` requests per API client (per client address before one is
    known). Subclasses set ``scope``."""

    scope = "v3"
    timer = staticmethod(time.time)

    def __init__(self):
        self._wait: float | None = None

    def bucket(self, request) -> str:
        principal = request.user
        ident = principal.api_client.pk if getattr(principal, "is_authenticated", False) else self.get_ident(request)
        return f"{self.scope}:{ident}"

    def allow_request(self, request, view) -> bool:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        if rate is None:
            return True
        limit, period = parse_rate(rate)
        self._wait = windows().hit(self.bucket(request), limit, period, self.timer())
        return self._wait <= 0

    def wait(self) -> float | None:
        """Seconds until the window frees, rounded up (``Retry-After`` rounds it up again)."""
        return math.ceil(self._wait) if self._wait else None
