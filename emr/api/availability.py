"""``GET /v1/availability`` and ``POST /v1/availability/fetch``: their declared inputs and views.

One filter class of the query kit (``tenants.api.query``) declares the options of both
(``emr-api.md``, "Availability from cached data"): the GET reads them from the query string (lists
comma-separated or repeated), the live fetch from its JSON body, whose values are first checked
for their JSON type (``location_ids`` and ``provider_ids`` arrays, numbers, booleans) and then go
through the same fields. Every invalid value is a 400 in the ``/v1/`` shape whose message names
the parameter; unknown parameters are refused by name too.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from booking.availability import calculation as calc
from booking.models import VisitTypeRule
from emr.adapters import vendor_has_adapter
from emr.api.base import V1APIView
from emr.api.schema import v1_errors
from emr.api.serializers import V1FetchAcceptedSerializer
from emr.availability import PRIMARY, SECONDARY, AvailabilityRequest, availability_compute
from emr.models import EmrConnection, VisitType
from emr.services.availability_fetch import availability_fetch_start, availability_unsupported_message
from tenants.api import query as q
from tenants.api.errors import BadRequest

MAX_DAYS = 31
MAX_FETCH_PROVIDERS = 10
MAX_FETCH_DAYS_SINGLE = 5
ACCEPTED_MESSAGE = "Live availability fetch accepted. Results will be sent via webhook when ready."
MSG_END_BEFORE_START = "end_date must be after start_date."


class VisitTypeField(q.QueryField):
    """A visit-type code of the connection, any case (its visit types and its providers' rules'
    codes, ``context["visit_types"]``: casefolded → code); with ``allow_all``, also ``all``."""

    kind = "choice"

    def __init__(self, *, allow_all: bool, **kwargs):
        self.allow_all = allow_all
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if self.allow_all and data.lower() == calc.ALL:
            return calc.ALL
        code = self.root.context.get("visit_types", {}).get(data.casefold())
        if code is None:
            hint = "all or a visit-type code of GET /v1/settings" if self.allow_all else "a visit-type code of GET /v1/settings"
            raise q.ValidationError(f"Invalid {self.parameter}: '{data[:64]}' is not a visit type (use {hint}).", code="choice")
        return code


def _ids(noun: str, max_items: int = 100, **kwargs) -> q.ListField:
    return q.ListField(child=q.TextField(max_length=128), max_items=max_items, noun=noun, **kwargs)


class V1AvailabilityQuery(q.QueryFilter):
    family = q.V1

    start_date = q.DateOrInstantField(
        required=True, allow_naive=True,
        help_text="YYYY-MM-DD (whole days in each provider's zone) or an ISO 8601 date-time (no offset: the EMR's zone).",
    )
    end_date = q.DateOrInstantField(
        required=True, allow_naive=True, help_text="YYYY-MM-DD (inclusive) or an ISO 8601 date-time (exclusive). At most 31 days."
    )
    provider_ids = _ids("providers", help_text="EHR provider ids, comma-separated.")
    location_ids = _ids("locations", help_text="EHR location ids, comma-separated: only windows at these facilities.")
    provider_type = q.ChoiceField(choices=(PRIMARY, SECONDARY), default=PRIMARY, help_text="primary (default) or secondary.")
    fallback_to_default_hours = q.BoolField(default=False, help_text="Without shifts that date: the organization's default hours.")
    calculation_method = q.ChoiceField(choices=calc.METHODS, default=calc.GAPS, help_text="gaps (default), slots or equal_slots.")
    buffer = q.BoundedIntField(min_value=0, max_value=59, unit=" minutes", help_text="Minutes added after each appointment of visit_type (0 to 59).")
    visit_type = VisitTypeField(allow_all=True, help_text="all (default) or a visit-type code, any case.")
    daily_appointment_limit = q.BoundedIntField(min_value=1, help_text="At least 1; requires daily_limit_type.")
    daily_limit_type = VisitTypeField(allow_all=False, help_text="A visit-type code; requires daily_appointment_limit.")
    max_slot_duration = q.MultipleOfField(min_value=5, max_value=60, multiple=5, unit=" minutes", help_text="5 to 60, a multiple of 5.")
    facility_scoped_scheduling = q.BoolField(default=False, help_text="Only shifts naming a facility; capacity per facility.")

    def validate(self, attrs):
        limit, limit_type = attrs.get("daily_appointment_limit"), attrs.get("daily_limit_type")
        if limit is not None and limit_type is None:
            raise q.ValidationError({"daily_limit_type": "Invalid daily_appointment_limit: requires daily_limit_type."})
        if limit_type is not None and limit is None:
            raise q.ValidationError({"daily_appointment_limit": "Invalid daily_limit_type: requires daily_appointment_limit."})
        return attrs


class V1AvailabilityFetchBody(V1AvailabilityQuery):
    """The live fetch's body: the GET's options, dates only, and 1 to 10 providers."""

    start_date = q.DateField(required=True, help_text="YYYY-MM-DD.")
    end_date = q.DateField(
        required=True, help_text="YYYY-MM-DD. One provider: at most 5 days after start_date; 2-10: equal to start_date."
    )
    provider_ids = _ids("providers", max_items=MAX_FETCH_PROVIDERS, required=True, help_text="EHR provider ids (1-10).")
    location_ids = _ids("locations", help_text="EHR location ids (an array): only windows at these facilities.")


class VisitTypeCodes:
    """casefolded code → code, for the connection's visit types and its providers' rules' codes;
    read on first use (only a query naming a visit type needs them), in one query."""

    def __init__(self, connection: EmrConnection):
        self.connection = connection
        self._codes: dict[str, str] | None = None

    def get(self, key: str, default=None):
        if self._codes is None:
            connection = self.connection
            organization_id = connection.organization_id
            codes = (
                VisitType.objects.filter(organization_id=organization_id, emr_connection=connection)
                .order_by()
                .values_list("code", flat=True)
                .union(
                    VisitTypeRule.objects.filter(organization_id=organization_id, shift__resource__emr_connection=connection)
                    .order_by()
                    .values_list("visit_type_id", flat=True)
                )
            )
            self._codes = {code.casefold(): code for code in sorted(codes, reverse=True)}
        return self._codes.get(key, default)


def _body_params(data) -> dict:
    """A JSON body as the query kit reads it, once each value has its JSON type: arrays of
    strings for the lists, JSON numbers and booleans for the numbers and flags, strings else."""
    if not isinstance(data, dict):
        raise BadRequest("Request body must be a JSON object.")
    fields = V1AvailabilityFetchBody().fields
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise BadRequest(f"Unknown parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}.")
    out: dict = {}
    for name, value in data.items():
        field = fields[name]
        if value is None:
            continue
        if isinstance(field, q.ListField):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise BadRequest(f"Invalid {name}: must be an array of EHR ids (strings).")
            out[name] = value
        elif isinstance(field, q.BoolField):
            if not isinstance(value, bool):
                raise BadRequest(f"Invalid {name}: must be true or false.")
            out[name] = "true" if value else "false"
        elif isinstance(field, q.BoundedIntField):
            if not isinstance(value, int) or isinstance(value, bool):
                raise BadRequest(f"Invalid {name}: must be an integer.")
            out[name] = str(value)
        else:
            if not isinstance(value, str):
                raise BadRequest(f"Invalid {name}: must be a string.")
            out[name] = value
    return out


def _local(value, zone: ZoneInfo) -> datetime:
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


def _request(v: dict, *, connection: EmrConnection, body: bool) -> AvailabilityRequest:
    """The parsed parameters as an ``AvailabilityRequest``, after the checks across them."""
    zone = ZoneInfo(connection.timezone)
    start, end = v["start_date"], v["end_date"]
    clip_start = _local(start, zone) if isinstance(start, datetime) else None
    clip_end = _local(end, zone) if isinstance(end, datetime) else None
    lo = clip_start or datetime.combine(start, time(0), tzinfo=zone)
    hi = clip_end or datetime.combine(end + timedelta(days=1), time(0), tzinfo=zone)
    if hi <= lo:
        raise BadRequest(MSG_END_BEFORE_START)
    if (hi - lo) > timedelta(days=MAX_DAYS, hours=1):  # an hour of slack: a fall-back day is 25 hours long
        raise BadRequest(f"Date range cannot exceed {MAX_DAYS} days.")
    # Instants as bounds: the local dates around them, then cut to the instants. Every provider's
    # zone is within a day of the EMR's, so a day either side covers them all.
    first = start if clip_start is None else (clip_start.astimezone(zone) - timedelta(days=1)).date()
    last = end if clip_end is None else (clip_end.astimezone(zone) + timedelta(days=1)).date()
    if body:
        providers = v["provider_ids"]
        if len(providers) == 1 and (end - start).days > MAX_FETCH_DAYS_SINGLE:
            raise BadRequest(f"Invalid end_date: with one provider, at most {MAX_FETCH_DAYS_SINGLE} days after start_date.")
        if len(providers) > 1 and start != end:
            raise BadRequest(f"Invalid end_date: with 2 to {MAX_FETCH_PROVIDERS} providers, start_date must equal end_date.")
    location_ids = v.get("location_ids")
    return AvailabilityRequest(
        first=first,
        last=last,
        clip_start=clip_start,
        clip_end=clip_end,
        provider_ids=v.get("provider_ids"),
        provider_type=v["provider_type"],
        options=calc.Options(
            method=v["calculation_method"],
            buffer=v.get("buffer") or 0,
            visit_type=v.get("visit_type") or calc.ALL,
            daily_limit=v.get("daily_appointment_limit"),
            daily_limit_type=v.get("daily_limit_type"),
            max_slot_duration=v.get("max_slot_duration"),
            facility_scoped=v["facility_scoped_scheduling"],
            location_ids=frozenset(location_ids) if location_ids is not None else None,
            fallback_to_default_hours=v["fallback_to_default_hours"],
        ),
    )


def availability_query_parse(params, *, connection: EmrConnection) -> AvailabilityRequest:
    parsed = V1AvailabilityQuery.parse(params, visit_types=VisitTypeCodes(connection))
    return _request(parsed, connection=connection, body=False)


def availability_fetch_parse(data, *, connection: EmrConnection) -> AvailabilityRequest:
    parsed = V1AvailabilityFetchBody.parse(_body_params(data), visit_types=VisitTypeCodes(connection))
    return _request(parsed, connection=connection, body=True)


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


class AvailabilityView(V1APIView):
    @extend_schema(
        operation_id="v1_availability",
        tags=["EMR: availability"],
        summary="Availability of providers from cached appointments (never calls the EMR)",
        parameters=[V1AvailabilityQuery],
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
        request=V1AvailabilityFetchBody,
        responses={202: V1FetchAcceptedSerializer, **v1_errors(400, 401, 413, 415, 429)},
    )
    def post(self, request):
        connection = self.emr_connection
        query = availability_fetch_parse(request.data, connection=connection)
        if not vendor_has_adapter(connection.vendor):
            raise BadRequest(availability_unsupported_message(connection.vendor))
        job = availability_fetch_start(connection=connection, request=query)
        return Response({"success": True, "message": ACCEPTED_MESSAGE, "job_id": job.pk}, status=status.HTTP_202_ACCEPTED)
