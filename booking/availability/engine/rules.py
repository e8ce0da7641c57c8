"""The rules of ``shared/spec/v3-api.md`` ("Semantics", 1 to 11), one function each, the rule
quoted in its docstring: read it beside the spec.

Instants are integer epoch seconds, intervals half-open ``[start, end)`` lists as
``booking.availability.intervals`` keeps them. Tagged intervals (what the explainer names) are
``(start, end, kind, ref)`` with ``kind`` from ``outputs``. Rule 7's grid mechanics live in
``grid``, rule 9's choice in ``roundrobin``; the per-resource assembly in ``state``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING

from booking.availability.intervals import (
    Interval,
    complement,
    intersect,
    load_at_least,
    merge,
    starts_fitting,
    subtract,
)
from booking.availability.wallclock import (
    dates_between,
    epoch,
    epoch_ceil,
    recurring_rules_expand,
    seconds,
    weekly_windows_expand,
    zone_get,
)

from . import grid, roundrobin
from .inputs import (
    BOOKED,
    HOLD,
    RANDOM,
    RESERVED,
    Booked,
    Inputs,
    Query,
    ResourceIn,
    ServiceIn,
    Span,
    minutes_to_seconds,
)
from .outputs import ALLOCATION, BLOCK, EXTERNAL_BUSY, RECURRING_BLOCK, SHIFT, Result, Slot

if TYPE_CHECKING:
    from .grid import Horizon
    from .request import Settings
    from .state import ResourceState, Shared

Tagged = tuple[int, int, str, str]  # (start, end, kind, ref)


def tagged_spans(spans: Iterable[Span], kind: str) -> list[Tagged]:
    return [(epoch(s.start), epoch_ceil(s.end), kind, s.ref) for s in spans]


def tagged_expanded(expanded: Iterable[tuple[int, int, str]], kind: str) -> list[Tagged]:
    return [(s, e, kind, ref) for s, e, ref in expanded]


def plain(tagged: Iterable[Tagged]) -> list[Interval]:
    return merge((t[0], t[1]) for t in tagged)


# --- Rule 1 ----------------------------------------------------------------------------------


def rule_1_request_window(query: Query) -> tuple[int, int]:
    """Rule 1, request window: "A slot is returned iff its start lies in ``[startDate, endDate]``
    and is not in the past. Slots may end after ``endDate``."

    Returns the inclusive range ``[lo, hi]`` of allowed starts (date-only inputs were sanitized by
    the caller to 00:00:00 and 23:59:59 in ``timezone``).
    """
    return max(epoch_ceil(query.start), epoch_ceil(query.now)), epoch(query.end)


# --- Rule 2 ----------------------------------------------------------------------------------


def rule_2_candidate_resources(inputs: Inputs) -> list[ResourceIn]:
    """Rule 2, candidate resources: "``ResourceIds`` if given, else every active resource linked
    to the service at the location."

    A resource marked ``hideInAvailability`` is not a default candidate, but can be named. The
    answer lists resources in the order of ``inputs.resources``, whatever order they were named in.
    """
    return candidates_among(inputs.resources, inputs.query.resource_ids)


def candidates_among(resources: Iterable, requested: Iterable[str] | None) -> list:
    """Rule 2 over anything with ``id``, ``active``, ``hidden`` and ``linked``."""
    if requested is not None:
        wanted = set(requested)
        return [r for r in resources if r.id in wanted]
    return [r for r in resources if r.active and r.linked and not r.hidden]


# --- Rule 3 ----------------------------------------------------------------------------------


def rule_3_working_windows(resource: ResourceIn, horizon: Horizon) -> list[Tagged]:
    """Rule 3, first part: "its shifts for that weekday (valid on that date, and applying at this
    location) plus its single allocations", per local date in the resource's zone."""
    if not resource.active or not resource.linked:
        return []
    first, last = horizon.dates(resource.zone)
    shifts = tagged_expanded(weekly_windows_expand(resource.weekly, resource.zone, first, last), SHIFT)
    return shifts + tagged_spans(resource.allocations, ALLOCATION) if resource.allocations else shifts


