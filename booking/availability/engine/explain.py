"""``GET /v3/availability/explain`` and the admin's day view: why a resource can or cannot take
the service at a start, every reason naming the object behind it (``Reason.kind``, ``ref`` and
the interval in the way).

``available`` is the validator's answer (``compute``); the reasons read the same rule functions
(``rules``): the working windows and blocks of rule 3, the occupied intervals of rule 5 with their
padding, the saturated load of rule 6, the spans of rule 8. Each way rule 8 can fail has a reason:
the start has passed, the resource or location is out (inactive, not linked), ``[c, c + D + P)``
(``c + D`` with overflow) is not inside the working hours, the opening hours or clear of blocks,
or the load fills the capacity somewhere in ``[c, c + D + P)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from booking.availability.intervals import Interval, contains_point, covers, subtract
from booking.availability.wallclock import MIDNIGHT, ONE_DAY, epoch, wall_to_epoch

from .compute import candidate_is_valid, resource_find
from .grid import Horizon
from .inputs import Inputs, ResourceIn
from .outputs import (
    APPOINTMENT,
    CAPACITY,
    EXTERNAL_BUSY,
    HOURS,
    LOCATION,
    LOCATION_HOURS,
    NOW,
    RESOURCE,
    Explanation,
    Reason,
    StartExplained,
)
from .request import Settings, settings_of
from .rules import (
    Tagged,
    plain,
    rule_3_blocked,
    rule_3_working_windows,
    rule_4_capacity,
    rule_5_occupied,
    rule_6_saturated,
    rule_7_grid,
    rule_8_spans,
)
from .state import Horizons, Shared, shared_expand


def _gap(windows: list[Interval], start: int, end: int) -> tuple[int, int]:
    """The first part of ``[start, end)`` outside ``windows``."""
    missing = subtract([(start, end)], windows)
    return missing[0] if missing else (start, end)


@dataclass(slots=True)
class _Context:
    """One resource's rule data over a horizon, read by ``_reasons`` start after start."""

    inputs: Inputs
    resource: ResourceIn
    shared: Shared
    settings: Settings
    working_tagged: list[Tagged]
    working: list[Interval]
    blocked: list[Tagged]
    occupied: list[tuple[int, int, int, str]]
    saturated: list[Interval]
    capacity: int


def _context(inputs: Inputs, resource: ResourceIn, shared: Shared, settings: Settings) -> _Context:
    working_tagged = rule_3_working_windows(resource, shared.horizon) if resource.active else []
    occupied = rule_5_occupied(resource, settings.clock)
    capacity = rule_4_capacity(inputs.service, resource)
    saturated = rule_6_saturated([(s, p) for s, _, p, _ in occupied], capacity)
    return _Context(
        inputs, resource, shared, settings, working_tagged, plain(working_tagged), rule_3_blocked(resource, shared),
        occupied, saturated, capacity,
    )


