"""What the engine answers: slots for the listing, reasons for the explainer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

# The kinds of object an explanation's reason names (``Reason.kind``), with the id in ``Reason.ref``.
APPOINTMENT = "appointment"  # an appointment (its time, or the padding after it)
BLOCK = "block"
RECURRING_BLOCK = "recurring_block"  # ``Reason.start``/``end`` give the occurrence
ALLOCATION = "allocation"  # a single allocation of working time
SHIFT = "shift"  # a weekly shift of the resource
EXTERNAL_BUSY = "external_busy"  # ref = the external calendar
HOURS = "hours"  # the resource's working hours as a whole (ref = the resource)
LOCATION_HOURS = "location_hours"  # the location's opening hours (ref = the location)
LOCATION = "location"  # the location itself (inactive)
RESOURCE = "resource"  # the resource itself (inactive, or not offering the service here)
CAPACITY = "capacity"  # rule 4's capacity, every place taken (ref = the resource)
NOW = "now"  # the time has passed


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
    """Why a start is not bookable: ``code`` (the API's), and the object behind it: its ``kind``,
    its id ``ref`` and the interval ``[start, end)`` (epoch seconds) of it that is in the way."""

    code: str
    ref: str = ""
    message: str = ""
    kind: str = ""
    start: int | None = None
    end: int | None = None


@dataclass(slots=True)
class Explanation:
    available: bool
    reasons: list[Reason] = field(default_factory=list)
    on_grid: bool = False


@dataclass(frozen=True, slots=True)
class StartExplained:
    """One start of a day's explanation (``day_explain``)."""

    start: int  # epoch seconds
    explanation: Explanation
