"""The scheduling data model shared by every API family.

Instants are stored in UTC. Wall-clock data (working hours, recurring blocks, a location's weekly
availability) is stored as wall-clock time plus the IANA zone it is read in, and expanded per local
date by the availability engine. Intervals are half-open ``[start, end)``. An ``end_time`` of
00:00:00 on a wall-clock window means midnight at the end of the day (the API writes it 24:00:00).
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from booking.validators import (
    MAX_RECUR_EVERY_WEEKS,
    MAX_VISITS_PER_RULE,
    MIDNIGHT,
    recurrence_problems,
    validate_npi,
    validate_us_state_codes,
    validate_weekdays,
    validate_weekly_windows,
    wall_window_contains,
)
from tenants.models import TenantOwnedModel, validate_timezone

WEEKDAY_CHOICES = [
    (0, "Sunday"), (1, "Monday"), (2, "Tuesday"), (3, "Wednesday"), (4, "Thursday"), (5, "Friday"), (6, "Saturday"),
]
WEEKDAY_NAMES = dict(WEEKDAY_CHOICES)


def _hm(value) -> str:
    return f"{value:%H:%M}" if value is not None else "?"


def _wall_end(value) -> str:
    return "24:00" if value == MIDNIGHT else _hm(value)


def _zone_named(start, end, *, resource=None, location=None, organization_id=None) -> str:
    from booking.selectors import scoped_zone_get
    from tenants.localtime import local_range_text

    zone = scoped_zone_get(resource=resource, location=location, organization_id=organization_id)
    return local_range_text(start, end, zone)


class RoundRobin(models.TextChoices):
    NONE = "NONE"
    RANDOM = "RANDOM"
    BALANCED = "BALANCED"
    COMBINED = "COMBINED"


class ActiveStatus(models.TextChoices):
    ACTIVE = "active"
    INACTIVE = "inactive"


def _wall_window_valid(prefix: str = "") -> Q:
    """end after start, or end at midnight (= end of day)."""
    return Q(**{f"{prefix}end_time__gt": F(f"{prefix}start_time")}) | Q(**{f"{prefix}end_time": MIDNIGHT})


def ehr_id_constraints(prefix: str) -> list[models.UniqueConstraint]:
    """An EHR id names one row per EMR connection; rows from no EMR share the organization's
    namespace. For the rows an EMR sync adopts by EHR id (locations, provider resources)."""
    return [
        models.UniqueConstraint(
            fields=["emr_connection", "ehr_id"],
            condition=Q(ehr_id__isnull=False, emr_connection__isnull=False),
            name=f"{prefix}_ehr_id_unique_per_connection",
        ),
        models.UniqueConstraint(
            fields=["organization", "ehr_id"],
            condition=Q(ehr_id__isnull=False, emr_connection__isnull=True),
            name=f"{prefix}_ehr_id_unique_without_connection",
        ),
    ]


class Location(TenantOwnedModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, validators=[validate_timezone])
    weekly_availability = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_weekly_windows],
        help_text='Opening hours; empty = no restriction. [{"dayOfWeek": 1, "startTime": "08:00:00", "endTime": "18:00:00"}, …] '
        "(0 = Sunday; endTime 24:00:00 = midnight).",
    )
    hold_expiration_minutes = models.PositiveIntegerField(default=10)
    ehr_id = models.CharField(max_length=128, null=True, blank=True)
    address = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=ActiveStatus.choices, default=ActiveStatus.ACTIVE)
    emr_connection = models.ForeignKey(
        "emr.EmrConnection", null=True, blank=True, on_delete=models.SET_NULL, related_name="locations"
    )

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            *ehr_id_constraints("location"),
            models.CheckConstraint(
                condition=Q(hold_expiration_minutes__gte=1), name="location_hold_expiration_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Service(TenantOwnedModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    duration = models.PositiveIntegerField(help_text="Minutes.")
    padding = models.PositiveIntegerField(default=0, help_text="Minutes kept free after each appointment.")
    duration_select = models.BooleanField(default=False)
    duration_min = models.PositiveIntegerField(null=True, blank=True)
    duration_max = models.PositiveIntegerField(null=True, blank=True)
    duration_interval = models.PositiveIntegerField(null=True, blank=True)
    booking_interval = models.PositiveIntegerField(null=True, blank=True)
    bookings_per_slot = models.PositiveIntegerField(null=True, blank=True)
    round_robin = models.CharField(max_length=16, choices=RoundRobin.choices, null=True, blank=True)
    visit_type = models.CharField(max_length=128, null=True, blank=True, help_text="EMR visit-type code.")

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(duration__gte=1), name="service_duration_positive"),
            models.CheckConstraint(
                condition=Q(duration_min__isnull=True) | Q(duration_max__isnull=True) | Q(duration_min__lte=F("duration_max")),
                name="service_duration_min_le_max",
            ),
            models.CheckConstraint(
                condition=Q(bookings_per_slot__isnull=True) | Q(bookings_per_slot__gte=1), name="service_capacity_positive"
            ),
            models.CheckConstraint(
                condition=Q(booking_interval__isnull=True) | Q(booking_interval__gte=1), name="service_interval_positive"
            ),
            models.CheckConstraint(
                condition=Q(duration_interval__isnull=True) | Q(duration_interval__gte=1),
                name="service_duration_interval_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Resource(TenantOwnedModel):
    class Type(models.TextChoices):
        STAFF = "staff"
        PROVIDER = "provider"
        ROOM = "room"
        EQUIPMENT = "equipment"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.STAFF)
    timezone = models.CharField(
        max_length=64, null=True, blank=True, validators=[validate_timezone],
        help_text="Empty: the zone of the first location the resource is linked to.",
    )
    bookings_per_slot = models.PositiveIntegerField(null=True, blank=True)
    email = models.EmailField(max_length=254, blank=True, default="")
    ehr_id = models.CharField(max_length=128, null=True, blank=True, help_text="EMR provider id.")
    npi = models.CharField(max_length=10, blank=True, default="", validators=[validate_npi])
    status = models.CharField(max_length=16, choices=ActiveStatus.choices, default=ActiveStatus.ACTIVE)
    hide_in_availability = models.BooleanField(default=False)
    licensed_states = models.JSONField(
        default=list, blank=True, validators=[validate_us_state_codes], help_text='US state codes, e.g. ["MA", "NY"].'
    )
    emr_connection = models.ForeignKey(
        "emr.EmrConnection", null=True, blank=True, on_delete=models.SET_NULL, related_name="providers"
    )

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            *ehr_id_constraints("resource"),
            models.CheckConstraint(
                condition=Q(bookings_per_slot__isnull=True) | Q(bookings_per_slot__gte=1), name="resource_capacity_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ResourceService(TenantOwnedModel):
    """The resource offers the service at the location."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="service_links")
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="resource_links")
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="resource_links")

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["resource", "service", "location"], name="resource_service_unique"),
        ]
        indexes = [models.Index(fields=["service", "location"])]

    def __str__(self) -> str:
        return f"{self.resource} → {self.service} @ {self.location}"


