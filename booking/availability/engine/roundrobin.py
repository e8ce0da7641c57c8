"""Rule 9, roundRobin: which resources a start is offered with, or booked with.

``choose`` is the one choice, made per start from the resources valid at it: the listing calls it
at every start of its sweep, the booking validator (a booking without ``ResourceIds``) at one.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right, insort
from collections.abc import Sequence
from typing import TYPE_CHECKING

from booking.availability.intervals import contains_point, intersect_all

from .grid import grid_points
from .inputs import BALANCED, COMBINED, NONE
from .outputs import Slot

if TYPE_CHECKING:
    from .request import Settings
    from .state import ResourceState

_MASK64 = (1 << 64) - 1


def seed_number(seed: str) -> int:
    """Rule 9: "Random choices are seeded from the normalized query alone"."""
    return int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big")


def seeded_choice(seed: int, at: int, count: int) -> int:
    """A reproducible index in ``range(count)`` for the choice made at instant ``at`` (splitmix64).

    Each start gets its own draw, so a choice never depends on which other starts were computed
    (``firstAvailable`` stopping early, or a narrower window, pick the same resource)."""
    z = (seed + (at + 1) * 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) % count


class Ranking:
    """The candidate resources in the order ``choose`` reads them: answer order for ``NONE`` and
    ``RANDOM``, (count, answer order) for ``BALANCED``, so that among the resources valid at a
    start, kept sorted by rank, the least loaded come first."""

    __slots__ = ("counts", "ids", "rank_of")

    def __init__(self, ids: Sequence[str], mode: str, counts: dict[str, int]):
        order = list(range(len(ids)))
        if mode == BALANCED:
            order.sort(key=lambda i: (counts.get(ids[i], 0), i))
        self.ids = [ids[i] for i in order]
        self.counts = [counts.get(rid, 0) for rid in self.ids]
        self.rank_of = {index: rank for rank, index in enumerate(order)}  # answer position -> rank


def choose(mode: str, ranking: Ranking, eligible: Sequence[int], seed: int, at: int) -> tuple[str, ...]:
    """Rule 9 at start ``at``, among ``eligible`` (the ranks of the resources valid at it, sorted,
    not empty): "``NONE``: every eligible resource. ``RANDOM``: one resource chosen at random
    among those valid at ``c``. ``BALANCED``: among those valid at ``c``, the one with the fewest
    active appointments starting in the request window [...]; ties broken at random."
    """
    if mode == NONE:
        return tuple(ranking.ids[rank] for rank in eligible)
    if mode == BALANCED:
        counts = ranking.counts
        fewest = counts[eligible[0]]
        tied = 1
        while tied < len(eligible) and counts[eligible[tied]] == fewest:
            tied += 1
        return (ranking.ids[eligible[seeded_choice(seed, at, tied)]],)
    return (ranking.ids[eligible[seeded_choice(seed, at, len(eligible))]],)  # RANDOM


def _combined(states: list[ResourceState], settings: Settings, lo: int, hi: int, first_only: bool) -> list[Slot]:
    """``COMBINED``: "the grid is built on the intersection of the open windows of ALL
    ``ResourceIds``; a slot exists only where every one of them is valid; it lists all of them."""
    together = intersect_all([s.open for s in states])
    valid = intersect_all([s.valid for s in states])
    ids = tuple(s.resource.id for s in states)
    known_from = max(s.known_from for s in states)
    slots = []
    for c in grid_points(together, settings.step, lo, hi, known_from=known_from, origin=settings.origin):
        if contains_point(valid, c):
            slots.append(Slot(c, c + settings.duration, ids))
            if first_only:
                break
    return slots


def slots(
    states: list[ResourceState], settings: Settings, counts: dict[str, int], lo: int, hi: int, first_only: bool = False
) -> list[Slot]:
    """The listing: the union of every candidate's grid over ``[lo, hi]``, swept in time order with
    the resources valid at each start, each start's resources from ``choose``."""
    if not states:
        return []
    if settings.mode == COMBINED:
        return _combined(states, settings, lo, hi, first_only)
    starts = set()
    for state in states:
        starts.update(grid_points(state.open, settings.step, lo, hi, known_from=state.known_from, origin=state.origin))
    if not starts:
        return []
    ranking = Ranking([s.resource.id for s in states], settings.mode, counts)
    # Each valid range joins its resource at its start and leaves it at its end, as one integer
    # (time, then 0 = leaves before 1 = joins, then the rank): sorted as integers, taken apart after.
    rank_bits = len(states).bit_length()
    all_ranks, joins_bit, time_shift = (1 << rank_bits) - 1, 1 << rank_bits, rank_bits + 1
    events: list[int] = []
    add = events.append
    for index, state in enumerate(states):
        rank = ranking.rank_of[index]
        joins = joins_bit | rank
        for a, b in state.valid:
            if b > lo and a <= hi:
                add((a << time_shift) | joins)
                add((b << time_shift) | rank)
    events.sort()
    times = [event >> time_shift for event in events]
    changes = [event & all_ranks if event & joins_bit else ~(event & all_ranks) for event in events]  # ~rank: leaves

    out: list[Slot] = []
    eligible: list[int] = []  # ranks of the resources valid at the current start, sorted
    leave = eligible.remove
    mode, seed, duration = settings.mode, settings.seed, settings.duration
    e = 0
    for c in sorted(starts):
        upto = bisect_right(times, c, e)  # every change at or before c
        if upto > e:
            for change in changes[e:upto]:
                if change >= 0:
                    insort(eligible, change)
                else:
                    leave(~change)
            e = upto
        if eligible:
            out.append(Slot(c, c + duration, choose(mode, ranking, eligible, seed, c)))
            if first_only:
                break
    return out
