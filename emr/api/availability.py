"""``GET /v1/availability`` and ``POST /v1/availability/fetch``: their declared inputs and views.

One serializer declares the options of both (``emr-api.md``, "Availability from cached data"):
the GET reads them from the query string (lists comma-separated or repeated), the live fetch from
its JSON body (``location_ids`` and ``provider_ids`` as arrays, numbers and booleans as JSON
ones). Every invalid value is a 400 in the ``/v1/`` shape whose message starts with the
parameter's name; unknown parameters are refused by name too.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response

from booking.availability import calculation as calc
from booking.models import VisitTypeRule
from emr.adapters import vendor_has_adapter
from emr.api.base import V1APIView
from emr.api.schema import v1_errors
from emr.api.serializers import MSG_END_BEFORE_START, V1BadRequest, V1FetchAcceptedSerializer
from emr.availability import PRIMARY, SECONDARY, AvailabilityRequest, availability_compute
from emr.models import EmrConnection, VisitType
from emr.services.availability_fetch import availability_fetch_start, availability_unsupported_message

MAX_DAYS = 31
MAX_IDS = 100
MAX_FETCH_PROVIDERS = 10
MAX_FETCH_DAYS_SINGLE = 5
LIST_PARAMS = ("provider_ids", "location_ids")
ACCEPTED_MESSAGE = "Live availability fetch accepted. Results will be sent via webhook when ready."


def _missing(names: list[str]) -> V1BadRequest:
    return V1BadRequest(f"Missing required parameters: {', '.join(names)}.")


class _BodyAware(serializers.Field):
    """Query strings carry text; a JSON body carries typed values (``context["body"]``)."""

    @property
    def in_body(self) -> bool:
        return bool(self.parent and self.parent.context.get("body"))


@extend_schema_field({"type": "string", "format": "date", "example": "2025-05-05"})
class BoundField(_BodyAware):
    """A date (``YYYY-MM-DD``, a whole local day) or, in a query, an ISO 8601 date-time."""

    default_error_messages = {"invalid": "Use YYYY-MM-DD or an ISO 8601 date-time."}  # noqa: RUF012 - DRF's convention

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "YYYY-MM-DD (whole days, each provider's zone) or an ISO 8601 date-time.")
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) or len(data) > 40:
            self.fail("invalid")
        text = data.strip()
        try:
            if len(text) == 10:
                parsed = date.fromisoformat(text)
            elif "T" in text and not self.in_body:
                parsed = datetime.fromisoformat(text.replace(" ", "+"))
            else:
                self.fail("invalid")
        except ValueError:
            self.fail("invalid")
        if not 1970 <= parsed.year <= 2200:
            self.fail("invalid")
        return parsed

    def to_representation(self, value):
        return value.isoformat()


@extend_schema_field(OpenApiTypes.INT)
class IntField(_BodyAware):
    """A whole number in ``[minimum, maximum]`` (and a multiple of ``multiple_of``)."""

    def __init__(self, *, minimum: int, maximum: int | None = None, multiple_of: int | None = None, **kwargs):
        self.minimum, self.maximum, self.multiple_of = minimum, maximum, multiple_of
        super().__init__(**kwargs)

    def _message(self) -> str:
        text = f"Must be a whole number from {self.minimum} to {self.maximum}" if self.maximum is not None else (
            f"Must be a whole number, at least {self.minimum}"
        )
        return text + (f", a multiple of {self.multiple_of}." if self.multiple_of else ".")

    def to_internal_value(self, data):
        if self.in_body:
            ok = isinstance(data, int) and not isinstance(data, bool)
            value = data if ok else None
        else:
            ok = isinstance(data, str) and data.strip().isascii() and data.strip().lstrip("-").isdigit() and len(data) < 12
            value = int(data) if ok else None
        if (
            value is None
            or value < self.minimum
            or (self.maximum is not None and value > self.maximum)
            or (self.multiple_of and value % self.multiple_of)
        ):
            raise serializers.ValidationError(self._message())
        return value

    def to_representation(self, value):
        return value


@extend_schema_field(OpenApiTypes.BOOL)
class BoolField(_BodyAware):
    def to_internal_value(self, data):
        if self.in_body:
            if isinstance(data, bool):
                return data
        elif isinstance(data, str) and data.strip().lower() in ("true", "false"):
            return data.strip().lower() == "true"
        raise serializers.ValidationError("Must be true or false.")

    def to_representation(self, value):
        return value


@extend_schema_field(OpenApiTypes.STR)
class ChoiceField(_BodyAware):
    def __init__(self, *, choices: tuple[str, ...], **kwargs):
        self.choices = choices
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str) and data.strip() in self.choices:
            return data.strip()
        raise serializers.ValidationError(f"Use {', '.join(self.choices[:-1])} or {self.choices[-1]}.")

    def to_representation(self, value):
        return value


@extend_schema_field({"type": "array", "items": {"type": "string"}})
class IdsField(_BodyAware):
    """EHR ids: comma-separated (or repeated) in a query, a JSON array of strings in a body."""

    def __init__(self, *, max_items: int = MAX_IDS, **kwargs):
        self.max_items = max_items
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if self.in_body:
            if not isinstance(data, list) or not all(isinstance(v, str) for v in data):
                raise serializers.ValidationError("Must be an array of EHR ids (strings).")
            items = [v.strip() for v in data]
        else:
            items = [v.strip() for v in str(data).split(",")]
        items = list(dict.fromkeys(items))
        if not items or any(not v or len(v) > 128 or "\x00" in v for v in items) or len(items) > self.max_items:
            raise serializers.ValidationError(f"Must be 1 to {self.max_items} EHR ids of at most 128 characters.")
        return tuple(items)

    def to_representation(self, value):
        return list(value)


@extend_schema_field(OpenApiTypes.STR)
class VisitTypeField(_BodyAware):
    """A visit-type code of the connection, case-insensitive (rules' codes count too)."""

    def __init__(self, *, allow_all: bool, **kwargs):
        self.allow_all = allow_all
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) or not data.strip() or len(data) > 128:
            raise serializers.ValidationError("Must be a visit-type code" + (" or all." if self.allow_all else "."))
        text = data.strip()
        if self.allow_all and text.lower() == calc.ALL:
            return calc.ALL
        known = self.parent.context["visit_types"]
        code = known.get(text.casefold())
        if code is None:
            raise serializers.ValidationError(
                f"Unknown visit type '{text}'" + (" (use all or a code of GET /v1/settings)." if self.allow_all else " (see GET /v1/settings).")
            )
        return code

    def to_representation(self, value):
        return value