class Shift(TenantOwnedModel):
    """A weekly working window of a resource, in the resource's zone.

    ``location`` empty: applies at every location the resource is linked to. The EMR API adds
    validity dates and an every-N-weeks recurrence anchored on ``valid_from`` (or 1970-01-04, a
    Sunday, when open-ended).
    """

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="shifts")
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.CASCADE, related_name="shifts")
    day_of_week = models.PositiveSmallIntegerField(choices=WEEKDAY_CHOICES)
    start_time = models.TimeField()
    end_time = models.TimeField(help_text="00:00:00 = midnight at the end of the day.")
    valid_from = models.DateField(null=True, blank=True)
    valid_until = models.DateField(null=True, blank=True)
    recur_every_weeks = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(MAX_RECUR_EVERY_WEEKS)]
    )

    class Meta:
        ordering = ["resource", "day_of_week", "start_time"]
        constraints = [
            models.CheckConstraint(condition=Q(day_of_week__lte=6), name="shift_day_of_week_range"),
            models.CheckConstraint(condition=_wall_window_valid(), name="shift_end_after_start"),
            models.CheckConstraint(condition=Q(recur_every_weeks__gte=1), name="shift_recurrence_positive"),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True) | Q(valid_until__isnull=True) | Q(valid_until__gte=F("valid_from")),
                name="shift_validity_ordered",
            ),
        ]

    def __str__(self) -> str:
        where = f" at {self.location}" if self.location_id else ""
        return f"{self.resource}: {WEEKDAY_NAMES.get(self.day_of_week, self.day_of_week)} {_hm(self.start_time)}–{_wall_end(self.end_time)}{where}"


