"""The availability engine: plain data in, slots out.

This module decides what can be booked, for ``GET /v3/availability``, for the booking validator
(``candidate_is_valid``) and for ``GET /v3/availability/explain`` (``candidate_explain``), so the
three never disagree. It imports nothing from Django: the loader (``booking.availability.loader``)
turns rows into the dataclasses below.

Each rule of ``shared/spec/v3-api.md`` ("Semantics", 1 to 11) is one function named after it
(``rule_3_hard_windows``, ``rule_8_valid_starts``, ...) with the rule quoted in its docstring.
Interval arithmetic lives in ``booking.availability.intervals``, wall-clock expansion (zones, DST,
weekly windows, recurring blocks) in ``booking.availability.wallclock``.

Conventions:

- Instants are integer seconds since the Unix epoch, UTC. Inputs carry aware ``datetime``s (or
  epoch seconds); outputs (``Slot``) carry epoch seconds, rendered by ``rule_10_output``.
- Intervals are half-open ``[start, end)``.
- Wall-clock data (weekly windows, recurring blocks) is expanded per local date in its zone
  (``wallclock.wall_to_epoch``: a local time in a spring-forward gap moves forward to the first
  valid instant; an ambiguous one uses its first occurrence for starts, its second for ends).
- Weekdays are 0 = Sunday … 6 = Saturday.
"""

from __future__ import annotations

import hashlib
from bisect import insort
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from booking.availability.intervals import (
    Interval,
    complement,
    contains_point,
    covers,
    intersect,
    intersect_all,
    load_at_least,
    merge,
    overlaps,
    starts_fitting,
    subtract,
)
from booking.availability.wallclock import (  # noqa: F401 - re-exported: the engine's vocabulary
    MIDNIGHT,
    ONE_DAY,
    Moment,
    RecurringRule,
    WeeklyWindow,
    dates_between,
    epoch,
    epoch_ceil,
    instant,
    local_date,
    recurring_rule_occurs,
    recurring_rules_expand,
    seconds,
    wall_to_epoch,
    weekly_window_applies,
    weekly_windows_expand,
    zone_get,
)

UTC = timezone.utc

# Rule 5: which appointments occupy their resources.
BOOKED, RESERVED, HOLD, CANCELLED = "BK", "RS", "IN", "CN"

NONE, RANDOM, BALANCED, COMBINED = "NONE", "RANDOM", "BALANCED", "COMBINED"
ROUND_ROBIN_MODES = (NONE, RANDOM, BALANCED, COMBINED)

# Wall-clock expansion reaches this far around the candidate starts: one day before them (enough
# for an open window that began the day before, the common case), and two days after, so that a
# candidate near the end can still fit its duration and padding (each at most one day). An open
# window that reaches back past that first day is worked out again reaching back ``GRID_REACH``.
HORIZON_BEFORE = timedelta(days=1)
HORIZON_AFTER = timedelta(days=2)
MAX_PADDING = timedelta(days=1)

# Rule 7, how far back the grid looks for the start of an open window, and the date whose local
# midnight is the fixed origin it follows beyond that; see rule_7_grid.
GRID_REACH = timedelta(days=7)
GRID_ORIGIN_DATE = date(2000, 1, 1)


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    """An absolute interval: a single allocation, a block, or an external busy event."""

    start: Moment
    end: Moment
    ref: str = ""  # the object behind it (block id, calendar id, ...), for explanations


@dataclass(frozen=True, slots=True)
class Booked:
    """An appointment occupying a resource (any service, any location, any source)."""

    ref: str
    start: Moment
    end: Moment
    status: str = BOOKED
    padding: int = 0  # minutes: the padding of the appointment's service (0 without one)
    expires_at: Moment | None = None  # holds (IN) lapse then


@dataclass(frozen=True, slots=True)
class ResourceIn:
    """One resource as seen from the requested location and service.

    ``weekly`` and ``allocations`` are already limited to the ones that apply at the location (no
    location, or this one). ``blocks``/``recurring_blocks`` are the resource's own; blocks scoped
    to the location or the service are on ``Inputs``.
    """

    id: str
    zone: str  # effective zone: its own, else its first linked location's, else the organization's
    capacity: int | None = None
    active: bool = True
    hidden: bool = False
    linked: bool = True  # offers the service at the location
    weekly: tuple[WeeklyWindow, ...] = ()
    allocations: tuple[Span, ...] = ()
    blocks: tuple[Span, ...] = ()
    recurring_blocks: tuple[RecurringRule, ...] = ()
    appointments: tuple[Booked, ...] = ()
    external_busy: tuple[Span, ...] = ()  # ref = calendar id