def _reasons(ctx: _Context, c: int) -> list[Reason]:
    """Every reason ``c`` fails rules 1 to 8 for the resource, in the order the rules run."""
    resource, location, settings = ctx.resource, ctx.inputs.location, ctx.settings
    occupied_end, hard_end = rule_8_spans(c, settings)
    reasons: list[Reason] = []
    if c < settings.now:
        reasons.append(Reason("in_past", "", "The time has passed.", NOW, c, settings.now))
    if not resource.linked:
        reasons.append(Reason("not_linked", resource.id, "The resource does not offer this service at this location.", RESOURCE))
    if not resource.active:
        reasons.append(Reason("inactive", resource.id, "The resource is inactive.", RESOURCE))
    if not location.active:
        reasons.append(Reason("location_closed", location.id, "The location is inactive.", LOCATION))

    if resource.active and resource.linked and not covers(ctx.working, c, hard_end):
        gap = _gap(ctx.working, c, hard_end)
        # The working window the start lies in but that ends too soon names itself, else the hours.
        inside = next(((s, e, kind, ref) for s, e, kind, ref in ctx.working_tagged if s <= c < e and ref), None)
        if inside is not None and gap[0] > c:
            reasons.append(Reason("outside_working_hours", inside[3], "Outside the resource's working hours.", inside[2], *gap))
        else:
            reasons.append(Reason("outside_working_hours", resource.id, "Outside the resource's working hours.", HOURS, *gap))
    open_hours = ctx.shared.location_open
    if location.active and open_hours is not None and not covers(open_hours, c, hard_end):
        gap = _gap(open_hours, c, hard_end)
        reasons.append(Reason("location_closed", location.id, "Outside the location's opening hours.", LOCATION_HOURS, *gap))
    seen = set()
    for s, e, kind, ref in ctx.blocked:
        code = "external_busy" if kind == EXTERNAL_BUSY else "blocked"
        if s < hard_end and c < e and (code, ref) not in seen:
            seen.add((code, ref))
            text = "Busy in an external calendar." if kind == EXTERNAL_BUSY else "Blocked."
            reasons.append(Reason(code, ref, text, kind, s, e))

    full = [(max(s, c), min(e, occupied_end)) for s, e in ctx.saturated if s < occupied_end and c < e]
    if full:
        if ctx.capacity > 1:
            reasons.append(Reason("capacity_full", resource.id, f"All {ctx.capacity} places are taken.", CAPACITY, *full[0]))
        for a_start, a_end, a_padded, ref in ctx.occupied:
            lo, hi = max(a_start, c), min(a_padded, occupied_end)
            if lo >= hi or not any(s < hi and lo < e for s, e in full):
                continue
            if c < a_end:
                reasons.append(Reason("appointment", ref, "Another appointment.", APPOINTMENT, a_start, a_end))
            elif c < a_padded:
                reasons.append(Reason("padding", ref, "The padding after another appointment.", APPOINTMENT, a_end, a_padded))
    return reasons


def _not_linked(resource_id: str) -> Explanation:
    return Explanation(False, [Reason("not_linked", resource_id, "The resource does not offer this service here.", RESOURCE)])


def candidate_explain(inputs: Inputs, resource_id: str, start: datetime) -> Explanation:
    """``GET /v3/availability/explain``: whether the resource can take the service at ``start``
    (``candidate_is_valid``), whether ``start`` is on its grid (rule 7), and if it cannot, every
    reason with the object behind it."""
    resource = resource_find(inputs, resource_id)
    if resource is None:
        return _not_linked(resource_id)
    settings, c = settings_of(inputs), epoch(start)
    available = candidate_is_valid(inputs, [resource_id], start)
    state = Horizons(inputs, c, c, settings.reach).state(resource, settings)
    on_grid = c in rule_7_grid(state.open, settings.step, c, c, known_from=state.known_from, origin=state.origin)
    if available:
        return Explanation(True, [], on_grid)
    ctx = _context(inputs, resource, shared_expand(inputs, Horizon.around(c, c, settings.reach)), settings)
    return Explanation(False, _reasons(ctx, c), on_grid)


def day_explain(inputs: Inputs, resource_id: str, day: date, zone: str) -> list[StartExplained]:
    """The admin's day view: every start of local ``day`` in ``zone`` for the resource and the
    service, explained as ``candidate_explain`` would. The starts are the resource's own grid
    (rule 7, ``on_grid``) and the day's steps of ``S`` from local midnight (the times a person
    looks for, on the grid or not), in time order; past ones included."""
    settings = settings_of(inputs)
    lo = wall_to_epoch(zone, day, MIDNIGHT, False)
    hi = wall_to_epoch(zone, day + ONE_DAY, MIDNIGHT, False) - 1
    nominal = range(lo, hi + 1, settings.step)
    resource = resource_find(inputs, resource_id)
    if resource is None:
        return [StartExplained(c, _not_linked(resource_id)) for c in nominal]
    horizons = Horizons(inputs, lo, hi, settings.reach)
    state = horizons.state(resource, settings)
    on_grid = set(rule_7_grid(state.open, settings.step, lo, hi, known_from=state.known_from, origin=state.origin))
    ctx = _context(inputs, resource, horizons.near, settings)
    out = []
    for c in sorted(on_grid.union(nominal)):
        if c >= settings.now and contains_point(state.valid, c):
            out.append(StartExplained(c, Explanation(True, [], c in on_grid)))
        else:
            out.append(StartExplained(c, Explanation(False, _reasons(ctx, c), c in on_grid)))
    return out