class VisitTypeRule(TenantOwnedModel):
    """Part of a shift reserved for a number of visits of one visit type (EMR schedules)."""

    shift = models.ForeignKey(Shift, on_delete=models.CASCADE, related_name="visit_type_rules")
    start_time = models.TimeField()
    end_time = models.TimeField()
    total_visits = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(MAX_VISITS_PER_RULE)]
    )
    visit_type_id = models.CharField(max_length=128)
    visit_type_desc = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["shift", "start_time"]
        constraints = [models.CheckConstraint(condition=_wall_window_valid(), name="visit_rule_end_after_start")]

    def __str__(self) -> str:
        return f"{self.visit_type_id} × {self.total_visits}, {_hm(self.start_time)}–{_wall_end(self.end_time)}"

    def clean(self):
        """Like the EMR API: a rule lies within its shift."""
        super().clean()
        try:
            shift = self.shift
        except Shift.DoesNotExist:
            return
        times = (self.start_time, self.end_time)
        if None in times or None in (shift.start_time, shift.end_time):
            return  # reported as missing by the fields
        if not wall_window_contains((shift.start_time, shift.end_time), times):
            raise ValidationError("Must lie within the shift's start and end.")


class Allocation(TenantOwnedModel):
    """A single extra window of availability of a resource."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="allocations")
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.CASCADE, related_name="allocations")
    start = models.DateTimeField()
    end = models.DateTimeField()

    class Meta:
        ordering = ["start", "id"]
        constraints = [models.CheckConstraint(condition=Q(end__gt=F("start")), name="allocation_end_after_start")]
        indexes = [models.Index(fields=["resource", "start"])]

    def __str__(self) -> str:
        when = _zone_named(self.start, self.end, resource=self.resource, location=self.location, organization_id=self.organization_id)
        return f"Allocation: {self.resource}, {when}"


def _exactly_one_scope() -> Q:
    only = lambda name: Q(**{f"{n}__isnull": n != name for n in ("resource", "location", "service")})  # noqa: E731
    return only("resource") | only("location") | only("service")


class Block(TenantOwnedModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    resource = models.ForeignKey(Resource, null=True, blank=True, on_delete=models.CASCADE, related_name="blocks")
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.CASCADE, related_name="blocks")
    service = models.ForeignKey(Service, null=True, blank=True, on_delete=models.CASCADE, related_name="blocks")
    start = models.DateTimeField()
    end = models.DateTimeField()
    reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["start", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="block_end_after_start"),
            models.CheckConstraint(condition=_exactly_one_scope(), name="block_exactly_one_scope"),
        ]
        indexes = [models.Index(fields=["organization", "start"])]

    @property
    def scope(self):
        """The resource, location or service the block applies to."""
        return self.resource or self.location or self.service

    def __str__(self) -> str:
        when = _zone_named(
            self.start, self.end, resource=self.resource, location=self.location, organization_id=self.organization_id
        )
        reason = f" ({self.reason})" if self.reason else ""
        return f"Block: {self.scope}, {when}{reason}"


class RecurringBlock(TenantOwnedModel):
    class Frequency(models.TextChoices):
        DAILY = "DAILY"
        WEEKLY = "WEEKLY"
        BIWEEKLY = "BIWEEKLY"
        MONTHLY = "MONTHLY"
        YEARLY = "YEARLY"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    resource = models.ForeignKey(Resource, null=True, blank=True, on_delete=models.CASCADE, related_name="recurring_blocks")
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.CASCADE, related_name="recurring_blocks")
    service = models.ForeignKey(Service, null=True, blank=True, on_delete=models.CASCADE, related_name="recurring_blocks")
    frequency = models.CharField(max_length=16, choices=Frequency.choices)
    interval = models.PositiveSmallIntegerField(default=1)
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    start_time = models.TimeField()
    end_time = models.TimeField(help_text="00:00:00 = midnight at the end of the day.")
    timezone = models.CharField(
        max_length=64, null=True, blank=True, validators=[validate_timezone],
        help_text="Empty: the zone of the resource or location it is scoped to.",
    )
    weekdays = models.JSONField(
        default=list, blank=True, validators=[validate_weekdays],
        help_text="WEEKLY and BIWEEKLY: e.g. [1, 3] (0 = Sunday … 6 = Saturday); empty = the start date's weekday.",
    )
    month_day = models.PositiveSmallIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["start_date", "start_time", "id"]
        constraints = [
            models.CheckConstraint(condition=_exactly_one_scope(), name="recurring_block_exactly_one_scope"),
            models.CheckConstraint(condition=_wall_window_valid(), name="recurring_block_end_after_start"),
            models.CheckConstraint(condition=Q(interval__gte=1), name="recurring_block_interval_positive"),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=F("start_date")), name="recurring_block_dates_ordered"
            ),
            models.CheckConstraint(
                condition=Q(month_day__isnull=True) | (Q(month_day__gte=1) & Q(month_day__lte=31)),
                name="recurring_block_month_day_range",
            ),
        ]

    def __str__(self) -> str:
        scope = self.resource or self.location or self.service
        days = ""
        if isinstance(self.weekdays, list) and self.weekdays:
            days = " " + ", ".join(WEEKDAY_NAMES.get(d, str(d))[:3] for d in self.weekdays if isinstance(d, int))
        elif self.frequency == self.Frequency.MONTHLY and self.month_day:
            days = f" day {self.month_day}"
        reason = f" ({self.reason})" if self.reason else ""
        return f"Recurring block: {scope}, {self.get_frequency_display().lower()}{days} {_hm(self.start_time)}–{_wall_end(self.end_time)}{reason}"

    def clean(self):
        super().clean()
        problems = recurrence_problems(frequency=self.frequency, weekdays=self.weekdays, month_day=self.month_day)
        if problems:
            raise ValidationError(problems)


class Appointment(TenantOwnedModel):
    """One appointment, whether booked through ``/v3/`` or cached from an EMR.

    Both kinds block availability the same way (rule 5). EMR-cached rows carry the connection and
    ``ehr_appointment_id`` (unique together) and the EMR's own status text; ``status`` is our
    normalized one.
    """

    class Status(models.TextChoices):
        HOLD = "IN", "Hold"
        BOOKED = "BK", "Booked"
        RESERVED = "RS", "Reserved"
        CANCELLED = "CN", "Cancelled"

    class Source(models.TextChoices):
        API = "api", "Booking API"
        EMR = "emr", "EMR"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField(max_length=2, choices=Status.choices, default=Status.BOOKED, db_index=True)
    start = models.DateTimeField()
    end = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True, help_text="When a hold (IN) lapses.")
    service = models.ForeignKey(Service, null=True, blank=True, on_delete=models.SET_NULL, related_name="appointments")
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.SET_NULL, related_name="appointments")
    resources = models.ManyToManyField(Resource, through="AppointmentResource", related_name="appointments", blank=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.API)
    # People
    customer_name = models.CharField(max_length=200, blank=True, default="")
    customer_email = models.EmailField(max_length=254, blank=True, default="")
    customer_phone = models.CharField(max_length=40, blank=True, default="")
    patient_mrn = models.CharField(max_length=64, blank=True, default="", db_index=True)
    patient_name = models.CharField(max_length=200, blank=True, default="")
    notes = models.TextField(blank=True, default="")
    reason = models.CharField(max_length=500, blank=True, default="")
    created_by_client = models.ForeignKey(
        "tenants.ApiClient", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # EMR side
    emr_connection = models.ForeignKey(
        "emr.EmrConnection", null=True, blank=True, on_delete=models.CASCADE, related_name="appointments"
    )
    ehr_appointment_id = models.CharField(max_length=128, null=True, blank=True)
    ehr_status = models.CharField(max_length=128, blank=True, default="", help_text="The EMR's own status text.")
    appointment_type = models.CharField(max_length=200, blank=True, default="", help_text="EMR visit type.")
    primary_provider = models.ForeignKey(
        Resource, null=True, blank=True, on_delete=models.SET_NULL, related_name="primary_appointments"
    )
    secondary_provider = models.ForeignKey(
        Resource, null=True, blank=True, on_delete=models.SET_NULL, related_name="secondary_appointments"
    )
    ehr_location_name = models.CharField(max_length=200, blank=True, default="")
    ehr_created_at = models.DateTimeField(null=True, blank=True)
    ehr_created_by = models.CharField(max_length=200, blank=True, default="")
    ehr_locked = models.BooleanField(default=False)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["start", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="appointment_end_after_start"),
            models.UniqueConstraint(
                fields=["emr_connection", "ehr_appointment_id"],
                condition=Q(ehr_appointment_id__isnull=False),
                name="appointment_ehr_id_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "start"]),
            models.Index(fields=["emr_connection", "start"]),
        ]

    def __str__(self) -> str:
        from tenants.localtime import local_range_text

        who = self.patient_name or self.customer_name or "Appointment"
        what = f" — {self.service}" if self.service_id else ""
        zone = self.location.timezone if self.location_id else "UTC"
        return f"{who}{what}, {local_range_text(self.start, self.end, zone)} ({self.get_status_display()})"


class AppointmentResource(models.Model):
    """Who an appointment occupies (an EMR appointment occupies its primary and secondary
    provider)."""

    tenant_path = "appointment__organization"  # how tenant scoping reaches the organization

    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="resource_links")
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="appointment_links")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["appointment", "resource"], name="appointment_resource_unique")]
        indexes = [models.Index(fields=["resource", "appointment"])]

    def __str__(self) -> str:
        return str(self.resource)


class ExternalCalendar(TenantOwnedModel):
    """A resource's outside calendar whose busy events block it (iCalendar feed or CalDAV)."""

    class Kind(models.TextChoices):
        ICAL = "ical", "iCalendar feed URL"
        CALDAV = "caldav", "CalDAV calendar"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="external_calendars")
    name = models.CharField(max_length=200, blank=True, default="")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.ICAL)
    url = models.URLField(max_length=1000)
    username = models.CharField(max_length=200, blank=True, default="")
    password_encrypted = models.TextField(blank=True, default="", editable=False)
    last_synced_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, default="", editable=False)

    def __str__(self) -> str:
        return self.name or self.url


class ExternalBusy(models.Model):
    """A busy interval read from an external calendar at its last good sync."""

    tenant_path = "resource__organization"

    calendar = models.ForeignKey(ExternalCalendar, on_delete=models.CASCADE, related_name="busy")
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="external_busy")
    start = models.DateTimeField()
    end = models.DateTimeField()
    summary = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["resource", "start"])]
        constraints = [models.CheckConstraint(condition=Q(end__gt=F("start")), name="external_busy_end_after_start")]

    def __str__(self) -> str:
        return f"busy {self.start:%Y-%m-%d %H:%M}–{self.end:%H:%M} UTC ({self.summary or 'no summary'})"
