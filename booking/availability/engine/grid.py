"""Rule 7's grid, and how far around a request the wall-clock data is expanded for it.

Wall-clock data is expanded per local date, over the dates that touch the candidate starts and
what the last of them needs to fit its duration and padding (rule 8): the whole local day of the
first start, in each zone, is complete, so an open window that begins after the first start truly
begins there. Only an open window that may have begun before it (one running on from the day
before) is worked out again reaching back ``GRID_REACH`` (rule 7).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache

from booking.availability.intervals import Interval
from booking.availability.wallclock import MIDNIGHT, ONE_DAY, local_date, wall_to_epoch

from .inputs import Query

# What a loader reads around a request (``load_horizon``): the grid's reach back, and after the
# window what a start's duration and padding can reach (each at most a day).
HORIZON_BEFORE = timedelta(days=1)
HORIZON_AFTER = timedelta(days=2)
MAX_PADDING = timedelta(days=1)

# How far back the grid looks for the start of an open window, and the date whose local midnight
# is the fixed origin it follows beyond that; see ``grid_points``.
GRID_REACH = timedelta(days=7)
GRID_ORIGIN_DATE = date(2000, 1, 1)

_REACH = int(GRID_REACH.total_seconds())


@dataclass(frozen=True, slots=True)
class Horizon:
    """How far wall-clock data is expanded around a window ``[lo, hi]`` of candidate starts.

    Everything is complete from ``start`` on: an open window that begins after ``start`` truly
    begins there; one that begins at or before ``start`` may have begun earlier still."""

    start: int
    end: int

    @classmethod
    def around(cls, lo: int, hi: int, reach: int) -> Horizon:
        """Just what the starts ``[lo, hi]`` need, each fitting ``reach`` seconds after it (``D + P``).

        Its start is one second before ``lo``: the local day of that second is expanded whole, so
        a window that begins at ``lo`` itself is known to begin there (the day before is expanded
        when ``lo`` is a local midnight, and a window running on from it is seen to)."""
        return cls(lo - 1, hi + reach)

    @classmethod
    def reaching_back(cls, lo: int, hi: int, reach: int) -> Horizon:
        """Far enough back for rule 7 to tell, for every start from ``lo`` on, whether its open
        window began less than ``GRID_REACH`` before it."""
        return cls(lo - _REACH, hi + reach)

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


@cache
def grid_origin(zone: str) -> int:
    """The fixed grid origin in ``zone``: the local midnight of ``GRID_ORIGIN_DATE`` (a constant
    per zone, worked out once)."""
    return wall_to_epoch(zone, GRID_ORIGIN_DATE, MIDNIGHT, False)


def grid_points(open_windows: list[Interval], step: int, lo: int, hi: int, *, known_from: int, origin: int) -> list[int]:
    """The grid points ``w + k·S`` inside each open window that fall in ``[lo, hi]``.

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
    points: list[int] = []
    for start, end in open_windows:
        if end <= lo or start > hi:
            continue
        stop = end if end <= hi else hi + 1
        if start > known_from:  # its true start: w + k·S for less than GRID_REACH
            first = start if start >= lo else lo + (start - lo) % step
            own_stop = start + _REACH
            if own_stop >= stop:
                points.extend(range(first, stop, step))
                continue
            points.extend(range(first, own_stop, step))
            tail = max(lo, own_stop)
        else:
            tail = max(lo, start)
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