def rule_3_own_blocked(resource: ResourceIn, horizon: Horizon) -> list[Tagged]:
    """Rule 3, what is taken away from the resource itself: its blocks, its expanded recurring
    blocks and the busy events of its external calendars."""
    tagged = tagged_spans(resource.blocks, BLOCK) if resource.blocks else []
    if resource.recurring_blocks:
        tagged += tagged_expanded(
            recurring_rules_expand(resource.recurring_blocks, horizon.start, horizon.end), RECURRING_BLOCK
        )
    if resource.external_busy:
        tagged += tagged_spans(resource.external_busy, EXTERNAL_BUSY)
    return tagged


def rule_3_blocked(resource: ResourceIn, shared: Shared) -> list[Tagged]:
    """Rule 3, what is taken away: "blocks and expanded recurring blocks scoped to the resource,
    the location or the service, and [...] busy events of the resource's external calendars"."""
    return rule_3_own_blocked(resource, shared.horizon) + shared.blocked_tagged


def rule_3_hard_windows(resource: ResourceIn, shared: Shared) -> list[Interval]:
    """Rule 3, hard windows: "per resource, per local date in the resource's zone: its shifts for
    that weekday (valid on that date, and applying at this location) plus its single allocations;
    intersected with the location's ``weeklyAvailability`` (in the location's zone) when that is
    non-empty; minus blocks and expanded recurring blocks scoped to the resource, the location or
    the service, and minus busy events of the resource's external calendars. Windows that touch
    across midnight merge, so overnight work is one window."

    ``merge`` joins touching windows, which is what makes 22:00–24:00 and 00:00–06:00 one window.
    """
    working = plain(rule_3_working_windows(resource, shared.horizon))
    if shared.location_open is not None:
        working = intersect(working, shared.location_open)
    if not working:
        return []
    own = rule_3_own_blocked(resource, shared.horizon)
    taken = merge([(t[0], t[1]) for t in own] + shared.blocked) if own else shared.blocked
    return subtract(working, taken)


# --- Rule 4 ----------------------------------------------------------------------------------


def rule_4_duration(service: ServiceIn, query: Query) -> int:
    """Rule 4: "Duration ``D`` = ``overrideDuration`` or the service ``duration``." (minutes)"""
    return query.override_duration or service.duration


def override_duration_error(service: ServiceIn, minutes: int) -> str | None:
    """Why ``overrideDuration`` (or a booking's ``duration``) is refused, or None: the service must
    allow duration selection, and the value must be a multiple of ``durationInterval`` within
    ``[durationMin, durationMax]``."""
    if not service.duration_select:
        return "The service does not allow selecting a duration (durationSelect is false)."
    if service.duration_interval and minutes % service.duration_interval:
        return f"Must be a multiple of the service's durationInterval ({service.duration_interval})."
    low, high = service.duration_min, service.duration_max
    if (low is not None and minutes < low) or (high is not None and minutes > high):
        return f"Must be between durationMin ({low if low is not None else 1}) and durationMax ({high if high is not None else 'none'})."
    return None


def rule_4_padding(service: ServiceIn) -> int:
    """Rule 4: "Padding ``P`` = the service ``padding``, added AFTER an appointment only." (minutes)"""
    return service.padding or 0


def rule_4_capacity(service: ServiceIn, resource: ResourceIn) -> int:
    """Rule 4: "Capacity ``C`` = the smaller of the service's and the resource's
    ``bookingsPerSlot`` among those that are set, else 1."
    """
    values = [v for v in (service.capacity, resource.capacity) if v is not None]
    return min(values) if values else 1


# --- Rule 5 ----------------------------------------------------------------------------------


_ALWAYS_ACTIVE = frozenset((BOOKED, RESERVED))


def appointment_is_active(appointment: Booked, now: float) -> bool:
    """Rule 5: "status BK or RS, or IN not yet expired"."""
    status, expires_at = appointment.status, appointment.expires_at
    return status in _ALWAYS_ACTIVE or (status == HOLD and (expires_at is None or seconds(expires_at) > now))


def rule_5_occupied(resource: ResourceIn, now: float) -> list[tuple[int, int, int, str]]:
    """Rule 5, load, appointment by appointment: "Every active appointment of the resource
    (status BK or RS, or IN not yet expired; any service, any location, any source including
    EMR-fetched ones) occupies ``[start, end + its service's padding)``. An EMR-fetched
    appointment with no service has padding 0." (The loader gives such an appointment ``padding``
    0.) As ``(start, end, end + padding, ref)``."""
    out = []
    for a in resource.appointments:
        if appointment_is_active(a, now):
            end = epoch_ceil(a.end)
            out.append((epoch(a.start), end, end + minutes_to_seconds(a.padding), a.ref))
    return out