class V1AvailabilityQuerySerializer(serializers.Serializer):
    start_date = BoundField()
    end_date = BoundField()
    provider_ids = IdsField(required=False, help_text="EHR provider ids, comma-separated.")
    location_ids = IdsField(required=False, help_text="EHR location ids, comma-separated: only windows at these facilities.")
    provider_type = ChoiceField(choices=(PRIMARY, SECONDARY), required=False, help_text="primary (default) or secondary.")
    fallback_to_default_hours = BoolField(required=False, help_text="Without shifts that date, use the organization's default hours.")
    calculation_method = ChoiceField(choices=calc.METHODS, required=False, help_text="gaps (default), slots or equal_slots.")
    buffer = IntField(minimum=0, maximum=59, required=False, help_text="Minutes added after each appointment of visit_type.")
    visit_type = VisitTypeField(allow_all=True, required=False, help_text="all (default) or a visit-type code, case-insensitive.")
    daily_appointment_limit = IntField(minimum=1, required=False, help_text="With daily_limit_type.")
    daily_limit_type = VisitTypeField(allow_all=False, required=False, help_text="A visit-type code; with daily_appointment_limit.")
    max_slot_duration = IntField(minimum=5, maximum=60, multiple_of=5, required=False, help_text="Minutes: 5 to 60, a multiple of 5.")
    facility_scoped_scheduling = BoolField(required=False, help_text="Only shifts naming a facility; capacity per facility.")

    def validate(self, attrs):
        if ("daily_appointment_limit" in attrs) != ("daily_limit_type" in attrs):
            missing = "daily_limit_type" if "daily_appointment_limit" in attrs else "daily_appointment_limit"
            other = "daily_appointment_limit" if missing == "daily_limit_type" else "daily_limit_type"
            raise serializers.ValidationError({missing: f"Required with {other}."})
        return attrs


