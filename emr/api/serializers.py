"""Input validation and output shapes of the ``/v1/`` family (Cobalt's snake_case names).

The live-fetch body and the appointment query are declared with the query kit
(``tenants.api.query``, family ``V1``): the spec's exact messages, and the same classes document
them for OpenAPI. Unknown body fields and query parameters are refused (400 naming them), so a
misspelt filter never silently returns everything.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from booking.api.fields import (
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictDateField,
    StrictIntegerField,
)
from booking.models import ActiveStatus
from booking.selectors import resource_zone
from booking.validators import (
    MAX_RECUR_EVERY_WEEKS,
    MAX_VISITS_PER_RULE,
    MIDNIGHT,
    parse_wall_time,
    wall_window_contains,
    wall_window_is_valid,
)
from emr.services.live_fetch import FetchRequest
from tenants.api import query as q

SEARCH_MODES = ("date_range", "mrn", "provider")
MAX_FETCH_DAYS = 7
MAX_PROVIDER_DAYS_SINGLE = 5
MAX_PROVIDERS = 10
MAX_QUERY_DAYS = 366
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

MSG_END_BEFORE_START = "end_date must be after start_date."
MSG_RANGE = "Date range cannot exceed 7 days."
MSG_PROVIDER_IDS = f"provider_ids must be an array of 1 to {MAX_PROVIDERS} EHR provider ids (strings)."



# --- POST /v1/appointments/fetch ---------------------------------------------------------------


class V1FetchRequestSerializer(q.QueryFilter):
    """The body of a live fetch; ``search_by`` decides which other fields are required and read."""

    family = q.V1
    body = True

    search_by = q.ChoiceField(
        choices=SEARCH_MODES,
        default="date_range",
        messages={"choice": "Invalid search_by. Use one of: {choices}."},
        help_text="date_range (default), mrn or provider.",
    )
    mrn = q.TextField(max_length=64, help_text="Patient MRN. Required for search_by=mrn.")
    provider_ids = q.ListField(
        child=q.TextField(max_length=128),
        max_items=MAX_PROVIDERS,
        split=False,
        messages={"list_type": MSG_PROVIDER_IDS, "list_max": MSG_PROVIDER_IDS, "item": MSG_PROVIDER_IDS},
        help_text="EHR provider ids (1-10), for search_by=provider. One provider: end_date at most 5 days after "
        "start_date; 2-10 providers: start_date must equal end_date.",
    )
    start_date = q.DateField(
        help_text="YYYY-MM-DD. Required for date_range and provider; the range spans at most 7 days."
    )
    end_date = q.DateField(help_text="YYYY-MM-DD, on or after start_date.")

    @staticmethod
    def _mode(values: dict) -> str | None:
        mode = values.get("search_by", "date_range")
        return mode if mode in SEARCH_MODES else None

    def required_for(self, values):
        return {
            "mrn": ("mrn",),
            "provider": ("provider_ids", "start_date", "end_date"),
            "date_range": ("start_date", "end_date"),
        }.get(self._mode(values), ())

    def ignored_for(self, values):
        return {
            "mrn": ("provider_ids", "start_date", "end_date"),
            "date_range": ("mrn", "provider_ids"),
            "provider": ("mrn",),
        }.get(self._mode(values), ())

    def validate(self, attrs):
        if attrs["search_by"] == "mrn":
            return attrs
        start, end, providers = attrs["start_date"], attrs["end_date"], attrs["provider_ids"] or ()
        if end < start:
            raise q.ValidationError({"end_date": MSG_END_BEFORE_START})
        if (end - start).days > MAX_FETCH_DAYS - 1:
            raise q.ValidationError({"end_date": MSG_RANGE})
        if attrs["search_by"] == "provider":
            if len(providers) == 1 and (end - start).days > MAX_PROVIDER_DAYS_SINGLE:
                raise q.ValidationError(
                    {"end_date": f"With one provider, end_date can be at most {MAX_PROVIDER_DAYS_SINGLE} days after start_date."}
                )
            if len(providers) > 1 and start != end:
                raise q.ValidationError({"start_date": f"With 2 to {MAX_PROVIDERS} providers, start_date must equal end_date."})
        return attrs


def fetch_request_parse(data) -> FetchRequest:
    """The fetch body as a ``FetchRequest``, or a 400 with the spec's message."""
    values = V1FetchRequestSerializer.parse(data)
    if values["search_by"] == "mrn":
        return FetchRequest(search_by="mrn", mrn=values["mrn"])
    return FetchRequest(
        search_by=values["search_by"],
        start_date=values["start_date"],
        end_date=values["end_date"],
        provider_ids=values["provider_ids"] or (),
    )