@dataclass(frozen=True, slots=True)
class LocationIn:
    id: str
    zone: str
    weekly: tuple[WeeklyWindow, ...] = ()  # empty = no restriction
    active: bool = True


@dataclass(frozen=True, slots=True)
class ServiceIn:
    id: str
    duration: int  # minutes
    padding: int = 0  # minutes
    capacity: int | None = None  # bookingsPerSlot
    booking_interval: int | None = None  # minutes
    round_robin: str | None = None
    duration_select: bool = False
    duration_min: int | None = None
    duration_max: int | None = None
    duration_interval: int | None = None


@dataclass(frozen=True, slots=True)
class Query:
    """The sanitized request: instants are aware; ``end`` is inclusive (rule 1)."""

    start: datetime
    end: datetime
    now: datetime
    zone: str = "UTC"  # answer zone (rule 10)
    resource_ids: tuple[str, ...] | None = None
    round_robin: str | None = None
    override_duration: int | None = None
    interval: int | None = None
    first_available: bool = False
    allow_padding_overflow: bool = False
    seed: str = ""  # the normalized query (rule 9)


@dataclass(frozen=True, slots=True)
class Inputs:
    location: LocationIn
    service: ServiceIn
    resources: tuple[ResourceIn, ...]  # every resource linked to the service at the location, in answer order
    query: Query
    blocks: tuple[Span, ...] = ()  # scoped to the location or the service
    recurring_blocks: tuple[RecurringRule, ...] = ()  # scoped to the location or the service


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Slot:
    start: int  # epoch seconds
    end: int  # start + D
    resource_ids: tuple[str, ...]


@dataclass(slots=True)
class Result:
    slots: list[Slot]
    duration: int  # minutes (rule 4)
    step: int  # minutes (rule 7)
    mode: str  # rule 9
    days: list[date]  # rule 10: every local date of the request window
    next_hold_expiry: int | None = None  # the earliest future hold expiry seen, rounded down (caching)


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    ref: str = ""
    message: str = ""


@dataclass(slots=True)
class Explanation:
    available: bool
    reasons: list[Reason] = field(default_factory=list)
    on_grid: bool = False


def _spans(spans: Iterable[Span]) -> list[tuple[int, int, str]]:
    return [(epoch(s.start), epoch_ceil(s.end), s.ref) for s in spans]


def _plain(tagged: Iterable[tuple[int, int, str]]) -> list[Interval]:
    return merge((start, end) for start, end, _ in tagged)


# --------------------------------------------------------------------------------------------
# Settings derived from the request (rules 1, 4, 7, 9)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Horizon:
    """How far wall-clock data is expanded around a window ``[lo, hi]`` of candidate starts.

    Everything is complete from ``start`` on: an open window that begins after ``start`` truly
    begins there; one that begins at or before ``start`` may have begun earlier still."""

    start: int
    end: int

    @classmethod
    def around(cls, lo: int, hi: int) -> Horizon:
        return cls(lo - int(HORIZON_BEFORE.total_seconds()), hi + int(HORIZON_AFTER.total_seconds()))

    @classmethod
    def reaching_back(cls, lo: int, hi: int) -> Horizon:
        """Far enough back for rule 7 to tell, for every start from ``lo`` on, whether its open
        window began less than ``GRID_REACH`` before it."""
        return cls(lo - int(GRID_REACH.total_seconds()), hi + int(HORIZON_AFTER.total_seconds()))

    def dates(self, zone: str) -> tuple[date, date]:
        return local_date(self.start, zone), local_date(self.end, zone)


def load_horizon(query: Query) -> tuple[datetime, datetime]:
    """The instants a loader must cover for ``query``: rows overlapping this range can matter. It
    reaches ``GRID_REACH`` (rule 7) and a day's margin before the request, and a day beyond what
    the last candidate's duration and padding can reach; the loader reaches ``MAX_PADDING`` further
    back for appointments, whose padding runs after them."""
    return query.start - GRID_REACH - ONE_DAY, query.end + HORIZON_AFTER + ONE_DAY


def load_horizon_near(query: Query) -> datetime:
    """Where a loader may start instead, for the appointments of a resource whose working windows
    cannot chain across midnight (no weekly window ending at midnight, no single allocation): each
    of its windows lies within one local day (at most 25 hours), so none reaches back further than
    that before the request, and rule 7 never needs its appointments from further back."""
    return query.start - HORIZON_BEFORE - MAX_PADDING - ONE_DAY