def rule_5_load(resource: ResourceIn, now: float) -> list[Interval]:
    """Rule 5, load: what ``rule_5_occupied`` occupies, in one pass (``Booked``: ref, start, end, status, padding, …)."""
    try:
        return [(math.floor(a[1]), math.ceil(a[2]) + minutes_to_seconds(a[4]))
                for a in resource.appointments if a[3] in _ALWAYS_ACTIVE or appointment_is_active(a, now)]
    except TypeError:  # aware datetimes
        return [(start, padded) for start, _, padded, _ in rule_5_occupied(resource, now)]


# --- Rule 6 ----------------------------------------------------------------------------------


def rule_6_open_windows(hard: list[Interval], saturated: list[Interval]) -> list[Interval]:
    """Rule 6: "Open windows = the parts of the hard windows where the load is below ``C``."

    ``saturated`` is where the load is at least ``C`` (``rule_6_saturated``)."""
    return subtract(hard, saturated)


def rule_6_saturated(load: list[Interval], capacity: int) -> list[Interval]:
    """Rule 6: where the load is NOT below ``C``."""
    return load_at_least(load, capacity) if load else []


# --- Rule 7 ----------------------------------------------------------------------------------


def rule_7_step(service: ServiceIn, query: Query) -> int:
    """Rule 7: "Step ``S`` = ``interval``, else the service ``bookingInterval``, else ``D``." (minutes)"""
    return query.interval or service.booking_interval or rule_4_duration(service, query)


def rule_7_origin(zone: str) -> int:
    """Rule 7: the fixed grid origin in ``zone`` (``grid.grid_origin``), for open windows older
    than ``grid.GRID_REACH``."""
    return grid.grid_origin(zone)


def rule_7_grid(open_windows: list[Interval], step: int, lo: int, hi: int, *, known_from: int, origin: int) -> list[int]:
    """Rule 7, grid: "Candidate starts are ``w + k·S`` (absolute minutes) from the start ``w`` of
    each open window. The grid restarts at the start of every open window; "now" and the request
    window only filter candidates, they never move the grid."

    Returns the grid points inside each open window that fall in ``[lo, hi]``; for windows older
    than ``GRID_REACH`` see ``grid.grid_points``."""
    return grid.grid_points(open_windows, step, lo, hi, known_from=known_from, origin=origin)


# --- Rule 8 ----------------------------------------------------------------------------------


def rule_8_valid_starts(
    hard: list[Interval], saturated: list[Interval], duration: int, padding: int, overflow: bool,
    open_windows: list[Interval] | None = None,
) -> list[Interval]:
    """Rule 8, fit: "A candidate ``c`` is valid for a resource iff ``[c, c + D + P)`` lies inside
    one open window of it. With ``allowPaddingOverflow=true`` the padding may run past the END of
    working hours (the hard window), but never over another appointment."

    Returns every valid start as half-open ranges of epoch seconds. With overflow: ``[c, c + D)``
    inside one open window, and ``[c, c + D + P)`` where the load stays below capacity.

    Decision, for capacity above 1: overflow relaxes only the end of the hard window. The load
    rule is the same with and without it: the load stays below ``C`` over the whole
    ``[c, c + D + P)``, so "never over another appointment" means never where the appointments
    already fill every place. With ``C = 1`` the padding may not touch any appointment; with
    ``C = 2`` it may overlap one appointment, but not a time two appointments fill.

    ``open_windows``: rule 6's, when the caller has them already.
    """
    if open_windows is None:
        open_windows = rule_6_open_windows(hard, saturated)
    if not overflow or padding == 0:
        return starts_fitting(open_windows, duration + padding)
    return intersect(starts_fitting(open_windows, duration), starts_fitting(complement(saturated), duration + padding))


def rule_8_spans(c: int, settings: Settings) -> tuple[int, int]:
    """Rule 8 for one start: the end of ``[c, c + D + P)``, which must stay below capacity, and the
    end of the part that must lie inside the hard window (``c + D`` with overflow)."""
    occupied_end = c + settings.duration + settings.padding
    return occupied_end, (c + settings.duration if settings.overflow else occupied_end)


# --- Rule 9 ----------------------------------------------------------------------------------


