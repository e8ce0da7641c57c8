"""The availability engine: plain data in, slots out.

It decides what can be booked, for ``GET /v3/availability`` (``availability_compute``), for the
booking validator (``candidate_is_valid``, ``candidate_resources_choose``) and for
``GET /v3/availability/explain`` and the admin's day view (``candidate_explain``, ``day_explain``),
so they never disagree. It imports nothing from Django: the loader (``booking.availability.loader``)
turns rows into the input dataclasses.

- ``inputs``: the input dataclasses, and minutes ↔ seconds (the one conversion).
- ``rules``: ``shared/spec/v3-api.md`` "Semantics" 1 to 11, one function per rule.
- ``grid``: rule 7's grid and the horizons wall-clock data is expanded over.
- ``state``: rules 3 to 8 assembled per resource.
- ``roundrobin``: rule 9's choice (``choose``), for the listing and the booking validator.
- ``compute``: the listing and the booking validator.
- ``explain``: the reasons, from the same rule functions.
- ``outputs``: slots, results, reasons.

Instants are integer epoch seconds (inputs may carry aware datetimes); intervals are half-open.
Interval arithmetic is ``booking.availability.intervals``; wall-clock expansion, zones and instants
are ``booking.availability.wallclock`` (import them from there).
"""

from .compute import (
    availability_compute,
    candidate_is_valid,
    candidate_resources_choose,
    next_hold_expiry,
    slots_between,
)
from .explain import candidate_explain, day_explain
from .grid import (
    GRID_ORIGIN_DATE,
    GRID_REACH,
    HORIZON_AFTER,
    HORIZON_BEFORE,
    MAX_PADDING,
    Horizon,
    load_horizon,
    load_horizon_near,
)
from .inputs import (
    BALANCED,
    BOOKED,
    CANCELLED,
    COMBINED,
    HOLD,
    NONE,
    RANDOM,
    RESERVED,
    ROUND_ROBIN_MODES,
    Booked,
    Inputs,
    LocationIn,
    Query,
    ResourceIn,
    ServiceIn,
    Span,
    minutes_to_seconds,
    seconds_to_minutes,
)
from .outputs import Explanation, Reason, Result, Slot, StartExplained
from .request import Effective, Settings, query_effective, settings_of
from .roundrobin import Ranking, choose, seed_number, seeded_choice
from .rules import (
    appointment_is_active,
    candidates_among,
    override_duration_error,
    request_days,
    rule_1_request_window,
    rule_2_candidate_resources,
    rule_3_blocked,
    rule_3_hard_windows,
    rule_3_working_windows,
    rule_4_capacity,
    rule_4_duration,
    rule_4_padding,
    rule_5_load,
    rule_5_occupied,
    rule_6_open_windows,
    rule_7_grid,
    rule_7_origin,
    rule_7_step,
    rule_8_valid_starts,
    rule_9_balanced_counts,
    rule_9_mode,
    rule_9_round_robin,
    rule_10_output,
    rule_11_first_available,
)
from .state import Horizons, ResourceState, Shared, resource_state, shared_expand

__all__ = [
    "BALANCED",
    "BOOKED",
    "CANCELLED",
    "COMBINED",
    "GRID_ORIGIN_DATE",
    "GRID_REACH",
    "HOLD",
    "HORIZON_AFTER",
    "HORIZON_BEFORE",
    "MAX_PADDING",
    "NONE",
    "RANDOM",
    "RESERVED",
    "ROUND_ROBIN_MODES",
    "Booked",
    "Effective",
    "Explanation",
    "Horizon",
    "Horizons",
    "Inputs",
    "LocationIn",
    "Query",
    "Ranking",
    "Reason",
    "ResourceIn",
    "ResourceState",
    "Result",
    "ServiceIn",
    "Settings",
    "Shared",
    "Slot",
    "Span",
    "StartExplained",
    "appointment_is_active",
    "availability_compute",
    "candidate_explain",
    "candidate_is_valid",
    "candidate_resources_choose",
    "candidates_among",
    "choose",
    "day_explain",
    "load_horizon",
    "load_horizon_near",
    "minutes_to_seconds",
    "next_hold_expiry",
    "override_duration_error",
    "query_effective",
    "request_days",
    "resource_state",
    "rule_1_request_window",
    "rule_2_candidate_resources",
    "rule_3_blocked",
    "rule_3_hard_windows",
    "rule_3_working_windows",
    "rule_4_capacity",
    "rule_4_duration",
    "rule_4_padding",
    "rule_5_load",
    "rule_5_occupied",
    "rule_6_open_windows",
    "rule_7_grid",
    "rule_7_origin",
    "rule_7_step",
    "rule_8_valid_starts",
    "rule_9_balanced_counts",
    "rule_9_mode",
    "rule_9_round_robin",
    "rule_10_output",
    "rule_11_first_available",
    "seconds_to_minutes",
    "seed_number",
    "seeded_choice",
    "settings_of",
    "shared_expand",
    "slots_between",
]
