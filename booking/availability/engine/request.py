"""What a request asks for in effect: rules 4, 7 and 9 applied to the service's defaults, once per
request (``Settings``, in seconds), and as the normalized query names them (``Effective``)."""

from __future__ import annotations

from dataclasses import dataclass

from booking.availability.wallclock import epoch_ceil

from .inputs import Inputs, Query, ServiceIn, minutes_to_seconds
from .roundrobin import seed_number
from .rules import rule_4_duration, rule_4_padding, rule_7_origin, rule_7_step, rule_9_mode


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


@dataclass(frozen=True, slots=True)
class Settings:
    """Rules 4, 7 and 9 worked out for one request, in seconds."""

    duration: int
    padding: int
    step: int
    mode: str
    overflow: bool
    now: int  # whole seconds, rounded up: a start before it is in the past
    clock: float  # the exact moment, for hold expiry
    seed: int
    origin: int  # rule 7: the fixed grid origin of COMBINED (the location's)

    @property
    def reach(self) -> int:
        """How far after a start rule 8 looks: ``[c, c + D + P)``."""
        return self.duration + self.padding


def settings_of(inputs: Inputs) -> Settings:
    service, query = inputs.service, inputs.query
    return Settings(
        duration=minutes_to_seconds(rule_4_duration(service, query)),
        padding=minutes_to_seconds(rule_4_padding(service)),
        step=minutes_to_seconds(rule_7_step(service, query)),
        mode=rule_9_mode(service, query),
        overflow=query.allow_padding_overflow,
        now=epoch_ceil(query.now),
        clock=query.now.timestamp(),
        seed=seed_number(query.seed),
        origin=rule_7_origin(inputs.location.zone),
    )