def rule_9_mode(service: ServiceIn, query: Query) -> str:
    """Rule 9: "roundRobin (default: the service's ``roundRobin``, else ``RANDOM``)"."""
    return query.round_robin or service.round_robin or RANDOM


def rule_9_balanced_counts(resources: Iterable[ResourceIn], query: Query) -> dict[str, int]:
    """Rule 9, BALANCED: "the fewest active appointments starting in the request window (any
    service, any location)"."""
    lo, hi, now = epoch_ceil(query.start), epoch(query.end), query.now.timestamp()
    return {
        r.id: sum(1 for a in r.appointments if lo <= epoch(a.start) <= hi and appointment_is_active(a, now))
        for r in resources
    }


def rule_9_round_robin(
    states: list[ResourceState], settings: Settings, counts: dict[str, int], lo: int, hi: int, first_only: bool = False
) -> list[Slot]:
    """Rule 9, roundRobin, per start ``c``:

    "For ``NONE``, ``RANDOM`` and ``BALANCED`` the starts are the union of every candidate
    resource's grid, and at each start the eligible resources are ALL those valid at it (on their
    own grid or not).
    - ``NONE``: every eligible resource.
    - ``RANDOM``: one resource chosen at random among those valid at ``c``.
    - ``BALANCED``: among those valid at ``c``, the one with the fewest active appointments
      starting in the request window (any service, any location); ties broken at random.
    - ``COMBINED``: the grid is built on the intersection of the open windows of ALL
      ``ResourceIds``; a slot exists only where every one of them is valid; it lists all of them.
    Random choices are seeded from the normalized query alone."

    The choice at each start is ``roundrobin.choose``, which the booking validator uses too.
    """
    return roundrobin.slots(states, settings, counts, lo, hi, first_only)


# --- Rule 10 ---------------------------------------------------------------------------------


def request_days(query: Query) -> list[date]:
    """Rule 10: "one key per local date (in ``timezone``) from ``startDate`` to ``endDate``"."""
    zone = zone_get(query.zone)
    return list(dates_between(query.start.astimezone(zone).date(), query.end.astimezone(zone).date()))


def rule_10_output(result: Result, *, service_id: str, location_id: str, zone: str) -> dict:
    """Rule 10, output: "``{"ServiceId", "availableTimes": [...], "availableDays": {...}}``. Each
    time: ``{"start_time", "end_time" (= start + D), "LocationId", "ResourceIds": [...]}``,
    rendered as ``YYYY-MM-DDTHH:MM:SS±HH:MM`` in ``timezone`` (``+00:00`` when absent; never
    ``Z``, no fractions). ``availableTimes`` is sorted by start. ``availableDays`` has one key per
    local date (in ``timezone``) from ``startDate`` to ``endDate``, each an array of that day's
    slots without ``LocationId``, empty when nothing is free."
    """
    tz = zone_get(zone)
    memo: dict[int, str] = {}

    def render(moment: int) -> str:
        text = memo.get(moment)
        if text is None:
            text = memo[moment] = datetime.fromtimestamp(moment, tz).isoformat()
        return text

    days: dict[str, list] = {day.isoformat(): [] for day in result.days}
    times = []
    for slot in sorted(result.slots, key=lambda s: s.start):
        start, end = render(slot.start), render(slot.end)
        ids = list(slot.resource_ids)
        times.append({"start_time": start, "end_time": end, "LocationId": location_id, "ResourceIds": ids})
        day = days.get(start[:10])
        if day is not None:
            day.append({"start_time": start, "end_time": end, "ResourceIds": ids})
    return {"ServiceId": service_id, "availableTimes": times, "availableDays": days}


# --- Rule 11 ---------------------------------------------------------------------------------


def rule_11_first_available(lo: int, hi: int, slots_between: Callable[[int, int], list[Slot]]) -> list[Slot]:
    """Rule 11: "``firstAvailable=true``: ``availableTimes`` holds only the earliest slot (or
    none) [...]. Stop computing early."

    Works through the window in growing chunks (1, 2, 4, ... days) and stops at the first chunk
    with a slot. ``slots_between(lo, hi)`` computes each chunk exactly as a request for that chunk
    alone would be, and a start's random draw depends on the start only, so the slot is the one
    the full answer begins with.
    """
    chunk = 86400
    while lo <= hi:
        upper = min(hi, lo + chunk - 1)
        found = slots_between(lo, upper)
        if found:
            return found[:1]
        lo = upper + 1
        chunk *= 2
    return []