class V1FetchAcceptedSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField()
    job_id = serializers.CharField()


# --- GET /v1/appointments -------------------------------------------------------------------


class V1AppointmentQuery(q.QueryFilter):
    """``GET /v1/appointments``. A date is the whole day in the EMR's zone (for an end, up to the
    next midnight); a date-time without offset is read in that zone (``context["zone"]``)."""

    family = q.V1

    start_date = q.DateOrInstantField(
        required=True, allow_naive=True, help_text="YYYY-MM-DD (whole day, EMR zone) or ISO date-time."
    )
    end_date = q.DateOrInstantField(
        required=True, allow_naive=True, help_text="YYYY-MM-DD (inclusive) or ISO date-time (exclusive)."
    )
    patient_mrn = q.TextField(max_length=64, help_text="Exact MRN.")
    patient_name = q.TextField(max_length=200, help_text="Case-insensitive part of the patient's name.")
    provider_ehr_id = q.TextField(max_length=128, help_text="Primary or secondary provider's EHR id.")
    status = q.TextField(max_length=128, help_text="The EMR's status, case-insensitive (e.g. booked, cancelled).")

    def validate(self, attrs):
        zone = self.context["zone"]
        start = _bound(attrs["start_date"], zone, end=False)
        end = _bound(attrs["end_date"], zone, end=True)
        if end <= start:
            raise q.ValidationError({"end_date": MSG_END_BEFORE_START})
        if end - start > timedelta(days=MAX_QUERY_DAYS):
            raise q.ValidationError({"end_date": f"Date range cannot exceed {MAX_QUERY_DAYS} days."})
        return {**attrs, "start_date": start, "end_date": end}


def _bound(value: date | datetime, zone: ZoneInfo, *, end: bool) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    return datetime.combine(value + timedelta(days=1) if end else value, time(0), tzinfo=zone)


class V1AppointmentObjectMetadataSerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=["emr", "api"])


class V1AppointmentOutSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    ehr_appointment_id = serializers.CharField(allow_null=True)
    datetime = serializers.DateTimeField(help_text="Start, ISO 8601 with the EMR zone's offset.")
    duration = serializers.IntegerField(help_text="Minutes.")
    status = serializers.CharField(help_text="The EMR's status (FHIR Appointment.status); 'cancelled' once gone from the EMR.")
    appointment_type = serializers.CharField(help_text="Visit type: 'CODE (Description)' when described, else the code.")
    provider_ehr_id = serializers.CharField(allow_null=True)
    secondary_provider_ehr_id = serializers.CharField(allow_null=True)
    location = serializers.CharField(allow_null=True)
    location_ehr_id = serializers.CharField(allow_null=True)
    patient_mrn = serializers.CharField(allow_null=True)
    patient_name = serializers.CharField(allow_null=True)
    reason = serializers.CharField(allow_null=True)
    locked = serializers.BooleanField()
    created_at = serializers.DateTimeField(allow_null=True)
    created_by = serializers.CharField(allow_null=True)
    object_metadata = V1AppointmentObjectMetadataSerializer()


class V1AppointmentListSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    appointments = V1AppointmentOutSerializer(many=True)


# --- providers and locations -----------------------------------------------------------------