def rule_1_request_window(query: Query) -> tuple[int, int]:
    """Rule 1, request window: "A slot is returned iff its start lies in ``[startDate, endDate]``
    and is not in the past. Slots may end after ``endDate``."

    Returns the inclusive range ``[lo, hi]`` of allowed starts (date-only inputs were sanitized by
    the caller to 00:00:00 and 23:59:59 in ``timezone``).
    """
    return max(epoch_ceil(query.start), epoch_ceil(query.now)), epoch(query.end)


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


def rule_7_step(service: ServiceIn, query: Query) -> int:
    """Rule 7: "Step ``S`` = ``interval``, else the service ``bookingInterval``, else ``D``." (minutes)"""
    return query.interval or service.booking_interval or rule_4_duration(service, query)


def rule_9_mode(service: ServiceIn, query: Query) -> str:
    """Rule 9: "roundRobin (default: the service's ``roundRobin``, else ``RANDOM``)"."""
    return query.round_robin or service.round_robin or RANDOM


@dataclass(frozen=True, slots=True)
class Effective:
    """What a query asks for in effect, once the service's defaults are applied (minutes, mode)."""

    duration: int
    step: int
    mode: str


def query_effective(service: ServiceIn, query: Query) -> Effective:
    """Rules 4, 7 and 9: the effective duration, step and mode. Rule 12's normalized query, and so
    rule 9's seed, name these rather than the parameters as given: leaving ``roundRobin`` out and
    passing the service's own default are the same query."""
    return Effective(rule_4_duration(service, query), rule_7_step(service, query), rule_9_mode(service, query))


def seed_number(seed: str) -> int:
    """Rule 9: "Random choices are seeded from the normalized query alone"."""
    return int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big")


_MASK64 = (1 << 64) - 1


def seeded_choice(seed: int, at: int, count: int) -> int:
    """A reproducible index in ``range(count)`` for the choice made at instant ``at`` (splitmix64).

    Each start gets its own draw, so a choice never depends on which other starts were computed
    (``firstAvailable`` stopping early, or a narrower window, pick the same resource)."""
    z = (seed + (at + 1) * 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) % count


@dataclass(frozen=True, slots=True)
class _Settings:
    duration: int  # seconds
    padding: int  # seconds
    step: int  # seconds
    mode: str
    overflow: bool
    now: int  # whole seconds, rounded up: a start before it is in the past
    clock: float  # the exact moment, for hold expiry
    seed: int
    origin: int  # rule 7: the fixed grid origin of COMBINED (the location's)


def _settings(inputs: Inputs) -> _Settings:
    service, query = inputs.service, inputs.query
    return _Settings(
        duration=rule_4_duration(service, query) * 60,
        padding=rule_4_padding(service) * 60,
        step=rule_7_step(service, query) * 60,
        mode=rule_9_mode(service, query),
        overflow=query.allow_padding_overflow,
        now=epoch_ceil(query.now),
        clock=query.now.timestamp(),
        seed=seed_number(query.seed),
        origin=rule_7_origin(inputs.location.zone),
    )


# --------------------------------------------------------------------------------------------
# Rules 2, 3, 5, 6, 7, 8: per resource
# --------------------------------------------------------------------------------------------


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


@dataclass(slots=True)
class _Shared:
    """What rule 3 takes from the location and the service, expanded once per horizon."""

    horizon: Horizon
    location_open: list[Interval] | None  # None = no restriction
    location_tagged: list[tuple[int, int, str]]
    blocked_tagged: list[tuple[int, int, str]]
    blocked: list[Interval]


def _shared(inputs: Inputs, horizon: Horizon) -> _Shared:
    location = inputs.location
    if not location.active:
        location_tagged, location_open = [], []
    elif location.weekly:
        first, last = horizon.dates(location.zone)
        location_tagged = weekly_windows_expand(location.weekly, location.zone, first, last)
        location_open = _plain(location_tagged)
    else:
        location_tagged, location_open = [], None
    blocked_tagged = _spans(inputs.blocks) + recurring_rules_expand(inputs.recurring_blocks, horizon.start, horizon.end)
    return _Shared(horizon, location_open, location_tagged, blocked_tagged, _plain(blocked_tagged))


