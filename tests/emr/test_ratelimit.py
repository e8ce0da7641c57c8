"""The per-connection token bucket: never more than the limit in any 60-second window, shared
through Redis by every process, and paused by a 429's Retry-After."""

from __future__ import annotations

import pytest
import redis

from emr.adapters.base import EmrRateLimited
from emr.ratelimit import TokenBucket, _local_state


class FakeClock:
    def __init__(self, start: float = 1_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def _clean_local():
    _local_state.clear()
    yield
    _local_state.clear()


def granted_per_window(bucket: TokenBucket, clock: FakeClock, *, seconds: float, step: float) -> list[float]:
    """Try to take a token every ``step`` seconds for ``seconds``; the times it was granted."""
    granted = []
    end = clock.now + seconds
    while clock.now < end:
        if bucket.try_acquire():
            granted.append(clock.now)
        clock.now += step
    return granted


def max_in_any_minute(times: list[float]) -> int:
    best = 0
    for index, start in enumerate(times):
        best = max(best, sum(1 for t in times[index:] if t < start + 60))
    return best


@pytest.fixture(params=["memory", "redis"])
def make_bucket(request, redis_url):
    client = redis.Redis.from_url(redis_url) if request.param == "redis" else None

    def build(limit: int, clock: FakeClock, key: str = "emr-bucket:test") -> TokenBucket:
        return TokenBucket(key=key, limit_per_minute=limit, redis_client=client, clock=clock, sleep=clock.sleep, max_wait_seconds=120)

    return build


def test_never_more_than_the_limit_in_any_minute(make_bucket):
    clock = FakeClock()
    bucket = make_bucket(250, clock)
    granted = granted_per_window(bucket, clock, seconds=180, step=0.05)
    assert max_in_any_minute(granted) <= 250
    # ...and not needlessly slow: a burst of 25, then 225 a minute (25 + 3 * 225 over three minutes).
    assert 25 + 3 * 225 - 3 <= len(granted) <= 25 + 3 * 225


def test_a_burst_is_capped_at_a_tenth_of_the_limit(make_bucket):
    clock = FakeClock()
    bucket = make_bucket(250, clock)
    burst = 0
    while bucket.try_acquire():
        burst += 1
    assert burst == 25


def test_two_processes_share_one_bucket_through_redis(redis_url):
    clock = FakeClock()
    first = TokenBucket(key="emr-bucket:shared", limit_per_minute=100, redis_client=redis.Redis.from_url(redis_url), clock=clock)
    second = TokenBucket(key="emr-bucket:shared", limit_per_minute=100, redis_client=redis.Redis.from_url(redis_url), clock=clock)
    taken = 0
    for _ in range(10):
        taken += first.try_acquire()
        taken += second.try_acquire()
    assert taken == 10  # capacity 10, shared: not 10 each
    other = TokenBucket(key="emr-bucket:other-connection", limit_per_minute=100, redis_client=redis.Redis.from_url(redis_url), clock=clock)
    assert other.try_acquire()  # another connection has its own bucket


def test_acquire_waits_for_the_next_token(make_bucket):
    clock = FakeClock()
    bucket = make_bucket(60, clock)  # capacity 6, refill 54/min
    for _ in range(6):
        bucket.acquire()
    start = clock.now
    bucket.acquire()
    assert clock.now - start == pytest.approx(60 / 54, rel=1e-6)


def test_pause_holds_every_caller_until_retry_after_has_passed(make_bucket):
    clock = FakeClock()
    bucket = make_bucket(250, clock)
    other_worker = make_bucket(250, clock)
    bucket.pause(12)
    assert not other_worker.try_acquire()
    start = clock.now
    other_worker.acquire()
    assert clock.now - start == pytest.approx(12)


def test_giving_up_after_the_longest_wait(make_bucket):
    clock = FakeClock()
    bucket = make_bucket(250, clock)
    bucket.pause(600)
    with pytest.raises(EmrRateLimited, match="limited to 250 per minute"):
        bucket.acquire()
