"""Interval arithmetic, checked against a brute-force model on small integer ranges."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from booking.availability import intervals as iv

SPAN = 60


def points(intervals) -> set[int]:
    return {p for start, end in intervals for p in range(start, end)}


raw = st.lists(st.tuples(st.integers(0, SPAN), st.integers(0, SPAN)).map(lambda p: (min(p), max(p))), max_size=8)
normalized = raw.map(iv.merge)


def is_normalized(intervals) -> bool:
    return all(s < e for s, e in intervals) and all(a[1] < b[0] for a, b in zip(intervals, intervals[1:], strict=False))


@settings(max_examples=200, deadline=None)
@given(raw)
def test_merge_keeps_the_points_and_normalizes(items):
    merged = iv.merge(items)
    assert points(merged) == points(items) and is_normalized(merged)


def test_merge_joins_touching_intervals():
    assert iv.merge([(5, 10), (0, 5), (12, 12)]) == [(0, 10)]


@settings(max_examples=200, deadline=None)
@given(normalized, normalized)
def test_intersect_and_subtract_match_sets(a, b):
    assert points(iv.intersect(a, b)) == points(a) & points(b)
    assert points(iv.subtract(a, b)) == points(a) - points(b)
    assert is_normalized(iv.intersect(a, b)) and is_normalized(iv.subtract(a, b))


@settings(max_examples=200, deadline=None)
@given(raw, st.integers(1, 4))
def test_load_at_least_counts_overlaps(items, capacity):
    expected = {p for p in range(SPAN) if sum(1 for s, e in items if s <= p < e) >= capacity}
    assert points(iv.load_at_least(items, capacity)) == expected


def test_touching_bookings_do_not_stack():
    assert iv.load_at_least([(0, 10), (10, 20)], 2) == []
    assert iv.load_at_least([(0, 10), (5, 20), (8, 9)], 2) == [(5, 10)]


@settings(max_examples=200, deadline=None)
@given(normalized, st.integers(1, 10))
def test_starts_fitting(items, length):
    expected = {c for c in range(-5, SPAN + 5) if any(s <= c and c + length <= e for s, e in items)}
    assert points(iv.starts_fitting(items, length)) == expected


@settings(max_examples=200, deadline=None)
@given(normalized, st.integers(0, SPAN), st.integers(1, 10))
def test_covers_contains_overlaps(items, start, length):
    covered = points(items)
    span = set(range(start, start + length))
    assert iv.covers(items, start, start + length) == any(s <= start and start + length <= e for s, e in items)
    assert iv.overlaps(items, start, start + length) == bool(span & covered)
    assert iv.contains_point(items, start) == (start in covered)