def rule_3_working_windows(resource: ResourceIn, horizon: Horizon) -> list[tuple[int, int, str]]:
    """Rule 3, first part: "its shifts for that weekday (valid on that date, and applying at this
    location) plus its single allocations", per local date in the resource's zone."""
    if not resource.active or not resource.linked:
        return []
    first, last = horizon.dates(resource.zone)
    return weekly_windows_expand(resource.weekly, resource.zone, first, last) + _spans(resource.allocations)


def _own_blocked(resource: ResourceIn, horizon: Horizon) -> list[tuple[int, int, str, str]]:
    own = _spans(resource.blocks) + recurring_rules_expand(resource.recurring_blocks, horizon.start, horizon.end)
    tagged = [(s, e, ref, "blocked") for s, e, ref in own]
    tagged += [(s, e, ref, "external_busy") for s, e, ref in _spans(resource.external_busy)]
    return tagged


def rule_3_blocked(resource: ResourceIn, shared: _Shared) -> list[tuple[int, int, str, str]]:
    """Rule 3, what is taken away: "blocks and expanded recurring blocks scoped to the resource,
    the location or the service, and [...] busy events of the resource's external calendars", as
    ``(start, end, ref, "blocked" | "external_busy")``."""
    return _own_blocked(resource, shared.horizon) + [(s, e, ref, "blocked") for s, e, ref in shared.blocked_tagged]


def rule_3_hard_windows(resource: ResourceIn, shared: _Shared) -> list[Interval]:
    """Rule 3, hard windows: "per resource, per local date in the resource's zone: its shifts for
    that weekday (valid on that date, and applying at this location) plus its single allocations;
    intersected with the location's ``weeklyAvailability`` (in the location's zone) when that is
    non-empty; minus blocks and expanded recurring blocks scoped to the resource, the location or
    the service, and minus busy events of the resource's external calendars. Windows that touch
    across midnight merge, so overnight work is one window."

    ``merge`` joins touching windows, which is what makes 22:00–24:00 and 00:00–06:00 one window.
    """
    working = _plain(rule_3_working_windows(resource, shared.horizon))
    if shared.location_open is not None:
        working = intersect(working, shared.location_open)
    if not working:
        return []
    own = _own_blocked(resource, shared.horizon)
    taken = merge([(s, e) for s, e, _, _ in own] + shared.blocked) if own else shared.blocked
    return subtract(working, taken)


def appointment_is_active(appointment: Booked, now: float) -> bool:
    """Rule 5: "status BK or RS, or IN not yet expired"."""
    if appointment.status in (BOOKED, RESERVED):
        return True
    if appointment.status == HOLD:
        return appointment.expires_at is None or seconds(appointment.expires_at) > now
    return False


def rule_5_load(resource: ResourceIn, now: float) -> list[Interval]:
    """Rule 5, load: "Every active appointment of the resource (status BK or RS, or IN not yet
    expired; any service, any location, any source including EMR-fetched ones) occupies
    ``[start, end + its service's padding)``. An EMR-fetched appointment with no service has
    padding 0." (The loader gives such an appointment ``padding`` 0.)"""
    return [
        (epoch(a.start), epoch_ceil(a.end) + a.padding * 60)
        for a in resource.appointments
        if appointment_is_active(a, now)
    ]


def rule_6_open_windows(hard: list[Interval], saturated: list[Interval]) -> list[Interval]:
    """Rule 6: "Open windows = the parts of the hard windows where the load is below ``C``."

    ``saturated`` is where the load is at least ``C`` (``intervals.load_at_least``)."""
    return subtract(hard, saturated)


def rule_7_origin(zone: str) -> int:
    """Rule 7: the fixed grid origin in ``zone``, the local midnight of ``GRID_ORIGIN_DATE``."""
    return wall_to_epoch(zone, GRID_ORIGIN_DATE, MIDNIGHT, False)


