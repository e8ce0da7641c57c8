"""The listing (``availability_compute``, ``GET /v3/availability``) and the booking validator
(``candidate_is_valid``, ``candidate_resources_choose``): the same rule functions, so that a listed
start can be booked and an unlisted one refused for the same reasons."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from booking.availability.intervals import contains_point, intersect_all
from booking.availability.wallclock import epoch, epoch_ceil, seconds

from .grid import Horizon, reaches_back
from .inputs import BALANCED, COMBINED, HOLD, NONE, Inputs, ResourceIn, seconds_to_minutes
from .outputs import Result, Slot
from .request import Settings, settings_of
from .roundrobin import Ranking, choose
from .rules import (
    request_days,
    rule_1_request_window,
    rule_2_candidate_resources,
    rule_9_balanced_counts,
    rule_9_round_robin,
    rule_11_first_available,
)
from .state import Horizons, resource_state, shared_expand


def next_hold_expiry(resources: Iterable[ResourceIn], now: float) -> int | None:
    """The earliest moment an active hold lapses, in whole seconds rounded down: an answer computed
    now is stale from then on (rounding up would keep it up to a second after the hold lapsed)."""
    upcoming = [
        epoch(a.expires_at)
        for r in resources
        for a in r.appointments
        if a[3] == HOLD and a.expires_at is not None and seconds(a.expires_at) > now  # a[3]: ``Booked.status``
    ]
    return min(upcoming) if upcoming else None


def slots_between(
    inputs: Inputs, candidates: list[ResourceIn], settings: Settings, counts: dict[str, int], lo: int, hi: int,
    first_only: bool = False, keep: bool = False,
) -> list[Slot]:
    """Rules 3 to 9 over the starts ``[lo, hi]`` (``keep``: ``lo`` does not follow the clock)."""
    horizons = Horizons(inputs, lo, hi, settings.reach, keep=keep)
    if settings.mode == COMBINED:  # the grid is on the windows they share
        states = [resource_state(r, inputs, horizons.near, settings) for r in candidates]
        together = intersect_all([s.open for s in states])
        if reaches_back(together, horizons.near.horizon.start, lo, hi):
            states = horizons.states_far(candidates, settings)
    else:
        states = [horizons.state(r, settings) for r in candidates]
    return rule_9_round_robin(states, settings, counts, lo, hi, first_only)


def availability_compute(inputs: Inputs) -> Result:
    """``GET /v3/availability``: every slot of the request window (rules 1 to 11)."""
    query = inputs.query
    settings = settings_of(inputs)
    candidates = rule_2_candidate_resources(inputs)
    counts = rule_9_balanced_counts(candidates, query) if settings.mode == BALANCED else {}
    lo, hi = rule_1_request_window(query)
    keep = lo == epoch_ceil(query.start)  # the window starts after "now": its horizons are the same next time
    if lo > hi or not candidates:
        slots = []
    elif query.first_available:
        slots = rule_11_first_available(
            lo, hi, lambda a, b: slots_between(inputs, candidates, settings, counts, a, b, first_only=True, keep=keep)
        )
    else:
        slots = slots_between(inputs, candidates, settings, counts, lo, hi, keep=keep)
    return Result(
        slots=slots,
        duration=seconds_to_minutes(settings.duration),
        step=seconds_to_minutes(settings.step),
        mode=settings.mode,
        days=request_days(query),
        next_hold_expiry=next_hold_expiry(candidates, settings.clock),
    )


def resource_find(inputs: Inputs, resource_id: str) -> ResourceIn | None:
    return next((r for r in inputs.resources if r.id == resource_id), None)


def _valid_at(inputs: Inputs, resources: Iterable[ResourceIn], start: datetime) -> tuple[Settings, int, list[bool]]:
    """Rules 1 to 8 at one start, for each of ``resources`` (the grid is not required)."""
    settings = settings_of(inputs)
    c = epoch(start)
    shared = shared_expand(inputs, Horizon.around(c, c, settings.reach))
    valid = [contains_point(resource_state(r, inputs, shared, settings).valid, c) for r in resources]
    return settings, c, valid


def candidate_is_valid(inputs: Inputs, resource_ids: Iterable[str], start: datetime) -> bool:
    """The booking validator: whether every one of ``resource_ids`` can take the service at
    ``start`` under the same rules the listing uses (1 to 8), except that the grid is NOT required:
    "any start where the resource(s) are valid can be booked"."""
    resources = [resource_find(inputs, rid) for rid in resource_ids]
    if not resources or None in resources:
        return False
    settings, c, valid = _valid_at(inputs, resources, start)
    return c >= settings.now and all(valid)


def candidate_resources_choose(inputs: Inputs, start: datetime) -> tuple[str, ...] | None:
    """A booking without ``ResourceIds``: "one resource is chosen as ``roundRobin`` would" among
    the candidate resources valid at ``start``, by the listing's own ``choose`` (NONE, which lists
    them all, books the first; COMBINED needs explicit ``ResourceIds``, so it is refused earlier)."""
    candidates = rule_2_candidate_resources(inputs)
    settings, c, valid = _valid_at(inputs, candidates, start)
    if c < settings.now or not any(valid):
        return None
    counts = rule_9_balanced_counts(candidates, inputs.query) if settings.mode == BALANCED else {}
    mode = NONE if settings.mode == COMBINED else settings.mode
    ranking = Ranking([r.id for r in candidates], mode, counts)
    eligible = sorted(ranking.rank_of[i] for i, ok in enumerate(valid) if ok)
    chosen = choose(mode, ranking, eligible, settings.seed, c)
    return chosen[:1] if mode == NONE else chosen
