"""Input validation and output shapes of the ``/v1/`` family (Cobalt's snake_case names).

The live-fetch body and the appointment query answer with the exact messages of the spec, so they
are parsed by hand (``fetch_request_parse``, ``appointment_query_parse``); the serializers next to
them document the same shapes for OpenAPI. Unknown body fields and query parameters are refused
(400 naming them), so a misspelt filter never silently returns everything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers

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

SEARCH_MODES = ("date_range", "mrn", "provider")
FETCH_FIELDS = ("search_by", "start_date", "end_date", "mrn", "provider_ids")
MAX_FETCH_DAYS = 7
MAX_PROVIDER_DAYS_SINGLE = 5
MAX_PROVIDERS = 10
MAX_QUERY_DAYS = 366
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # ASCII digits, whole string (fullmatch)

MSG_DATE_FORMAT = "Invalid date format. Use ISO format (YYYY-MM-DD)."
MSG_END_BEFORE_START = "end_date must be after start_date."
MSG_RANGE = "Date range cannot exceed 7 days."


class V1BadRequest(exceptions.APIException):
    """A 400 whose message is shown exactly as given."""

    status_code = 400
    default_code = "bad_request"


def _missing(names: list[str]) -> V1BadRequest:
    return V1BadRequest(f"Missing required parameters: {', '.join(names)}.")


def _is_blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_date(value) -> date:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise V1BadRequest(MSG_DATE_FORMAT)
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise V1BadRequest(MSG_DATE_FORMAT) from None
    if not 1970 <= parsed.year <= 2200:
        raise V1BadRequest(MSG_DATE_FORMAT)
    return parsed


# --- POST /v1/appointments/fetch ---------------------------------------------------------------


def fetch_request_parse(data) -> FetchRequest:
    """The fetch body as a ``FetchRequest``, or ``V1BadRequest`` with the spec's message."""
    if not isinstance(data, dict):
        raise V1BadRequest("Request body must be a JSON object.")
    unknown = sorted(set(data) - set(FETCH_FIELDS))
    if unknown:
        raise V1BadRequest(f"Unknown parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}.")
    search_by = data.get("search_by")
    if search_by is None:
        search_by = "date_range"
    if not isinstance(search_by, str) or search_by not in SEARCH_MODES:
        raise V1BadRequest(f"Invalid search_by. Use one of: {', '.join(SEARCH_MODES)}.")

    if search_by == "mrn":
        mrn = data.get("mrn")
        if _is_blank(mrn):
            raise _missing(["mrn"])
        if not isinstance(mrn, str):
            raise V1BadRequest("Invalid mrn: must be a string.")
        mrn = mrn.strip()
        if len(mrn) > 64 or "\x00" in mrn:
            raise V1BadRequest("Invalid mrn: at most 64 characters.")
        return FetchRequest(search_by="mrn", mrn=mrn)

    required = (["provider_ids"] if search_by == "provider" else []) + ["start_date", "end_date"]
    missing = [name for name in required if _is_blank(data.get(name)) or data.get(name) == []]
    if missing:
        raise _missing(missing)
    provider_ids: tuple[str, ...] = ()
    if search_by == "provider":
        raw = data["provider_ids"]
        if (
            not isinstance(raw, list)
            or not 1 <= len(raw) <= MAX_PROVIDERS
            or not all(isinstance(v, str) and v.strip() and len(v) <= 128 for v in raw)
        ):
            raise V1BadRequest(f"provider_ids must be an array of 1 to {MAX_PROVIDERS} EHR provider ids (strings).")
        provider_ids = tuple(dict.fromkeys(v.strip() for v in raw))
    start, end = parse_date(data["start_date"]), parse_date(data["end_date"])
    if end < start:
        raise V1BadRequest(MSG_END_BEFORE_START)
    if (end - start).days > MAX_FETCH_DAYS - 1:
        raise V1BadRequest(MSG_RANGE)
    if search_by == "provider":
        if len(provider_ids) == 1 and (end - start).days > MAX_PROVIDER_DAYS_SINGLE:
            raise V1BadRequest(f"With one provider, end_date can be at most {MAX_PROVIDER_DAYS_SINGLE} days after start_date.")
        if len(provider_ids) > 1 and start != end:
            raise V1BadRequest(f"With 2 to {MAX_PROVIDERS} providers, start_date must equal end_date.")
    return FetchRequest(search_by=search_by, start_date=start, end_date=end, provider_ids=provider_ids)