def rule_7_grid(
    open_windows: list[Interval], step: int, lo: int, hi: int, *, known_from: int, origin: int
) -> list[int]:
    """Rule 7, grid: "Candidate starts are ``w + k·S`` (absolute minutes) from the start ``w`` of
    each open window. The grid restarts at the start of every open window; "now" and the request
    window only filter candidates, they never move the grid."

    Returns the grid points inside each open window that fall in ``[lo, hi]``.

    Decision, for open windows that never close: a window can run on for days (a resource open
    around the clock, with working hours that touch across every midnight), and then its start
    may lie far before anything the request is about. The grid looks back at most ``GRID_REACH``
    (7 days): a candidate ``c`` in an open window that began at ``w`` is on the grid iff
    ``c = w + k·S`` when ``c - w < GRID_REACH``, and iff ``c = origin + k·S`` otherwise, where
    ``origin`` is the local midnight of ``GRID_ORIGIN_DATE`` (2000-01-01) in the resource's zone
    (for ``COMBINED``, whose grid is on the windows several resources share, in the location's
    zone). Either way a candidate's place on the grid depends on the data alone: never on the
    request window, never on "now".

    ``open_windows`` must be complete from ``known_from`` on (a window beginning at or before it
    may have begun earlier), and ``known_from <= lo - GRID_REACH`` whenever such a window reaches
    ``[lo, hi]`` (``Horizon.reaching_back``): it is then more than ``GRID_REACH`` old at every
    candidate, and follows the origin.
    """
    reach = int(GRID_REACH.total_seconds())
    points: list[int] = []
    for start, end in open_windows:
        if end <= lo or start > hi:
            continue
        stop = end if end <= hi else hi + 1
        if start > known_from:  # its true start: w + k·S for less than GRID_REACH
            first = start if start >= lo else lo + (start - lo) % step
            own_stop = start + reach
            if own_stop >= stop:
                points.extend(range(first, stop, step))
                continue
            points.extend(range(first, own_stop, step))
            tail = own_stop if own_stop > lo else lo
        else:
            tail = start if start > lo else lo
        points.extend(range(tail + (origin - tail) % step, stop, step))  # origin + k·S from then on
    return points


def reaches_back(open_windows: list[Interval], known_from: int, lo: int, hi: int) -> bool:
    """Whether an open window that may have begun before ``known_from`` holds starts in ``[lo, hi]``
    (rule 7 then needs the data from further back: ``Horizon.reaching_back``)."""
    for start, end in open_windows:
        if start > known_from or start > hi:
            return False
        if end > lo:
            return True
    return False