class V1AvailabilityFetchSerializer(V1AvailabilityQuerySerializer):
    provider_ids = IdsField(max_items=MAX_FETCH_PROVIDERS, help_text="EHR provider ids (1-10).")
    location_ids = IdsField(required=False, help_text="EHR location ids (an array): only windows at these facilities.")


def visit_type_codes(connection: EmrConnection) -> dict[str, str]:
    """casefolded code → code, for the connection's visit types and its providers' rules."""
    codes = set(VisitType.objects.filter(emr_connection=connection).values_list("code", flat=True))
    codes |= set(
        VisitTypeRule.objects.filter(organization_id=connection.organization_id, shift__resource__emr_connection=connection)
        .values_list("visit_type_id", flat=True)
        .distinct()
    )
    return {code.casefold(): code for code in sorted(codes, reverse=True)}


def _flat_query(params) -> dict:
    out = {}
    for name in params:
        values = params.getlist(name)
        if name in LIST_PARAMS:
            out[name] = ",".join(values)
        elif len(values) > 1:
            raise V1BadRequest(f"Parameter {name} may be given only once.")
        else:
            out[name] = values[0]
    return out


def _request(data: dict, *, connection: EmrConnection, body: bool) -> AvailabilityRequest:
    cls = V1AvailabilityFetchSerializer if body else V1AvailabilityQuerySerializer
    unknown = sorted(set(data) - set(cls().fields))
    if unknown:
        raise V1BadRequest(f"Unknown parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}.")
    required = ["start_date", "end_date"] + (["provider_ids"] if body else [])
    missing = [name for name in required if data.get(name) in (None, "", [])]
    if missing:
        raise _missing(missing)
    incoming = cls(data={k: v for k, v in data.items() if v is not None}, context={"body": body, "visit_types": visit_type_codes(connection)})
    incoming.is_valid(raise_exception=True)
    v = incoming.validated_data
    zone = ZoneInfo(connection.timezone)
    start, end = v["start_date"], v["end_date"]
    clip_start = start if isinstance(start, datetime) else None
    clip_end = end if isinstance(end, datetime) else None
    if clip_start is not None and clip_start.tzinfo is None:
        clip_start = clip_start.replace(tzinfo=zone)
    if clip_end is not None and clip_end.tzinfo is None:
        clip_end = clip_end.replace(tzinfo=zone)
    # Instants as bounds: the local dates they touch, then cut to the instants. Every provider's
    # zone is within a day of the connection's, so a day either side covers them all.
    first = start if clip_start is None else (clip_start.astimezone(zone) - timedelta(days=1)).date()
    last = end if clip_end is None else (clip_end.astimezone(zone) + timedelta(days=1)).date()
    lo = clip_start or datetime.combine(start, time(0), tzinfo=zone)
    hi = clip_end or datetime.combine(end + timedelta(days=1), time(0), tzinfo=zone)
    if hi <= lo or (clip_start is None and clip_end is None and end < start):
        raise V1BadRequest(MSG_END_BEFORE_START)
    span_days = (end - start).days + 1 if clip_start is None and clip_end is None else (hi - lo) / timedelta(days=1)
    if span_days > MAX_DAYS:
        raise V1BadRequest(f"Date range cannot exceed {MAX_DAYS} days.")
    if body:
        providers = v["provider_ids"]
        if len(providers) == 1 and (end - start).days > MAX_FETCH_DAYS_SINGLE:
            raise V1BadRequest(f"With one provider, end_date can be at most {MAX_FETCH_DAYS_SINGLE} days after start_date.")
        if len(providers) > 1 and start != end:
            raise V1BadRequest(f"With 2 to {MAX_FETCH_PROVIDERS} providers, start_date must equal end_date.")
    buffer = v.get("buffer", 0)
    location_ids = v.get("location_ids")
    return AvailabilityRequest(
        first=first,
        last=last,
        clip_start=clip_start,
        clip_end=clip_end,
        provider_ids=v.get("provider_ids"),
        provider_type=v.get("provider_type", PRIMARY),
        options=calc.Options(
            method=v.get("calculation_method", calc.GAPS),
            buffer=buffer,
            visit_type=v.get("visit_type", calc.ALL),
            daily_limit=v.get("daily_appointment_limit"),
            daily_limit_type=v.get("daily_limit_type"),
            max_slot_duration=v.get("max_slot_duration"),
            facility_scoped=v.get("facility_scoped_scheduling", False),
            location_ids=frozenset(location_ids) if location_ids is not None else None,
            fallback_to_default_hours=v.get("fallback_to_default_hours", False),
        ),
    )


