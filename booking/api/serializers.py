"""Serializers of the ``/v3/`` collections: camelCase fields, PascalCase references.

Each one validates input (and renders output) for one entity. Rules the database enforces as
constraints are checked here first, so bad input is a 400 and never reaches the database.
Unknown body fields are ignored.
"""

from __future__ import annotations

from rest_framework import serializers

from booking.api.fields import (
    InstantField,
    NpiField,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictDateField,
    StrictEmailField,
    StrictIntegerField,
    StrictTimezoneField,
    TenantRefField,
    WallTimeField,
)
from booking.models import (
    ActiveStatus,
    Allocation,
    Block,
    Location,
    RecurringBlock,
    Resource,
    ResourceService,
    RoundRobin,
    Service,
)
from booking.validators import (
    DAY_MAX,
    DAY_MIN,
    MAX_LICENSED_STATES,
    MAX_WEEKLY_WINDOWS,
    recurrence_problems,
    validate_us_state_codes,
    validate_weekdays,
    validate_weekly_windows,
    wall_window_is_valid,
)

MAX_MINUTES = 1440  # durations, paddings and steps: at most a day


class _Timestamps(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    createdAt = InstantField(source="created_at", read_only=True)
    updatedAt = InstantField(source="updated_at", read_only=True)


def _minutes(**kwargs):
    kwargs.setdefault("min_value", 1)
    kwargs.setdefault("max_value", MAX_MINUTES)
    return StrictIntegerField(**kwargs)


def _text(max_length: int, **kwargs):
    kwargs.setdefault("required", False)
    kwargs.setdefault("allow_blank", True)
    kwargs.setdefault("default", "")
    return StrictCharField(max_length=max_length, **kwargs)


def _check_unique_ehr_id(serializer: serializers.Serializer, model, value):
    if value is None:
        return value
    qs = model.objects.filter(organization=serializer.context["organization"], ehr_id=value)
    connection_id = getattr(serializer.instance, "emr_connection_id", None)
    if connection_id is not None:
        qs = qs.filter(emr_connection_id=connection_id)  # an EMR's rows: unique within that EMR
    if serializer.instance is not None:
        qs = qs.exclude(pk=serializer.instance.pk)
    if qs.exists():
        raise serializers.ValidationError(f"Another {model._meta.verbose_name} already has ehrId '{value}'.")
    return value


class WeeklyWindowSerializer(serializers.Serializer):
    dayOfWeek = StrictIntegerField(min_value=DAY_MIN, max_value=DAY_MAX, help_text="0 = Sunday … 6 = Saturday.")
    startTime = WallTimeField()
    endTime = WallTimeField(end=True, help_text="24:00:00 (or 00:00:00) = midnight at the end of the day.")

    def validate(self, attrs):
        if not wall_window_is_valid(attrs["startTime"], attrs["endTime"]):
            raise serializers.ValidationError({"endTime": "Must be after startTime."})
        return attrs

    def to_representation(self, instance):
        # Stored as JSON with the same keys; normalize through the fields.
        if isinstance(instance, dict) and isinstance(instance.get("startTime"), str):
            return dict(instance)
        return super().to_representation(instance)


def weekly_windows_to_json(windows: list[dict]) -> list[dict]:
    start, end = WallTimeField(), WallTimeField(end=True)
    return sorted(
        (
            {
                "dayOfWeek": w["dayOfWeek"],
                "startTime": start.to_representation(w["startTime"]),
                "endTime": end.to_representation(w["endTime"]),
            }
            for w in windows
        ),
        key=lambda w: (w["dayOfWeek"], w["startTime"]),
    )


class LocationSerializer(_Timestamps):
    name = StrictCharField(max_length=200)
    timezone = StrictTimezoneField()
    weeklyAvailability = WeeklyWindowSerializer(
        many=True, source="weekly_availability", required=False, default=list, max_length=MAX_WEEKLY_WINDOWS
    )
    holdExpirationMinutes = StrictIntegerField(
        source="hold_expiration_minutes", min_value=1, max_value=10080, required=False, default=10
    )
    ehrId = StrictCharField(source="ehr_id", max_length=128, allow_null=True, required=False, default=None)
    address = _text(1000)
    status = StrictChoiceField(choices=ActiveStatus.choices, required=False, default=ActiveStatus.ACTIVE)

    def validate_ehrId(self, value):
        return _check_unique_ehr_id(self, Location, value)

    def validate_weeklyAvailability(self, value):
        windows = weekly_windows_to_json(value)
        validate_weekly_windows(windows)  # what the model (and so the admin) accepts
        return windows


class ServiceSerializer(_Timestamps):
    name = StrictCharField(max_length=200)
    duration = _minutes(help_text="Minutes.")
    padding = _minutes(min_value=0, required=False, default=0, help_text="Minutes kept free after an appointment.")
    durationSelect = StrictBooleanField(source="duration_select", required=False, default=False)
    durationMin = _minutes(source="duration_min", required=False, allow_null=True, default=None)
    durationMax = _minutes(source="duration_max", required=False, allow_null=True, default=None)
    durationInterval = _minutes(source="duration_interval", required=False, allow_null=True, default=None)
    bookingInterval = _minutes(source="booking_interval", required=False, allow_null=True, default=None)
    bookingsPerSlot = StrictIntegerField(
        source="bookings_per_slot", min_value=1, max_value=10000, required=False, allow_null=True, default=None
    )
    roundRobin = StrictChoiceField(
        source="round_robin", choices=RoundRobin.choices, required=False, allow_null=True, default=None
    )
    visitType = StrictCharField(source="visit_type", max_length=128, required=False, allow_null=True, default=None)

    def validate(self, attrs):
        def current(key):
            if key in attrs:
                return attrs[key]
            return getattr(self.instance, key, None)

        low, high = current("duration_min"), current("duration_max")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError({"durationMin": "Must not exceed durationMax."})
        return attrs


class ResourceSerializer(_Timestamps):
    name = StrictCharField(max_length=200)
    type = StrictChoiceField(choices=Resource.Type.choices, required=False, default=Resource.Type.STAFF)
    timezone = StrictTimezoneField(required=False, allow_null=True, default=None)
    bookingsPerSlot = StrictIntegerField(
        source="bookings_per_slot", min_value=1, max_value=10000, required=False, allow_null=True, default=None
    )
    email = StrictEmailField(max_length=254, required=False, allow_blank=True, default="")
    ehrId = StrictCharField(source="ehr_id", max_length=128, allow_null=True, required=False, default=None)
    npi = NpiField(required=False, allow_blank=True, default="")
    status = StrictChoiceField(choices=ActiveStatus.choices, required=False, default=ActiveStatus.ACTIVE)
    hideInAvailability = StrictBooleanField(source="hide_in_availability", required=False, default=False)
    licensedStates = serializers.ListField(
        source="licensed_states", child=StrictCharField(max_length=2), required=False, default=list,
        max_length=MAX_LICENSED_STATES,
    )

    def validate_email(self, value):
        return value.strip().lower()

    def validate_ehrId(self, value):
        return _check_unique_ehr_id(self, Resource, value)

    def validate_licensedStates(self, value):
        codes = sorted({code.strip().upper() for code in value})
        validate_us_state_codes(codes)
        return codes


class _ScopedSerializer(_Timestamps):
    """Exactly one of ``ResourceId``/``LocationId``/``ServiceId``."""

    ResourceId = TenantRefField(Resource, source="resource", required=False, allow_null=True)
    LocationId = TenantRefField(Location, source="location", required=False, allow_null=True)
    ServiceId = TenantRefField(Service, source="service", required=False, allow_null=True)

    SCOPES = (("ResourceId", "resource"), ("LocationId", "location"), ("ServiceId", "service"))

    def validate_scope(self, attrs):
        given = {attr for _, attr in self.SCOPES if attr in attrs}
        if self.partial and not given:
            return attrs  # scope untouched by this PATCH (a PUT replaces it like every other field)
        chosen = [name for name, attr in self.SCOPES if attrs.get(attr) is not None]
        if len(chosen) != 1:
            message = "Give exactly one of ResourceId, LocationId or ServiceId"
            if chosen:
                message += f"; got {' and '.join(chosen)}"
            # Name the fields given (all three when none was).
            raise serializers.ValidationError({name: f"{message}." for name in chosen or [n for n, _ in self.SCOPES]})
        for _, attr in self.SCOPES:
            attrs.setdefault(attr, None)
        return attrs


class BlockSerializer(_ScopedSerializer):
    startDate = InstantField(source="start")
    endDate = InstantField(source="end")
    reason = _text(500)

    def validate(self, attrs):
        attrs = self.validate_scope(attrs)
        start = attrs.get("start", getattr(self.instance, "start", None))
        end = attrs.get("end", getattr(self.instance, "end", None))
        if start is not None and end is not None and end <= start:
            raise serializers.ValidationError({"endDate": "Must be after startDate."})
        return attrs


class RecurringBlockSerializer(_ScopedSerializer):
    frequency = StrictChoiceField(choices=RecurringBlock.Frequency.choices)
    interval = StrictIntegerField(min_value=1, max_value=366, required=False, default=1)
    startDate = StrictDateField(source="start_date")
    endDate = StrictDateField(source="end_date", required=False, allow_null=True, default=None)
    startTime = WallTimeField(source="start_time")
    endTime = WallTimeField(source="end_time", end=True)
    timezone = StrictTimezoneField(required=False, allow_null=True, default=None)
    weekdays = serializers.ListField(
        child=StrictIntegerField(min_value=DAY_MIN, max_value=DAY_MAX), required=False, default=list, max_length=7
    )
    monthDay = StrictIntegerField(source="month_day", min_value=1, max_value=31, required=False, allow_null=True, default=None)
    reason = _text(500)

    WEEKLY = (RecurringBlock.Frequency.WEEKLY, RecurringBlock.Frequency.BIWEEKLY)
    API_NAMES = {"weekdays": "weekdays", "month_day": "monthDay"}

    def validate(self, attrs):
        attrs = self.validate_scope(attrs)

        def current(key):
            return attrs[key] if key in attrs else getattr(self.instance, key, None)

        start_time, end_time = current("start_time"), current("end_time")
        if start_time is not None and end_time is not None and not wall_window_is_valid(start_time, end_time):
            raise serializers.ValidationError({"endTime": "Must be after startTime."})
        start_date, end_date = current("start_date"), current("end_date")
        if start_date and end_date and end_date < start_date:
            raise serializers.ValidationError({"endDate": "Must be on or after startDate."})
        frequency = current("frequency")
        if "frequency" in attrs:
            # Fields the new frequency doesn't use are dropped unless this request sets them.
            if frequency not in self.WEEKLY and "weekdays" not in attrs:
                attrs["weekdays"] = []
            if frequency != RecurringBlock.Frequency.MONTHLY and "month_day" not in attrs:
                attrs["month_day"] = None
        weekdays = sorted(set(current("weekdays") or []))
        validate_weekdays(weekdays)
        problems = recurrence_problems(frequency=frequency, weekdays=weekdays, month_day=current("month_day"))
        if problems:
            raise serializers.ValidationError({self.API_NAMES[key]: message for key, message in problems.items()})
        if "weekdays" in attrs:
            attrs["weekdays"] = weekdays
        return attrs


class ResourceServiceSerializer(serializers.Serializer):
    ResourceId = serializers.UUIDField(source="resource_id", read_only=True)
    ServiceId = TenantRefField(Service, source="service")
    LocationId = TenantRefField(Location, source="location")
    createdAt = InstantField(source="created_at", read_only=True)


class ScheduleWindowSerializer(WeeklyWindowSerializer):
    LocationId = TenantRefField(Location, source="location", required=False, allow_null=True, default=None)

    def to_representation(self, instance):
        return serializers.Serializer.to_representation(self, instance)


class ShiftOutSerializer(serializers.Serializer):
    dayOfWeek = serializers.IntegerField(source="day_of_week")
    startTime = WallTimeField(source="start_time")
    endTime = WallTimeField(source="end_time", end=True)
    LocationId = serializers.UUIDField(source="location_id", allow_null=True)


class ScheduleSerializer(serializers.Serializer):
    weeklyAvailability = ScheduleWindowSerializer(many=True, max_length=MAX_WEEKLY_WINDOWS)


class ScheduleOutSerializer(serializers.Serializer):
    ResourceId = serializers.UUIDField()
    timezone = serializers.CharField(allow_null=True)
    weeklyAvailability = ShiftOutSerializer(many=True)


class AllocationSerializer(_Timestamps):
    ResourceId = serializers.UUIDField(source="resource_id", read_only=True)
    LocationId = TenantRefField(Location, source="location", required=False, allow_null=True, default=None)
    startDate = InstantField(source="start")
    endDate = InstantField(source="end")

    def validate(self, attrs):
        if attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"endDate": "Must be after startDate."})
        return attrs


MODEL_SERIALIZERS = {
    Location: LocationSerializer,
    Service: ServiceSerializer,
    Resource: ResourceSerializer,
    Block: BlockSerializer,
    RecurringBlock: RecurringBlockSerializer,
    Allocation: AllocationSerializer,
    ResourceService: ResourceServiceSerializer,
}
