"""The engine's inputs: plain dataclasses the loader (``booking.availability.loader``) fills from
rows, and the one conversion between the minutes they carry and the seconds the engine computes in.

Instants are an aware ``datetime`` or epoch seconds (``wallclock.Moment``); intervals are half-open.
Weekly windows and recurring blocks are ``wallclock.WeeklyWindow`` and ``wallclock.RecurringRule``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from booking.availability.wallclock import Moment, RecurringRule, WeeklyWindow

# Rule 5: which appointments occupy their resources.
BOOKED, RESERVED, HOLD, CANCELLED = "BK", "RS", "IN", "CN"

NONE, RANDOM, BALANCED, COMBINED = "NONE", "RANDOM", "BALANCED", "COMBINED"
ROUND_ROBIN_MODES = (NONE, RANDOM, BALANCED, COMBINED)

MINUTE = 60  # seconds


def minutes_to_seconds(minutes: int) -> int:
    """Durations, paddings and steps arrive in minutes (the API's unit) and are computed in
    seconds: this is the only place that converts them."""
    return minutes * MINUTE


def seconds_to_minutes(seconds: int) -> int:
    return seconds // MINUTE


class Span(NamedTuple):
    """An absolute interval: a single allocation, a block, or an external busy event (a named
    tuple, as ``WeeklyWindow``)."""

    start: Moment
    end: Moment
    ref: str = ""  # the object behind it (allocation id, block id, calendar id), for explanations


class Booked(NamedTuple):
    """An appointment occupying a resource (any service, any location, any source).

    A named tuple rather than a dataclass: the loader makes one per appointment row of every
    candidate resource (thousands for a month), and a tuple is made in a third of the time."""

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
