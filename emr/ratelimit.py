"""A per-connection token bucket that keeps our calls to an EMR under its published limit.

eClinicalWorks allows 250 calls per minute per practice, shared by every worker process on every
machine that talks to it. With Redis configured (``REDIS_URL``) the bucket lives in Redis and is
updated by one atomic script, so any number of ``qcluster`` processes draw from the same bucket.
Without Redis it lives in process memory, which is exact for the embedded set-up (one worker
process talks to the EMR at a time per connection) and an approximation otherwise.

The bucket never lets more than ``limit`` calls through in any 60-second window: it holds at most
``capacity = limit // 10`` tokens and refills at ``(limit - capacity) / 60`` tokens a second, so a
full burst plus a minute of refill is exactly ``limit``.

``pause(seconds)`` is how a 429 with ``Retry-After`` seen by one process slows every process down.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from emr.adapters.base import EmrRateLimited


class Throttle(Protocol):
    def acquire(self) -> None: ...

    def pause(self, seconds: float) -> None: ...


class NoThrottle:
    def acquire(self) -> None:
        return None

    def pause(self, seconds: float) -> None:
        return None


_TAKE = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local pause_until = tonumber(redis.call('HGET', key, 'pause') or '0')
if now < pause_until then
  return tostring(pause_until - now)
end
local tokens = tonumber(redis.call('HGET', key, 'tokens') or tostring(capacity))
local ts = tonumber(redis.call('HGET', key, 'ts') or tostring(now))
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate)
  ts = now
end
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('EXPIRE', key, ttl)
return tostring(wait)
"""

_PAUSE = """
local key = KEYS[1]
local until_ = tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', key, 'pause') or '0')
if until_ > current then
  redis.call('HSET', key, 'pause', tostring(until_))
end
redis.call('EXPIRE', key, tonumber(ARGV[2]))
return 1
"""

_local_lock = threading.Lock()
_local_state: dict[str, dict[str, float]] = {}


class TokenBucket:
    def __init__(
        self,
        *,
        key: str,
        limit_per_minute: int,
        redis_client=None,
        clock=time.time,
        sleep=time.sleep,
        max_wait_seconds: float = 300.0,
    ):
        if limit_per_minute < 1:
            raise ValueError("limit_per_minute must be at least 1")
        self.key = key
        self.limit = limit_per_minute
        self.capacity = max(1, limit_per_minute // 10)
        refill = limit_per_minute - self.capacity if limit_per_minute > self.capacity else limit_per_minute
        self.rate = refill / 60.0  # tokens per second
        self.redis = redis_client
        self.clock = clock
        self.sleep = sleep
        self.max_wait_seconds = max_wait_seconds
        self._ttl = 120
        if redis_client is not None:
            self._take_script = redis_client.register_script(_TAKE)
            self._pause_script = redis_client.register_script(_PAUSE)

    # One attempt: 0 when a token was taken, else the seconds to wait before trying again.
    def _take(self, now: float) -> float:
        if self.redis is not None:
            return float(self._take_script(keys=[self.key], args=[repr(now), self.capacity, repr(self.rate), self._ttl]))
        with _local_lock:
            state = _local_state.setdefault(self.key, {"tokens": float(self.capacity), "ts": now, "pause": 0.0})
            if now < state["pause"]:
                return state["pause"] - now
            if now > state["ts"]:
                state["tokens"] = min(self.capacity, state["tokens"] + (now - state["ts"]) * self.rate)
                state["ts"] = now
            if state["tokens"] >= 1:
                state["tokens"] -= 1
                return 0.0
            return (1 - state["tokens"]) / self.rate

    def try_acquire(self) -> bool:
        return self._take(self.clock()) <= 0

    def acquire(self) -> None:
        waited = 0.0
        while True:
            wait = self._take(self.clock())
            if wait <= 0:
                return
            if waited + wait > self.max_wait_seconds:
                raise EmrRateLimited(
                    f"Calls to the EMR are limited to {self.limit} per minute and the limit stayed exhausted "
                    f"for {int(self.max_wait_seconds)} seconds."
                )
            self.sleep(wait)
            waited += wait

    def pause(self, seconds: float) -> None:
        until = self.clock() + max(0.0, seconds)
        if self.redis is not None:
            self._pause_script(keys=[self.key], args=[repr(until), self._ttl + int(seconds)])
            return
        with _local_lock:
            state = _local_state.setdefault(self.key, {"tokens": float(self.capacity), "ts": self.clock(), "pause": 0.0})
            state["pause"] = max(state["pause"], until)


def shared_redis_client():
    """The Redis connection behind the default cache, when the cache is django-redis."""
    from django.conf import settings

    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if not backend.startswith("django_redis"):
        return None
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def connection_throttle(*, connection_key: str, limit_per_minute: int | None) -> Throttle:
    if not limit_per_minute:
        return NoThrottle()
    from django.core.cache import cache

    return TokenBucket(
        key=cache.make_key(f"emr-bucket:{connection_key}"),
        limit_per_minute=limit_per_minute,
        redis_client=shared_redis_client(),
    )
