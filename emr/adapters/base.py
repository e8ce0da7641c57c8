"""The one interface every EMR adapter implements, and the typed results it returns.

Adapters are HTTP clients of an EMR: plain data in (a ``ConnectionConfig``), dataclasses out, no
ORM and no Django models. The services in ``emr.services`` turn their results into our models.

Every failure an adapter reports is an ``AdapterError`` whose message is written for the person
reading the job in the admin (and the ``error`` of the failed live-fetch event).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time

# --- configuration ---------------------------------------------------------------------------


class AuthMode:
    SMART_BACKEND = "smart_backend"  # RS384 JWT client assertion (SMART Backend Services)
    CLIENT_SECRET = "client_secret"  # client_credentials with HTTP Basic client_id:client_secret
    NONE = "none"  # an open FHIR server

    ALL = (SMART_BACKEND, CLIENT_SECRET, NONE)


@dataclass(frozen=True)
class ConnectionConfig:
    """Everything an adapter needs to talk to one EMR (decrypted credentials included)."""

    key: str  # stable id of the connection: names its rate-limit bucket and token cache entry
    vendor: str
    base_url: str
    timezone: str = "UTC"  # the EMR's zone: wall-clock times of schedules are read in it
    auth: str = AuthMode.SMART_BACKEND
    client_id: str = ""
    client_secret: str = ""
    private_key_pem: str = ""
    kid: str = ""
    token_url: str = ""  # empty: discovered from .well-known/smart-configuration
    scope: str = "system/*.read"
    mrn_system: str = ""  # identifier system of MRNs; empty: the identifier typed MR, else the first
    page_size: int = 100
    max_pages: int = 200
    rate_per_minute: int | None = None  # None: no client-side limit
    timeout_seconds: float = 30.0
    transient_retries: int = 3  # retries after network errors, timeouts and 5xx


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmrAppointment:
    ehr_id: str
    start: datetime  # aware
    end: datetime  # aware, after start
    status: str  # the EMR's own status code (FHIR Appointment.status)
    occupies_time: bool  # False for cancelled, no-show, entered-in-error, waitlist
    visit_type_code: str = ""
    visit_type_display: str = ""
    reason: str = ""
    patient_ehr_id: str = ""
    patient_mrn: str = ""
    patient_name: str = ""
    provider_ehr_id: str | None = None
    provider_name: str = ""
    provider_first_name: str = ""
    provider_last_name: str = ""
    secondary_provider_ehr_id: str | None = None
    secondary_provider_name: str = ""
    location_ehr_id: str | None = None
    location_name: str = ""
    created_at: datetime | None = None
    created_by: str = ""
    locked: bool = False


@dataclass(frozen=True)
class EmrVisitTypeRule:
    """Part of a shift reserved for ``total_visits`` visits of one visit type."""

    start_time: time
    end_time: time  # 00:00 = midnight at the end of the day
    total_visits: int
    visit_type_code: str
    visit_type_display: str = ""


@dataclass(frozen=True)
class EmrShift:
    """A weekly working window, in wall-clock time of its provider's zone (``EmrProvider.timezone``)."""

    weekday: int  # 0 = Monday … 6 = Sunday (``date.weekday()``)
    start_time: time
    end_time: time  # 00:00 = midnight at the end of the day
    location_ehr_id: str | None = None
    valid_from: date | None = None  # also the anchor of every-N-weeks recurrences
    valid_until: date | None = None
    every_weeks: int = 1
    rules: tuple[EmrVisitTypeRule, ...] = ()


@dataclass(frozen=True)
class EmrProvider:
    ehr_id: str
    name: str
    first_name: str = ""
    last_name: str = ""
    npi: str = ""
    active: bool = True
    has_schedule: bool = False  # the EMR publishes a schedule for them (``shifts`` is authoritative)
    # The zone ``shifts`` are wall times in (their schedules' location zone); None without a schedule.
    timezone: str | None = None
    shifts: tuple[EmrShift, ...] = ()


@dataclass(frozen=True)
class EmrLocation:
    ehr_id: str
    name: str
    address: str = ""
    timezone: str | None = None
    active: bool = True


@dataclass
class CallStats:
    """What an adapter did over HTTP (for job counts and benchmarks)."""

    requests: int = 0
    pages: int = 0
    tokens_minted: int = 0
    retries_429: int = 0
    retries_401: int = 0
    retries_other: int = 0
    by_type: dict = field(default_factory=dict)


# --- errors ----------------------------------------------------------------------------------


class AdapterError(Exception):
    """A failed EMR call; ``str(error)`` is the message shown to people."""

    def __init__(self, message: str, *, status: int | None = None, detail: str = ""):
        super().__init__(message)
        self.message = message
        self.status = status
        self.detail = detail  # the EMR's own words (OperationOutcome / OAuth error), when any

    def __str__(self) -> str:
        return self.message


class EmrAuthError(AdapterError):
    """The EMR rejected our credentials: someone must log in again / fix the connection."""


class EmrRateLimited(AdapterError):
    """The EMR kept answering 429 (or our own bucket could not grant a call in time)."""


class EmrUnavailable(AdapterError):
    """Network errors, timeouts, 5xx: the EMR could not be reached or failed."""


class EmrRequestError(AdapterError):
    """The EMR refused a request (4xx with an OperationOutcome)."""


class EmrResponseError(AdapterError):
    """The EMR answered something we cannot use (not a Bundle, too many pages, bad data)."""


class EmrNotConfigured(AdapterError):
    """The connection lacks what the adapter needs (base URL, client id, key)."""


# --- the interface ---------------------------------------------------------------------------


class EmrAdapter(ABC):
    """Fetch appointments (by date range, patient MRN or provider), providers with their shifts,
    and locations. Instants in, instants out; all aware."""

    stats: CallStats

    @abstractmethod
    def appointments_by_date_range(self, *, start: datetime, end: datetime) -> list[EmrAppointment]:
        """Appointments starting in ``[start, end)``."""

    @abstractmethod
    def appointments_by_mrn(self, *, mrn: str) -> list[EmrAppointment]:
        """All appointments of the patient(s) with that MRN, with ``created_at``/``created_by``."""

    @abstractmethod
    def appointments_by_provider(
        self, *, provider_ehr_ids: Sequence[str], start: datetime, end: datetime
    ) -> list[EmrAppointment]:
        """Appointments starting in ``[start, end)`` in which any of the providers takes part."""

    @abstractmethod
    def providers(self, *, horizon_start: date, horizon_days: int = 28) -> list[EmrProvider]:
        """Every provider, with shifts derived from the schedule over the horizon."""

    @abstractmethod
    def locations(self) -> list[EmrLocation]:
        """Every location (facility)."""

    def close(self) -> None:  # noqa: B027 - an optional hook; most adapters hold nothing to close
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