def rule_8_valid_starts(
    hard: list[Interval], saturated: list[Interval], duration: int, padding: int, overflow: bool
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
    """
    open_windows = rule_6_open_windows(hard, saturated)
    if not overflow or padding == 0:
        return starts_fitting(open_windows, duration + padding)
    return intersect(starts_fitting(open_windows, duration), starts_fitting(complement(saturated), duration + padding))


@dataclass(slots=True)
class ResourceState:
    """Rules 3 to 8 worked out for one resource over one horizon."""

    resource: ResourceIn
    capacity: int
    hard: list[Interval]
    load: list[Interval]
    saturated: list[Interval]
    open: list[Interval]
    valid: list[Interval]
    known_from: int  # the horizon's start: windows are complete from there on (rule 7)
    origin: int  # rule 7: the fixed grid origin in the resource's zone


def resource_state(resource: ResourceIn, inputs: Inputs, shared: _Shared, settings: _Settings) -> ResourceState:
    capacity = rule_4_capacity(inputs.service, resource)
    hard = rule_3_hard_windows(resource, shared)
    load = rule_5_load(resource, settings.clock) if hard else []
    saturated = load_at_least(load, capacity) if load else []
    open_windows = rule_6_open_windows(hard, saturated)
    valid = rule_8_valid_starts(hard, saturated, settings.duration, settings.padding, settings.overflow)
    return ResourceState(
        resource, capacity, hard, load, saturated, open_windows, valid, shared.horizon.start, rule_7_origin(resource.zone)
    )


class _Horizons:
    """The shared data of the horizon around ``[lo, hi]``, and, only when a grid needs it, of the
    horizon reaching back ``GRID_REACH`` (rule 7)."""

    def __init__(self, inputs: Inputs, lo: int, hi: int):
        self.inputs, self.lo, self.hi = inputs, lo, hi
        self.near = _shared(inputs, Horizon.around(lo, hi))
        self._far: _Shared | None = None

    @property
    def far(self) -> _Shared:
        if self._far is None:
            self._far = _shared(self.inputs, Horizon.reaching_back(self.lo, self.hi))
        return self._far

    def state(self, resource: ResourceIn, settings: _Settings) -> ResourceState:
        """The resource's state, complete enough for its grid over ``[lo, hi]``."""
        state = resource_state(resource, self.inputs, self.near, settings)
        if reaches_back(state.open, state.known_from, self.lo, self.hi):
            state = resource_state(resource, self.inputs, self.far, settings)
        return state

    def states_far(self, resources: Iterable[ResourceIn], settings: _Settings) -> list[ResourceState]:
        return [resource_state(r, self.inputs, self.far, settings) for r in resources]


# --------------------------------------------------------------------------------------------
# Rule 9: from per-resource valid starts to slots
# --------------------------------------------------------------------------------------------


def rule_9_balanced_counts(resources: Iterable[ResourceIn], query: Query) -> dict[str, int]:
    """Rule 9, BALANCED: "the fewest active appointments starting in the request window (any
    service, any location)"."""
    lo, hi, now = epoch_ceil(query.start), epoch(query.end), query.now.timestamp()
    return {
        r.id: sum(1 for a in r.appointments if lo <= epoch(a.start) <= hi and appointment_is_active(a, now))
        for r in resources
    }


def rule_9_round_robin(
    states: list[ResourceState],
    settings: _Settings,
    counts: dict[str, int],
    lo: int,
    hi: int,
    first_only: bool = False,
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
    """
    duration = settings.duration
    if not states:
        return []
    if settings.mode == COMBINED:
        together = intersect_all([s.open for s in states])
        valid = intersect_all([s.valid for s in states])
        ids = tuple(s.resource.id for s in states)
        known_from = max(s.known_from for s in states)
        slots = []
        for c in rule_7_grid(together, settings.step, lo, hi, known_from=known_from, origin=settings.origin):
            if contains_point(valid, c):
                slots.append(Slot(c, c + duration, ids))
                if first_only:
                    break
        return slots

    starts = set()
    for state in states:
        starts.update(rule_7_grid(state.open, settings.step, lo, hi, known_from=state.known_from, origin=state.origin))
    if not starts:
        return []
    # Rank resources: answer order for NONE and RANDOM, (count, answer order) for BALANCED, so the
    # eligible list kept sorted by rank has the least-loaded resources first.
    order = list(range(len(states)))
    if settings.mode == BALANCED:
        order.sort(key=lambda i: (counts.get(states[i].resource.id, 0), i))
    rank_of = {index: rank for rank, index in enumerate(order)}
    ranked_ids = [states[i].resource.id for i in order]
    ranked_counts = [counts.get(rid, 0) for rid in ranked_ids]

    events: list[tuple[int, int, int]] = []  # (time, 0 = leaves | 1 = joins, rank)
    for index, state in enumerate(states):
        rank = rank_of[index]
        for a, b in state.valid:
            if b > lo and a <= hi:
                events.append((a, 1, rank))
                events.append((b, 0, rank))
    events.sort()

    slots: list[Slot] = []
    eligible: list[int] = []  # ranks of the resources valid at the current start, sorted
    e, n_events = 0, len(events)
    for c in sorted(starts):
        while e < n_events and events[e][0] <= c:
            _, joins, rank = events[e]
            if joins:
                insort(eligible, rank)
            else:
                eligible.remove(rank)
            e += 1
        if not eligible:
            continue
        if settings.mode == NONE:
            chosen = tuple(ranked_ids[rank] for rank in eligible)
        elif settings.mode == BALANCED:
            fewest = ranked_counts[eligible[0]]
            tied = 1
            while tied < len(eligible) and ranked_counts[eligible[tied]] == fewest:
                tied += 1
            chosen = (ranked_ids[eligible[seeded_choice(settings.seed, c, tied)]],)
        else:  # RANDOM
            chosen = (ranked_ids[eligible[seeded_choice(settings.seed, c, len(eligible))]],)
        slots.append(Slot(c, c + duration, chosen))
        if first_only:
            break
    return slots


# --------------------------------------------------------------------------------------------
# The answer
# --------------------------------------------------------------------------------------------


def request_days(query: Query) -> list[date]:
    """Rule 10: "one key per local date (in ``timezone``) from ``startDate`` to ``endDate``"."""
    return list(dates_between(query.start.astimezone(zone_get(query.zone)).date(), query.end.astimezone(zone_get(query.zone)).date()))


def next_hold_expiry(resources: Iterable[ResourceIn], now: float) -> int | None:
    """The earliest moment an active hold lapses, in whole seconds rounded down: an answer computed
    now is stale from then on (rounding up would keep it up to a second after the hold lapsed)."""
    upcoming = [
        epoch(a.expires_at)
        for r in resources
        for a in r.appointments
        if a.status == HOLD and a.expires_at is not None and seconds(a.expires_at) > now
    ]
    return min(upcoming) if upcoming else None


def _slots_between(
    inputs: Inputs, candidates: list[ResourceIn], settings: _Settings, counts: dict[str, int], lo: int, hi: int,
    first_only: bool,
) -> list[Slot]:
    horizons = _Horizons(inputs, lo, hi)
    if settings.mode == COMBINED:  # the grid is on the windows they share
        states = [resource_state(r, inputs, horizons.near, settings) for r in candidates]
        together = intersect_all([s.open for s in states])
        if reaches_back(together, horizons.near.horizon.start, lo, hi):
            states = horizons.states_far(candidates, settings)
    else:
        states = [horizons.state(r, settings) for r in candidates]
    return rule_9_round_robin(states, settings, counts, lo, hi, first_only)


def rule_11_first_available(
    inputs: Inputs, candidates: list[ResourceIn], settings: _Settings, counts: dict[str, int], lo: int, hi: int
) -> list[Slot]:
    """Rule 11: "``firstAvailable=true``: ``availableTimes`` holds only the earliest slot (or
    none) [...]. Stop computing early."

    Works through the window in growing chunks (1, 2, 4, ... days) and stops at the first chunk
    with a slot. Each chunk is computed exactly as a request for that chunk alone would be, and a
    start's random draw depends on the start only, so the slot is the one the full answer begins
    with.
    """
    chunk = 86400
    while lo <= hi:
        upper = min(hi, lo + chunk - 1)
        found = _slots_between(inputs, candidates, settings, counts, lo, upper, first_only=True)
        if found:
            return found[:1]
        lo = upper + 1
        chunk *= 2
    return []


def availability_compute(inputs: Inputs) -> Result:
    """``GET /v3/availability``: every slot of the request window (rules 1 to 11)."""
    query = inputs.query
    settings = _settings(inputs)
    candidates = rule_2_candidate_resources(inputs)
    counts = rule_9_balanced_counts(candidates, query) if settings.mode == BALANCED else {}
    lo, hi = rule_1_request_window(query)
    if lo > hi or not candidates:
        slots = []
    elif query.first_available:
        slots = rule_11_first_available(inputs, candidates, settings, counts, lo, hi)
    else:
        slots = _slots_between(inputs, candidates, settings, counts, lo, hi, first_only=False)
    return Result(
        slots=slots,
        duration=settings.duration // 60,
        step=settings.step // 60,
        mode=settings.mode,
        days=request_days(query),
        next_hold_expiry=next_hold_expiry(candidates, settings.clock),
    )


def _render(seconds: int, zone: ZoneInfo, memo: dict[int, str]) -> str:
    text = memo.get(seconds)
    if text is None:
        text = memo[seconds] = datetime.fromtimestamp(seconds, zone).isoformat()
    return text


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
    days: dict[str, list] = {day.isoformat(): [] for day in result.days}
    times = []
    for slot in sorted(result.slots, key=lambda s: s.start):
        start, end = _render(slot.start, tz, memo), _render(slot.end, tz, memo)
        ids = list(slot.resource_ids)
        times.append({"start_time": start, "end_time": end, "LocationId": location_id, "ResourceIds": ids})
        day = days.get(start[:10])
        if day is not None:
            day.append({"start_time": start, "end_time": end, "ResourceIds": ids})
    return {"ServiceId": service_id, "availableTimes": times, "availableDays": days}


# --------------------------------------------------------------------------------------------
# One candidate: booking validation and explanations
# --------------------------------------------------------------------------------------------


def _one_candidate(inputs: Inputs, start: datetime) -> tuple[_Settings, _Shared, int]:
    settings = _settings(inputs)
    c = epoch(start)
    return settings, _shared(inputs, Horizon.around(c, c)), c


def _resource(inputs: Inputs, resource_id: str) -> ResourceIn | None:
    return next((r for r in inputs.resources if r.id == resource_id), None)


def candidate_is_valid(inputs: Inputs, resource_ids: Iterable[str], start: datetime) -> bool:
    """The booking validator: whether every one of ``resource_ids`` can take the service at
    ``start`` under the same rules the listing uses (1 to 8), except that the grid is NOT required:
    "any start where the resource(s) are valid can be booked"."""
    settings, shared, c = _one_candidate(inputs, start)
    if c < settings.now:
        return False
    ids = list(resource_ids)
    if not ids:
        return False
    for resource_id in ids:
        resource = _resource(inputs, resource_id)
        if resource is None:
            return False
        if not contains_point(resource_state(resource, inputs, shared, settings).valid, c):
            return False
    return True


def candidate_resources_choose(inputs: Inputs, start: datetime) -> tuple[str, ...] | None:
    """A booking without ``ResourceIds``: "one resource is chosen as ``roundRobin`` would" among
    the candidate resources valid at ``start`` (NONE takes the first of them in answer order;
    COMBINED needs explicit ``ResourceIds``, so it is refused earlier)."""
    settings, shared, c = _one_candidate(inputs, start)
    if c < settings.now:
        return None
    candidates = rule_2_candidate_resources(inputs)
    valid = [r for r in candidates if contains_point(resource_state(r, inputs, shared, settings).valid, c)]
    if not valid:
        return None
    if settings.mode == BALANCED:
        counts = rule_9_balanced_counts(valid, inputs.query)
        fewest = min(counts.values())
        tied = [r for r in valid if counts[r.id] == fewest]
        return (tied[seeded_choice(settings.seed, c, len(tied))].id,)
    if settings.mode == RANDOM:
        return (valid[seeded_choice(settings.seed, c, len(valid))].id,)
    return (valid[0].id,)


def candidate_explain(inputs: Inputs, resource_id: str, start: datetime) -> Explanation:
    """``GET /v3/availability/explain``: whether the resource can take the service at ``start``,
    and if not, every reason with the object behind it. ``available`` is ``candidate_is_valid``;
    the reasons re-read the same rule functions piece by piece."""
    settings, shared, c = _one_candidate(inputs, start)
    resource = _resource(inputs, resource_id)
    if resource is None:
        return Explanation(False, [Reason("not_linked", resource_id, "The resource does not offer this service here.")])
    available = candidate_is_valid(inputs, [resource_id], start)
    reasons: list[Reason] = []
    duration, padding = settings.duration, settings.padding
    occupied_end = c + duration + padding  # rule 8: [c, c + D + P) must stay below capacity
    hard_end = c + duration if settings.overflow else occupied_end  # and this part inside working hours

    if c < settings.now:
        reasons.append(Reason("in_past", "", "The time has passed."))
    if not resource.linked:
        reasons.append(Reason("not_linked", resource.id, "The resource does not offer this service at this location."))
    if not resource.active:
        reasons.append(Reason("inactive", resource.id, "The resource is inactive."))
    if not inputs.location.active:
        reasons.append(Reason("location_closed", inputs.location.id, "The location is inactive."))

    working = _plain(rule_3_working_windows(resource, shared.horizon)) if resource.active else []
    if resource.active and resource.linked and not covers(working, c, hard_end):
        reasons.append(Reason("outside_working_hours", resource.id, "Outside the resource's working hours."))
    if inputs.location.active and shared.location_open is not None and not covers(shared.location_open, c, hard_end):
        reasons.append(Reason("location_closed", inputs.location.id, "Outside the location's opening hours."))
    seen = set()
    for s, e, ref, code in rule_3_blocked(resource, shared):
        if s < hard_end and c < e and (code, ref) not in seen:
            seen.add((code, ref))
            text = "Blocked." if code == "blocked" else "Busy in an external calendar."
            reasons.append(Reason(code, ref, text))

    capacity = rule_4_capacity(inputs.service, resource)
    saturated = load_at_least(rule_5_load(resource, settings.clock), capacity)
    if overlaps(saturated, c, occupied_end):
        if capacity > 1:
            reasons.append(Reason("capacity_full", resource.id, f"All {capacity} places are taken."))
        for a in resource.appointments:
            if not appointment_is_active(a, settings.clock):
                continue
            a_start, a_end = epoch(a.start), epoch_ceil(a.end)
            a_padded = a_end + a.padding * 60
            shared_lo, shared_hi = max(a_start, c), min(a_padded, occupied_end)
            if shared_lo >= shared_hi or not overlaps(saturated, shared_lo, shared_hi):
                continue
            if c < a_end:
                reasons.append(Reason("appointment", a.ref, "Another appointment."))
            elif c < a_padded:
                reasons.append(Reason("padding", a.ref, "The padding after another appointment."))

    state = _Horizons(inputs, c, c).state(resource, settings)
    on_grid = c in set(rule_7_grid(state.open, settings.step, c, c, known_from=state.known_from, origin=state.origin))
    if available:
        reasons = []
    elif not reasons:  # every way to fail is named above; keep the answer honest if that ever breaks
        reasons.append(Reason("unavailable", resource.id, "Not bookable."))
    return Explanation(available, reasons, on_grid)