def availability_query_parse(params, *, connection: EmrConnection) -> AvailabilityRequest:
    return _request(_flat_query(params), connection=connection, body=False)


def availability_fetch_parse(data, *, connection: EmrConnection) -> AvailabilityRequest:
    if not isinstance(data, dict):
        raise V1BadRequest("Request body must be a JSON object.")
    return _request(dict(data), connection=connection, body=True)


# --- output shapes (OpenAPI) -------------------------------------------------------------------


class V1AvailabilityWindowSerializer(serializers.Serializer):
    day_of_week = serializers.IntegerField(help_text="ISO weekday, Monday = 1.")
    date = serializers.DateField()
    duration_string = serializers.CharField(help_text='"9h", "45m", "1h 30m".')
    range_start = serializers.CharField(help_text="Local wall time with milliseconds and offset, e.g. 2024-04-05T08:00:00.000-07:00.")
    range_end = serializers.CharField()
    provider_id = serializers.CharField(help_text="The provider's EHR id.")
    facility_id = serializers.CharField(required=False, help_text="When the shift names a facility.")
    facility_name = serializers.CharField(required=False)
    visit_type = serializers.CharField(required=False, help_text="slots and equal_slots.")
    available_appointments = serializers.IntegerField(required=False, help_text="slots and equal_slots.")
    max_visits = serializers.IntegerField(required=False, help_text="slots and equal_slots.")


class V1AvailabilityResultsSerializer(serializers.Serializer):
    availability = V1AvailabilityWindowSerializer(many=True)


class V1AvailabilityAnswerSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    results = V1AvailabilityResultsSerializer()


def _query_parameters() -> list[OpenApiParameter]:
    fields = V1AvailabilityQuerySerializer().fields
    return [
        OpenApiParameter(name, str, required=name in ("start_date", "end_date"), description=str(field.help_text or ""))
        for name, field in fields.items()
    ]


class AvailabilityView(V1APIView):
    @extend_schema(
        operation_id="v1_availability",
        tags=["EMR: availability"],
        summary="Availability of providers from cached appointments (never calls the EMR)",
        parameters=_query_parameters(),
        responses={200: V1AvailabilityAnswerSerializer, **v1_errors(400, 401, 429)},
    )
    def get(self, request):
        connection = self.emr_connection
        query = availability_query_parse(request.query_params, connection=connection)
        windows = availability_compute(connection=connection, request=query)
        return Response({"success": True, "results": {"availability": windows}})


class AvailabilityFetchView(V1APIView):
    @extend_schema(
        operation_id="v1_availability_fetch",
        tags=["EMR: availability"],
        summary="Live availability: fetch the providers' appointments from the EMR, then compute "
        "(asynchronous; the windows arrive in an availability.live_fetch_completed event)",
        request=V1AvailabilityFetchSerializer,
        responses={202: V1FetchAcceptedSerializer, **v1_errors(400, 401, 413, 415, 429)},
    )
    def post(self, request):
        connection = self.emr_connection
        query = availability_fetch_parse(request.data, connection=connection)
        if not vendor_has_adapter(connection.vendor):
            raise V1BadRequest(availability_unsupported_message(connection.vendor))
        job = availability_fetch_start(connection=connection, request=query)
        return Response({"success": True, "message": ACCEPTED_MESSAGE, "job_id": job.pk}, status=status.HTTP_202_ACCEPTED)