class V1FetchRequestSerializer(serializers.Serializer):
    search_by = serializers.ChoiceField(
        choices=SEARCH_MODES, required=False, default="date_range", help_text="date_range (default), mrn or provider."
    )
    start_date = serializers.DateField(
        required=False, help_text="YYYY-MM-DD. Required for date_range and provider; the range spans at most 7 days."
    )
    end_date = serializers.DateField(required=False, help_text="YYYY-MM-DD, on or after start_date.")
    mrn = serializers.CharField(required=False, max_length=64, help_text="Patient MRN. Required for search_by=mrn.")
    provider_ids = serializers.ListField(
        child=serializers.CharField(max_length=128),
        required=False,
        min_length=1,
        max_length=MAX_PROVIDERS,
        help_text="EHR provider ids (1-10), for search_by=provider. One provider: end_date at most 5 days after "
        "start_date; 2-10 providers: start_date must equal end_date.",
    )


class V1FetchAcceptedSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField()
    job_id = serializers.CharField()


# --- GET /v1/appointments -------------------------------------------------------------------


APPOINTMENT_QUERY = ("start_date", "end_date", "patient_mrn", "patient_name", "provider_ehr_id", "status")
FILTER_LIMITS = {"patient_mrn": 64, "patient_name": 200, "provider_ehr_id": 128, "status": 128}


@dataclass(frozen=True)
class AppointmentQuery:
    start: datetime
    end: datetime
    patient_mrn: str | None = None
    patient_name: str | None = None
    provider_ehr_id: str | None = None
    status: str | None = None


def _bound(value: str, zone: ZoneInfo, *, end: bool) -> datetime:
    """A date (the whole day in the EMR's zone: its start, or for an end the next midnight) or an
    ISO date-time (with offset; without one it is read in the EMR's zone)."""
    if _DATE.fullmatch(value):
        day = parse_date(value)
        return datetime.combine(day + timedelta(days=1) if end else day, time(0), tzinfo=zone)
    if len(value) > 40 or "T" not in value:
        raise V1BadRequest(MSG_DATE_FORMAT)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise V1BadRequest(MSG_DATE_FORMAT) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    if not 1970 <= parsed.year <= 2200:
        raise V1BadRequest(MSG_DATE_FORMAT)
    return parsed


def appointment_query_parse(params, *, zone: ZoneInfo) -> AppointmentQuery:
    unknown = sorted(set(params) - set(APPOINTMENT_QUERY))
    if unknown:
        raise V1BadRequest(f"Unknown parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}.")
    values = {}
    for name in APPOINTMENT_QUERY:
        items = params.getlist(name) if hasattr(params, "getlist") else [params[name]] if name in params else []
        if len(items) > 1:
            raise V1BadRequest(f"Parameter {name} may be given only once.")
        value = items[0] if items else None
        if value is not None and "\x00" in value:
            raise V1BadRequest(f"Invalid {name}.")
        values[name] = value
    missing = [name for name in ("start_date", "end_date") if _is_blank(values[name])]
    if missing:
        raise _missing(missing)
    start = _bound(values["start_date"].strip(), zone, end=False)
    end = _bound(values["end_date"].strip(), zone, end=True)
    if end <= start:
        raise V1BadRequest(MSG_END_BEFORE_START)
    if end - start > timedelta(days=MAX_QUERY_DAYS):
        raise V1BadRequest(f"Date range cannot exceed {MAX_QUERY_DAYS} days.")
    filters = {}
    for name, limit in FILTER_LIMITS.items():
        value = values[name]
        if value is None or not value.strip():
            continue
        if len(value) > limit:
            raise V1BadRequest(f"Invalid {name}: at most {limit} characters.")
        filters[name] = value.strip()
    return AppointmentQuery(start=start, end=end, **filters)


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
