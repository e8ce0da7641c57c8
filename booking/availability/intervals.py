"""Interval arithmetic on sorted lists of half-open ``(start, end)`` pairs.

The one place where windows, blocks and loads are combined. Values are plain integers (the engine
uses seconds since the epoch). A *normalized* list is sorted, has no empty interval, and no two of
its intervals overlap or touch (touching intervals ``[a, b)`` and ``[b, c)`` become ``[a, c)``).
Every function taking normalized lists returns a normalized list unless it says otherwise.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable

Interval = tuple[int, int]

NEG_INF = -(2**62)
POS_INF = 2**62


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Normalize: sort, drop empty intervals, join overlapping and touching ones."""
    out: list[Interval] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """The parts covered by both normalized lists."""
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start = a[i][0] if a[i][0] > b[j][0] else b[j][0]
        end = a[i][1] if a[i][1] < b[j][1] else b[j][1]
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def intersect_all(lists: list[list[Interval]]) -> list[Interval]:
    if not lists:
        return []
    out = lists[0]
    for other in lists[1:]:
        out = intersect(out, other)
    return out


def subtract(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """The parts of normalized ``a`` not covered by normalized ``b``."""
    if not b:
        return list(a)
    out: list[Interval] = []
    append = out.append
    j, count = 0, len(b)
    for start, end in a:
        while j < count and b[j][1] <= start:
            j += 1
        cursor, k = start, j
        while k < count:
            taken_start, taken_end = b[k]
            if taken_start >= end:
                break
            if taken_start > cursor:
                append((cursor, taken_start))
            if taken_end > cursor:
                cursor = taken_end
            k += 1
        if cursor < end:
            append((cursor, end))
    return out


def load_at_least(busy: Iterable[Interval], capacity: int) -> list[Interval]:
    """The capacity sweep: where at least ``capacity`` of the (unsorted, possibly overlapping)
    ``busy`` intervals are running at once. ``capacity`` 1 is simply their union."""
    if capacity <= 1:
        return merge(busy)
    events: list[tuple[int, int]] = []
    for start, end in busy:
        if end > start:
            events.append((start, 1))
            events.append((end, -1))
    # At equal times ends (-1) sort before starts (+1): half-open intervals that touch don't stack.
    events.sort()
    out: list[Interval] = []
    load = 0
    opened = 0
    for at, delta in events:
        before = load
        load += delta
        if before < capacity <= load:
            opened = at
        elif load < capacity <= before and at > opened:
            out.append((opened, at))
    return merge(out)


def below_capacity(frame: list[Interval], busy: Iterable[Interval], capacity: int) -> list[Interval]:
    """The parts of normalized ``frame`` where fewer than ``capacity`` busy intervals run."""
    return subtract(frame, load_at_least(busy, capacity))


def starts_fitting(intervals: list[Interval], length: int) -> list[Interval]:
    """For normalized ``intervals``: the set of integer starts ``c`` with ``[c, c + length)``
    inside one interval, as half-open ranges (``c`` in ``[start, end - length + 1)``)."""
    out = []
    for start, end in intervals:
        if end - start >= length:
            out.append((start, end - length + 1))
    return out


def complement(intervals: list[Interval]) -> list[Interval]:
    """Everything (between the sentinels) not covered by normalized ``intervals``."""
    return subtract([(NEG_INF, POS_INF)], intervals)


def contains_point(intervals: list[Interval], point: int) -> bool:
    """Whether ``point`` lies in one of the normalized ``intervals``."""
    index = bisect_right(intervals, (point, POS_INF)) - 1
    return index >= 0 and intervals[index][0] <= point < intervals[index][1]


def covers(intervals: list[Interval], start: int, end: int) -> bool:
    """Whether ``[start, end)`` lies inside ONE of the normalized ``intervals``."""
    index = bisect_right(intervals, (start, POS_INF)) - 1
    return index >= 0 and intervals[index][0] <= start and end <= intervals[index][1]


def overlaps(intervals: list[Interval], start: int, end: int) -> bool:
    """Whether ``[start, end)`` shares any instant with the normalized ``intervals``."""
    index = bisect_right(intervals, (start, POS_INF)) - 1
    if index >= 0 and intervals[index][1] > start:
        return True
    return index + 1 < len(intervals) and intervals[index + 1][0] < end
