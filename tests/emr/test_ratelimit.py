"""The per-connection token bucket: never more than the limit in any 60-second window, shared
through Redis by every process, and paused by a 429's Retry-After."""

from __future__ import annotations

import uuid

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


class Buckets:
    """Builds buckets on one backend. With Redis, ``run`` repeats a check when another test
    process flushed the shared test database meanwhile (the ``redis_url`` fixture of tests in other
    xdist workers calls FLUSHDB), so an interference is never mistaken for a bucket bug."""

    def __init__(self, client):
        self.client = client

    def __call__(self, limit: int, clock: FakeClock, key: str | None = None) -> TokenBucket:
        key = key or f"emr-bucket:test:{uuid.uuid4().hex}"
        return TokenBucket(key=key, limit_per_minute=limit, redis_client=self.client, clock=clock, sleep=clock.sleep, max_wait_seconds=120)

    def run(self, check) -> None:
        for _ in range(5):
            sentinel = f"emr-bucket:sentinel:{uuid.uuid4().hex}"
            if self.client is not None:
                self.client.set(sentinel, 1, ex=600)
            try:
                check()
            except (AssertionError, pytest.fail.Exception):
                if self.client is not None and not self.client.exists(sentinel):
                    continue  # flushed by another process: try again
                raise
            if self.client is None or self.client.exists(sentinel):
                return
        pytest.fail("the shared Redis test database was flushed during every attempt")


@pytest.fixture(params=["memory", "redis"])
def make_bucket(request, redis_url):
    return Buckets(redis.Redis.from_url(redis_url) if request.param == "redis" else None)


def test_never_more_than_the_limit_in_any_minute(make_bucket):
    def check():
        clock = FakeClock()
        bucket = make_bucket(250, clock)
        granted = granted_per_window(bucket, clock, seconds=180, step=0.05)
        assert max_in_any_minute(granted) <= 250
        # ...and not needlessly slow: a burst of 25, then 225 a minute (25 + 3 * 225 over three minutes).
        assert 25 + 3 * 225 - 3 <= len(granted) <= 25 + 3 * 225

    make_bucket.run(check)


def test_a_burst_is_capped_at_a_tenth_of_the_limit(make_bucket):
    def check():
        bucket = make_bucket(250, FakeClock())
        burst = 0
        while bucket.try_acquire():
            burst += 1
        assert burst == 25

    make_bucket.run(check)


def test_two_processes_share_one_bucket_through_redis(redis_url):
    buckets = Buckets(redis.Redis.from_url(redis_url))

    def check():
        clock = FakeClock()
        key = f"emr-bucket:shared:{uuid.uuid4().hex}"
        first = TokenBucket(key=key, limit_per_minute=100, redis_client=redis.Redis.from_url(redis_url), clock=clock)
        second = TokenBucket(key=key, limit_per_minute=100, redis_client=redis.Redis.from_url(redis_url), clock=clock)
        taken = 0
        for _ in range(10):
            taken += first.try_acquire()
            taken += second.try_acquire()
        assert taken == 10  # capacity 10, shared: not 10 each
        other = TokenBucket(key=f"{key}:other-connection", limit_per_minute=100, redis_client=redis.Redis.from_url(redis_url), clock=clock)
        assert other.try_acquire()  # another connection has its own bucket

    buckets.run(check)


def test_acquire_waits_for_the_next_token(make_bucket):
    def check():
        clock = FakeClock()
        bucket = make_bucket(60, clock)  # capacity 6, refill 54/min
        for _ in range(6):
            bucket.acquire()
        start = clock.now
        bucket.acquire()
        assert clock.now - start == pytest.approx(60 / 54, rel=1e-6)

    make_bucket.run(check)


def test_pause_holds_every_caller_until_retry_after_has_passed(make_bucket):
    def check():
        clock = FakeClock()
        key = f"emr-bucket:paused:{uuid.uuid4().hex}"
        bucket = make_bucket(250, clock, key=key)
        other_worker = make_bucket(250, clock, key=key)
        bucket.pause(12)
        assert not other_worker.try_acquire()
        start = clock.now
        other_worker.acquire()
        assert clock.now - start == pytest.approx(12)

    make_bucket.run(check)


def test_giving_up_after_the_longest_wait(make_bucket):
    def check():
        bucket = make_bucket(250, FakeClock())
        bucket.pause(600)
        with pytest.raises(EmrRateLimited, match="limited to 250 per minute"):
            bucket.acquire()

    make_bucket.run(check)
