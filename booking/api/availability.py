"""``GET /v3/availability`` and ``GET /v3/availability/explain``: parameter parsing and thin views.

Parameters are checked in two steps: first their form (this module; every problem is reported at
once, each naming its parameter), then what needs the data (``booking.availability.selectors``:
404 for an unknown location or service, the service-dependent checks).
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, time
from datetime import timezone as dt_timezone

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from booking.api.base import V3APIView
from booking.api.fields import MAX_YEAR, MIN_YEAR, parse_instant
from booking.api.schema import TOO_MANY_REQUESTS, V3ErrorSerializer
from booking.availability import engine, wallclock
from booking.availability.selectors import AvailabilityParams, availability_answer, availability_explain
from tenants.models import available_timezones

MAX_DAYS = 31
MAX_MINUTES = 1440
MAX_RESOURCE_IDS = 200
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # ASCII digits, whole string (fullmatch)
_INTEGER = re.compile(r"[+-]?[0-9]{1,9}")

MESSAGES = {
    "required": "This parameter is required.",
    "date": "Must be a date (YYYY-MM-DD) or an ISO 8601 date-time with offset, e.g. 2025-03-21T09:00:00-04:00 "
    "(encode '+' as %2B), between 1970 and 2200.",
    "instant": "Must be an ISO 8601 date-time with offset, e.g. 2025-03-21T09:00:00-04:00 (encode '+' as %2B).",
    "uuid": "Must be a UUID.",
    "boolean": "Must be true or false.",
    "integer": "Must be an integer.",
}


class QueryErrors(dict):
    def add(self, field: str, message: str) -> None:
        self.setdefault(field, []).append(message)


def query_single(params, name: str) -> str | None:
    value = params.get(name)
    return value.strip() if isinstance(value, str) else value


def query_uuid(errors: QueryErrors, params, name: str, required: bool = True) -> uuid.UUID | None:
    value = query_single(params, name)
    if value in (None, ""):
        if required:
            errors.add(name, MESSAGES["required"])
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        errors.add(name, MESSAGES["uuid"])
        return None


def query_boolean(errors: QueryErrors, params, name: str) -> bool:
    value = query_single(params, name)
    if value in (None, ""):
        return False
    if value.lower() not in BOOLEANS:
        errors.add(name, MESSAGES["boolean"])
        return False
    return BOOLEANS[value.lower()]


def query_minutes(errors: QueryErrors, params, name: str) -> int | None:
    value = query_single(params, name)
    if value in (None, ""):
        return None
    if not _INTEGER.fullmatch(value):
        errors.add(name, MESSAGES["integer"])
        return None
    number = int(value)
    if number < 1:
        errors.add(name, "Must be at least 1.")
    elif number > MAX_MINUTES:
        errors.add(name, f"Must be at most {MAX_MINUTES} (minutes).")
    else:
        return number
    return None


def _instant_text(value: str) -> str:
    # An unencoded '+' in a query string arrives as a space: "09:00:00 05:30" meant "+05:30".
    return re.sub(r" ([0-9]{2}:?[0-9]{2})\Z", r"+\1", value)


def parse_instant_param(value: str) -> datetime | None:
    return parse_instant(_instant_text(value))


def query_date_or_instant(errors: QueryErrors, params, name: str, zone: str | None, is_end: bool, required: bool):
    value = query_single(params, name)
    if value in (None, ""):
        if required:
            errors.add(name, MESSAGES["required"])
        return None
    if _DATE.fullmatch(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            errors.add(name, MESSAGES["date"])
            return None
        if not MIN_YEAR <= day.year <= MAX_YEAR:
            errors.add(name, MESSAGES["date"])
            return None
        if zone is None:
            return None  # the timezone is wrong; reported on its own
        # Rule 1: "A date-only startDate is 00:00:00 and a date-only endDate 23:59:59 of that date
        # in timezone (default UTC)."
        wall = time(23, 59, 59) if is_end else time(0, 0)
        return wallclock.instant(wallclock.wall_to_epoch(zone, day, wall, is_end))
    parsed = parse_instant_param(value)
    if parsed is None:
        errors.add(name, MESSAGES["date"])
    return parsed


def availability_params_parse(params, *, window_required: bool = True) -> tuple[AvailabilityParams | None, QueryErrors]:
    """Parse the query string; returns the parameters, or None with the errors by parameter."""
    errors = QueryErrors()
    zone = query_single(params, "timezone") or "UTC"
    if zone not in available_timezones():
        errors.add("timezone", f"'{zone[:64]}' is not a known IANA time zone.")
        zone_ok = None
    else:
        zone_ok = zone
    start = query_date_or_instant(errors, params, "startDate", zone_ok, False, window_required)
    end = query_date_or_instant(errors, params, "endDate", zone_ok, True, window_required)
    if start is not None and end is not None:
        if end < start:
            errors.add("endDate", "Must be on or after startDate.")
        else:
            first = wallclock.local_date(wallclock.epoch(start), zone_ok or "UTC")
            last = wallclock.local_date(wallclock.epoch(end), zone_ok or "UTC")
            if (last - first).days + 1 > MAX_DAYS:
                errors.add("endDate", f"The range may cover at most {MAX_DAYS} calendar days.")
    location_id = query_uuid(errors, params, "LocationId")
    service_id = query_uuid(errors, params, "ServiceId")

    resource_ids = None
    raw_ids = [v for item in params.getlist("ResourceIds") for v in item.split(",")] if hasattr(params, "getlist") else []
    raw_ids = [v.strip() for v in raw_ids if v.strip()]
    if raw_ids:
        if len(raw_ids) > MAX_RESOURCE_IDS:
            errors.add("ResourceIds", f"At most {MAX_RESOURCE_IDS} resources.")
        parsed_ids = []
        for value in raw_ids[:MAX_RESOURCE_IDS]:
            try:
                parsed_ids.append(str(uuid.UUID(value)))
            except ValueError:
                errors.add("ResourceIds", f"'{value[:64]}' is not a UUID.")
        resource_ids = tuple(dict.fromkeys(parsed_ids))

    round_robin = query_single(params, "roundRobin") or None
    if round_robin is not None:
        if round_robin.upper() not in engine.ROUND_ROBIN_MODES:
            errors.add("roundRobin", f"Must be one of {', '.join(engine.ROUND_ROBIN_MODES)}.")
            round_robin = None
        else:
            round_robin = round_robin.upper()
    sync_external = query_boolean(errors, params, "syncExternal")
    first_available = query_boolean(errors, params, "firstAvailable")
    allow_overflow = query_boolean(errors, params, "allowPaddingOverflow")
    override = query_minutes(errors, params, "overrideDuration")
    interval = query_minutes(errors, params, "interval")
    if errors:
        return None, errors
    if start is None:  # the window is optional (explain): a placeholder the caller replaces
        start = end = datetime.fromtimestamp(0, tz=dt_timezone.utc)
    elif end is None:
        end = start
    return (
        AvailabilityParams(
            location_id=location_id,
            service_id=service_id,
            start=start,
            end=end,
            zone=zone,
            resource_ids=resource_ids,
            round_robin=round_robin,
            sync_external=sync_external,
            override_duration=override,
            interval=interval,
            first_available=first_available,
            allow_padding_overflow=allow_overflow,
        ),
        errors,
    )


# --- schema ---------------------------------------------------------------------------------


class SlotSerializer(serializers.Serializer):
    start_time = serializers.CharField(help_text="YYYY-MM-DDTHH:MM:SS±HH:MM in `timezone`.")
    end_time = serializers.CharField()
    LocationId = serializers.UUIDField()
    ResourceIds = serializers.ListField(child=serializers.UUIDField())


class DaySlotSerializer(serializers.Serializer):
    start_time = serializers.CharField()
    end_time = serializers.CharField()
    ResourceIds = serializers.ListField(child=serializers.UUIDField())


class AvailabilitySerializer(serializers.Serializer):
    ServiceId = serializers.UUIDField()
    availableTimes = SlotSerializer(many=True)
    availableDays = serializers.DictField(
        child=serializers.ListField(child=DaySlotSerializer()), help_text="One key per local date (YYYY-MM-DD)."
    )


class ReasonSerializer(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=[
            "outside_working_hours", "location_closed", "blocked", "appointment", "padding", "capacity_full",
            "external_busy", "in_past", "not_linked", "inactive",
        ]
    )
    id = serializers.CharField(allow_null=True, help_text="The object behind the reason.")
    message = serializers.CharField()


class ExplanationSerializer(serializers.Serializer):
    ResourceId = serializers.UUIDField()
    ServiceId = serializers.UUIDField()
    LocationId = serializers.UUIDField()
    time = serializers.CharField()
    available = serializers.BooleanField()
    onGrid = serializers.BooleanField(help_text="Whether the time is on the resource's slot grid (rule 7).")
    reasons = ReasonSerializer(many=True)


def _error(code: int, text: str) -> OpenApiResponse:
    return OpenApiResponse(V3ErrorSerializer, description=text)


AVAILABILITY_PARAMETERS = [
    OpenApiParameter("startDate", str, required=True, description="YYYY-MM-DD (00:00:00 in `timezone`) or ISO 8601 with offset."),
    OpenApiParameter("endDate", str, required=True, description="YYYY-MM-DD (23:59:59 in `timezone`) or ISO 8601 with offset; at most 31 calendar days after startDate."),
    OpenApiParameter("LocationId", str, required=True),
    OpenApiParameter("ServiceId", str, required=True),
    OpenApiParameter("ResourceIds", str, many=True, explode=True, description=(
        f"Repeat the parameter, or give comma-separated ids (shorter: use it for large sets); at most {MAX_RESOURCE_IDS}."
    )),
    OpenApiParameter("roundRobin", str, enum=list(engine.ROUND_ROBIN_MODES)),
    OpenApiParameter("syncExternal", bool),
    OpenApiParameter("timezone", str, description="IANA zone of the answer (default UTC)."),
    OpenApiParameter("overrideDuration", int, description="Minutes; the service must allow duration selection."),
    OpenApiParameter("interval", int, description="Minutes between candidate starts."),
    OpenApiParameter("firstAvailable", bool),
    OpenApiParameter("allowPaddingOverflow", bool),
]
ERRORS = {
    400: _error(400, "Bad request: `errors[].field` names each offending parameter."),
    401: _error(401, "Missing, unknown, revoked or expired credential."),
    404: _error(404, "Unknown location, service or resource."),
    429: _error(429, TOO_MANY_REQUESTS),
}


class AvailabilityView(V3APIView):
    @extend_schema(
        operation_id="availability_retrieve",
        tags=["Availability"],
        summary="Bookable slots of a service at a location",
        parameters=AVAILABILITY_PARAMETERS
        + [OpenApiParameter("X-Cache", str, OpenApiParameter.HEADER, response=[200], enum=["HIT", "MISS"])],
        responses={200: AvailabilitySerializer, **ERRORS},
    )
    def get(self, request):
        params, errors = availability_params_parse(request.query_params)
        if params is None:
            raise ValidationError(errors)
        answer = availability_answer(organization=self.organization, params=params)
        response = HttpResponse(answer.body, content_type="application/json")
        response["X-Cache"] = answer.cache
        return response


class AvailabilityExplainView(V3APIView):
    @extend_schema(
        operation_id="availability_explain",
        tags=["Availability"],
        summary="Why a resource can or cannot take the service at a time",
        parameters=[
            OpenApiParameter("ResourceId", str, required=True),
            OpenApiParameter("time", str, required=True, description="ISO 8601 date-time with offset."),
        ]
        + [p for p in AVAILABILITY_PARAMETERS if p.name not in ("startDate", "endDate", "ResourceIds", "firstAvailable")],
        responses={200: ExplanationSerializer, **ERRORS},
    )
    def get(self, request):
        params, errors = availability_params_parse(request.query_params, window_required=False)
        resource_id = query_uuid(errors, request.query_params, "ResourceId")
        at_text = query_single(request.query_params, "time")
        at = None
        if not at_text:
            errors.add("time", MESSAGES["required"])
        else:
            at = parse_instant_param(at_text)
            if at is None:
                errors.add("time", MESSAGES["instant"])
        if errors:
            raise ValidationError(errors)
        return Response(availability_explain(organization=self.organization, params=params, resource_id=resource_id, at=at))