class _RejectUnknown:
    """Unknown fields are an error (named), not silently ignored."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: "Unknown field." for name in unknown})
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "pattern": r"^T?[0-9]{2}:[0-9]{2}:[0-9]{2}$", "example": "T08:00:00"})
class ShiftTimeField(serializers.Field):
    """Cobalt's wall-clock ``T08:00:00`` (``08:00:00`` accepted); with ``end=True``, ``T24:00:00``
    is midnight at the end of the day."""

    default_error_messages = {"invalid": "Must be a time like T08:00:00 (T00:00:00 to {maximum})."}

    def __init__(self, *, end: bool = False, **kwargs):
        self.end = end
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        text = data[1:] if isinstance(data, str) and data.startswith("T") else data
        parsed = parse_wall_time(text, end=self.end)
        if parsed is None:
            self.fail("invalid", maximum="T24:00:00" if self.end else "T23:59:59")
        return parsed

    def to_representation(self, value):
        if self.end and value == MIDNIGHT:
            return "T24:00:00"
        return "T" + value.strftime("%H:%M:%S")


class V1VisitTypeRuleSerializer(_RejectUnknown, serializers.Serializer):
    start_time = ShiftTimeField()
    end_time = ShiftTimeField(end=True)
    total_visits = StrictIntegerField(min_value=1, max_value=MAX_VISITS_PER_RULE)
    visit_type_id = StrictCharField(min_length=1, max_length=128)
    visit_type_desc = StrictCharField(max_length=255, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if not wall_window_is_valid(attrs["start_time"], attrs["end_time"]):
            raise serializers.ValidationError({"end_time": "Must be after start_time."})
        return attrs


class V1RecurrenceSerializer(_RejectUnknown, serializers.Serializer):
    recur_interval_type = StrictChoiceField(choices=["weeks"])
    recur_interval_amount = StrictIntegerField(min_value=1, max_value=MAX_RECUR_EVERY_WEEKS)


class V1ShiftSerializer(_RejectUnknown, serializers.Serializer):
    start = ShiftTimeField()
    end = ShiftTimeField(end=True)
    facility_id = StrictCharField(
        required=False, allow_null=True, max_length=128, help_text="The location's EHR id (our id for locations without one)."
    )
    facility_name = serializers.CharField(read_only=True, allow_null=True)
    set_start_date = StrictDateField(required=False, allow_null=True, help_text="First date the shift applies (YYYY-MM-DD).")
    set_end_date = StrictDateField(required=False, allow_null=True, help_text="Last date the shift applies (YYYY-MM-DD).")
    recurrence = V1RecurrenceSerializer(required=False, allow_null=True, help_text="Every N weeks, counted from set_start_date.")
    visit_type_rules = V1VisitTypeRuleSerializer(many=True, required=False, max_length=48)

    def to_internal_value(self, data):
        # A GET body sent back as is carries facility_name: accept and ignore it.
        if isinstance(data, dict) and "facility_name" in data:
            data = {k: v for k, v in data.items() if k != "facility_name"}
        return super().to_internal_value(data)

    def validate_facility_id(self, value):
        if value is None or value == "":
            return None
        from emr.selectors import location_by_facility_id

        location = location_by_facility_id(connection=self.context["connection"], facility_id=value)
        if location is None:
            raise serializers.ValidationError(f"Unknown facility_id '{value}'.")
        return location

    def validate(self, attrs):
        if not wall_window_is_valid(attrs["start"], attrs["end"]):
            raise serializers.ValidationError({"end": "Must be after start."})
        first, last = attrs.get("set_start_date"), attrs.get("set_end_date")
        if first and last and last < first:
            raise serializers.ValidationError({"set_end_date": "Must be on or after set_start_date."})
        recurrence = attrs.get("recurrence") or {}
        if recurrence.get("recur_interval_amount", 1) > 1 and not first:
            raise serializers.ValidationError({"set_start_date": "Required when recurring every 2 or more weeks (it anchors the weeks)."})
        for index, rule in enumerate(attrs.get("visit_type_rules") or []):
            if not wall_window_contains((attrs["start"], attrs["end"]), (rule["start_time"], rule["end_time"])):
                raise serializers.ValidationError({"visit_type_rules": {index: "Must lie within the shift's start and end."}})
        return attrs


class V1DayHoursSerializer(_RejectUnknown, serializers.Serializer):
    day = StrictChoiceField(choices=DAYS)
    shifts = V1ShiftSerializer(many=True, max_length=24)


class V1ProviderPatchSerializer(_RejectUnknown, serializers.Serializer):
    status = StrictChoiceField(choices=ActiveStatus.choices, required=False)
    hide_in_availability = StrictBooleanField(required=False)
    hours = V1DayHoursSerializer(
        many=True, required=False, max_length=70, help_text="Replaces ALL of the provider's hours (an empty list clears them)."
    )

    def shifts(self) -> list[dict]:
        """``hours`` as ``shifts_replace`` takes them."""
        out = []
        for day in self.validated_data.get("hours", []):
            day_of_week = (DAYS.index(day["day"]) + 1) % 7  # 0 = Sunday
            for shift in day["shifts"]:
                recurrence = shift.get("recurrence") or {}
                out.append(
                    {
                        "day_of_week": day_of_week,
                        "start_time": shift["start"],
                        "end_time": shift["end"],
                        "location": shift.get("facility_id"),
                        "valid_from": shift.get("set_start_date"),
                        "valid_until": shift.get("set_end_date"),
                        "recur_every_weeks": recurrence.get("recur_interval_amount", 1),
                        "rules": shift.get("visit_type_rules") or [],
                    }
                )
        return out


def facility_id_of(location) -> str | None:
    if location is None:
        return None
    return location.ehr_id or str(location.pk)


def provider_representation(resource, *, connection) -> dict:
    start, end = ShiftTimeField(), ShiftTimeField(end=True)
    by_day: dict[str, list[dict]] = {}
    for shift in resource.shifts.all():
        day = DAYS[(shift.day_of_week - 1) % 7]
        by_day.setdefault(day, []).append(
            {
                "start": start.to_representation(shift.start_time),
                "end": end.to_representation(shift.end_time),
                "facility_id": facility_id_of(shift.location),
                "facility_name": shift.location.name if shift.location else None,
                "set_start_date": shift.valid_from.isoformat() if shift.valid_from else None,
                "set_end_date": shift.valid_until.isoformat() if shift.valid_until else None,
                "recurrence": {"recur_interval_type": "weeks", "recur_interval_amount": shift.recur_every_weeks},
                "visit_type_rules": [
                    {
                        "start_time": start.to_representation(rule.start_time),
                        "end_time": end.to_representation(rule.end_time),
                        "total_visits": rule.total_visits,
                        "visit_type_id": rule.visit_type_id,
                        "visit_type_desc": rule.visit_type_desc,
                    }
                    for rule in shift.visit_type_rules.all()
                ],
            }
        )
    return {
        "id": str(resource.pk),
        "ehr_id": resource.ehr_id,
        "name": resource.name,
        "npi": resource.npi or None,
        "timezone": resource_zone(
            own=resource.timezone,
            first_location=resource.first_location_zone,
            organization_zone=resource.organization.timezone,
        ),
        "status": resource.status,
        "hide_in_availability": resource.hide_in_availability,
        "hours": [{"day": day, "shifts": by_day[day]} for day in DAYS if day in by_day],
    }


class V1ShiftOutSerializer(serializers.Serializer):
    start = serializers.CharField(help_text="T08:00:00")
    end = serializers.CharField(help_text="T17:00:00 (T24:00:00 = midnight at the end of the day)")
    facility_id = serializers.CharField(allow_null=True)
    facility_name = serializers.CharField(allow_null=True)
    set_start_date = serializers.DateField(allow_null=True)
    set_end_date = serializers.DateField(allow_null=True)
    recurrence = V1RecurrenceSerializer()
    visit_type_rules = V1VisitTypeRuleSerializer(many=True)


class V1DayHoursOutSerializer(serializers.Serializer):
    day = serializers.ChoiceField(choices=DAYS)
    shifts = V1ShiftOutSerializer(many=True)


class V1ProviderOutSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    ehr_id = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    npi = serializers.CharField(allow_null=True)
    timezone = serializers.CharField()
    status = serializers.ChoiceField(choices=ActiveStatus.choices)
    hide_in_availability = serializers.BooleanField()
    hours = V1DayHoursOutSerializer(many=True)


class V1ProviderListSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    providers = V1ProviderOutSerializer(many=True)


class V1ProviderItemSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    provider = V1ProviderOutSerializer()


class V1LocationPatchSerializer(_RejectUnknown, serializers.Serializer):
    status = StrictChoiceField(choices=ActiveStatus.choices, required=False)


def location_representation(location) -> dict:
    return {
        "id": str(location.pk),
        "ehr_id": location.ehr_id,
        "name": location.name,
        "address": location.address or None,
        "timezone": location.timezone,
        "status": location.status,
    }


class V1LocationOutSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    ehr_id = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    address = serializers.CharField(allow_null=True)
    timezone = serializers.CharField()
    status = serializers.ChoiceField(choices=ActiveStatus.choices)


class V1LocationListSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    locations = V1LocationOutSerializer(many=True)


class V1LocationItemSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    location = V1LocationOutSerializer()


# --- settings --------------------------------------------------------------------------------


class V1CodeDescriptionSerializer(serializers.Serializer):
    code = serializers.CharField()
    description = serializers.CharField()
