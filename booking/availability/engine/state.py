"""Rules 3 to 8 assembled for one resource over one horizon (``ResourceState``), with what rule 3
takes from the location and the service expanded once per horizon (``Shared``)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from booking.availability.intervals import Interval, merge
from booking.availability.wallclock import recurring_rules_expand, weekly_windows_expand

from .grid import Horizon, reaches_back
from .inputs import Inputs, ResourceIn
from .outputs import BLOCK, RECURRING_BLOCK
from .request import Settings
from .rules import (
    Tagged,
    plain,
    rule_3_hard_windows,
    rule_4_capacity,
    rule_5_load,
    rule_6_open_windows,
    rule_6_saturated,
    rule_7_origin,
    rule_8_valid_starts,
    tagged_expanded,
    tagged_spans,
)


@dataclass(slots=True)
class Shared:
    """What rule 3 takes from the location and the service, expanded once per horizon."""

    horizon: Horizon
    location_open: list[Interval] | None  # None = no restriction
    blocked_tagged: list[Tagged]
    blocked: list[Interval]
    token: int = 0  # the same for equal horizons and equal data (``_shared_token``); 0: nothing kept


def shared_expand(inputs: Inputs, horizon: Horizon, *, keep: bool = False) -> Shared:
    """``keep``: the horizon does not follow the clock, so what is worked out over it may be kept
    for the next request (``hard_windows``); one that moves with "now" would only fill the store."""
    location = inputs.location
    if not location.active:
        location_open = []
    elif location.weekly:
        first, last = horizon.dates(location.zone)
        location_open = merge((s, e) for s, e, _ in weekly_windows_expand(location.weekly, location.zone, first, last))
    else:
        location_open = None
    blocked_tagged = tagged_spans(inputs.blocks, BLOCK) + tagged_expanded(
        recurring_rules_expand(inputs.recurring_blocks, horizon.start, horizon.end), RECURRING_BLOCK
    )
    blocked = plain(blocked_tagged)
    token = _shared_token(horizon, location_open, blocked) if keep else 0
    return Shared(horizon, location_open, blocked_tagged, blocked, token)


# Rule 3's hard windows of a resource depend on its working hours, blocks and busy times, on what
# the location and the service add (``Shared``) and on the horizon, never on its appointments: the
# requests that follow a booking, or ask about another service, compute the same ones again. They
# are kept here by everything they are computed from (a pure function: equal keys, equal windows),
# so a change to any of it is simply another key. Bounded by the intervals held (keys and values;
# about 30 MB at most): everything is emptied when that is reached.
_KEPT_INTERVALS = 250_000
_kept_intervals = 0
_shared_tokens: dict[tuple, int] = {}
_hard_kept: dict[tuple, tuple[Interval, ...]] = {}
_next_token = itertools.count(1).__next__


def _kept_grow(intervals: int) -> None:
    """Count what is about to be kept; empty both stores first when it would pass the bound (a
    count raced between threads is off by a few entries, never unbounded)."""
    global _kept_intervals
    if _kept_intervals + intervals > _KEPT_INTERVALS:
        _shared_tokens.clear()
        _hard_kept.clear()  # unreachable anyway once their tokens are gone: tokens are never given out twice
        _kept_intervals = 0
    _kept_intervals += intervals


def _shared_token(horizon: Horizon, location_open: list[Interval] | None, blocked: list[Interval]) -> int:
    key = (horizon.start, horizon.end, None if location_open is None else tuple(location_open), tuple(blocked))
    token = _shared_tokens.get(key)
    if token is None:
        _kept_grow(len(blocked) + len(location_open or ()))
        token = _shared_tokens.setdefault(key, _next_token())  # atomic: racing threads agree on one
    return token


def hard_windows_forget() -> None:
    """Empty what ``hard_windows`` kept (the benchmark's cold figures)."""
    global _kept_intervals
    _shared_tokens.clear()
    _hard_kept.clear()
    _kept_intervals = 0


def hard_windows(resource: ResourceIn, shared: Shared) -> tuple[Interval, ...]:
    """``rule_3_hard_windows``, computed once for the same inputs (read-only: a tuple)."""
    if not shared.token:
        return tuple(rule_3_hard_windows(resource, shared))
    key = (shared.token, resource.zone, resource.active, resource.linked, resource.weekly, resource.allocations,
           resource.blocks, resource.recurring_blocks, resource.external_busy)
    try:
        hard = _hard_kept.get(key)
    except TypeError:  # inputs built by hand with lists
        return tuple(rule_3_hard_windows(resource, shared))
    if hard is None:
        hard = tuple(rule_3_hard_windows(resource, shared))
        _kept_grow(len(hard) + len(resource.weekly) + len(resource.blocks) + len(resource.recurring_blocks)
                   + len(resource.allocations) + len(resource.external_busy))
        _hard_kept[key] = hard
    return hard


@dataclass(slots=True)
class ResourceState:
    """Rules 3 to 8 worked out for one resource over one horizon."""

    resource: ResourceIn
    capacity: int
    hard: tuple[Interval, ...]
    load: list[Interval]
    saturated: list[Interval]
    open: list[Interval]
    valid: list[Interval]
    known_from: int  # the horizon's start: windows are complete from there on (rule 7)
    origin: int  # rule 7: the fixed grid origin in the resource's zone


def resource_state(resource: ResourceIn, inputs: Inputs, shared: Shared, settings: Settings) -> ResourceState:
    capacity = rule_4_capacity(inputs.service, resource)
    hard = hard_windows(resource, shared)
    load = rule_5_load(resource, settings.clock) if hard else []
    saturated = rule_6_saturated(load, capacity)
    open_windows = rule_6_open_windows(hard, saturated)
    valid = rule_8_valid_starts(
        hard, saturated, settings.duration, settings.padding, settings.overflow, open_windows=open_windows
    )
    return ResourceState(
        resource, capacity, hard, load, saturated, open_windows, valid, shared.horizon.start, rule_7_origin(resource.zone)
    )


class Horizons:
    """The shared data of the horizon around ``[lo, hi]``, and, only when a grid needs it, of the
    horizon reaching back ``GRID_REACH`` (rule 7)."""

    def __init__(self, inputs: Inputs, lo: int, hi: int, reach: int, *, keep: bool = False):
        self.inputs, self.lo, self.hi, self.reach, self.keep = inputs, lo, hi, reach, keep
        self.near = shared_expand(inputs, Horizon.around(lo, hi, reach), keep=keep)
        self._far: Shared | None = None

    @property
    def far(self) -> Shared:
        if self._far is None:
            self._far = shared_expand(self.inputs, Horizon.reaching_back(self.lo, self.hi, self.reach), keep=self.keep)
        return self._far

    def state(self, resource: ResourceIn, settings: Settings) -> ResourceState:
        """The resource's state, complete enough for its grid over ``[lo, hi]``."""
        state = resource_state(resource, self.inputs, self.near, settings)
        if reaches_back(state.open, state.known_from, self.lo, self.hi):
            state = resource_state(resource, self.inputs, self.far, settings)
        return state

    def states_far(self, resources: Iterable[ResourceIn], settings: Settings) -> list[ResourceState]:
        return [resource_state(r, self.inputs, self.far, settings) for r in resources]
