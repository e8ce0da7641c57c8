"""``GET /v3/availability`` and ``GET /v3/availability/explain``: parameter parsing and thin views.

Parameters are checked in two steps: first their form (the filter classes here, built from the
query kit ``tenants.api.query``; every problem is reported at once, each naming its parameter),
then what needs the data (``booking.availability.selectors``: 404 for an unknown location or
service, the service-dependent checks).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from django.http import HttpResponse
from django.utils.cache import patch_vary_headers
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.compat import split_header_value
from rest_framework.response import Response

from booking.api.base import V3APIView
from booking.api.express import availability_express_get, availability_express_key_of
from booking.api.fields import window_bound
from booking.api.schema import TOO_MANY_REQUESTS, V3ErrorSerializer
from booking.availability import engine
from booking.availability.selectors import AvailabilityParams, availability_answer, availability_explain
from booking.availability.wallclock import epoch, local_date
from booking.services.external_calendars import availability_external_sync
from tenants.api import query as q

MAX_DAYS = 31
MAX_MINUTES = 1440
MAX_RESOURCE_IDS = 200


def _minutes(help_text: str) -> q.BoundedIntField:
    return q.BoundedIntField(min_value=1, max_value=MAX_MINUTES, unit=" (minutes)", help_text=help_text)


class _AvailabilityOptions(q.QueryFilter):
    """The parameters ``/v3/availability`` and its explainer share."""

    LocationId = q.UUIDField(required=True)
    ServiceId = q.UUIDField(required=True)
    roundRobin = q.ChoiceField(choices=engine.ROUND_ROBIN_MODES, case_insensitive=True)
    syncExternal = q.BoolField(default=False)
    timezone = q.TimezoneField(default="UTC", help_text="IANA zone of the answer (default UTC).")
    overrideDuration = _minutes("Minutes; the service must allow duration selection.")
    interval = _minutes("Minutes between candidate starts.")
    allowPaddingOverflow = q.BoolField(default=False)


def _params(values: dict, *, start: datetime, end: datetime, resource_ids=None, first_available=False):
    return AvailabilityParams(
        location_id=values["LocationId"],
        service_id=values["ServiceId"],
        start=start,
        end=end,
        zone=values["timezone"],
        resource_ids=resource_ids,
        round_robin=values["roundRobin"],
        sync_external=values["syncExternal"],
        override_duration=values["overrideDuration"],
        interval=values["interval"],
        first_available=first_available,
        allow_padding_overflow=values["allowPaddingOverflow"],
    )


class AvailabilityQuery(_AvailabilityOptions):
    startDate = q.DateOrInstantField(
        required=True, help_text="YYYY-MM-DD (00:00:00 in `timezone`) or ISO 8601 with offset."
    )
    endDate = q.DateOrInstantField(
        required=True,
        help_text=f"YYYY-MM-DD (23:59:59 in `timezone`) or ISO 8601 with offset; at most {MAX_DAYS} calendar days "
        "after startDate.",
    )
    ResourceIds = q.ListField(
        child=q.UUIDField(),
        max_items=MAX_RESOURCE_IDS,
        noun="resources",
        help_text=f"Repeat the parameter, or give comma-separated ids (shorter: use it for large sets); at most {MAX_RESOURCE_IDS}.",
    )
    firstAvailable = q.BoolField(default=False)

    def validate(self, attrs):
        zone = attrs["timezone"]
        start = window_bound(attrs["startDate"], zone, is_end=False)
        end = window_bound(attrs["endDate"], zone, is_end=True)
        if end < start:
            raise q.ValidationError({"endDate": "Must be on or after startDate."})
        if (local_date(epoch(end), zone) - local_date(epoch(start), zone)).days + 1 > MAX_DAYS:
            raise q.ValidationError({"endDate": f"The range may cover at most {MAX_DAYS} calendar days."})
        return {**attrs, "startDate": start, "endDate": end}


class ExplainQuery(_AvailabilityOptions):
    ResourceId = q.UUIDField(required=True)
    time = q.InstantField(required=True, help_text="ISO 8601 date-time with offset.")


def availability_query_parse(params) -> AvailabilityParams:
    values = AvailabilityQuery.parse(params)
    ids = values["ResourceIds"]
    return _params(
        values,
        start=values["startDate"],
        end=values["endDate"],
        resource_ids=tuple(str(i) for i in ids) if ids is not None else None,
        first_available=values["firstAvailable"],
    )


def explain_query_parse(params) -> tuple[AvailabilityParams, datetime, uuid.UUID]:
    """The parameters (the window is a placeholder: the explainer asks about one instant), the
    instant and the resource."""
    values = ExplainQuery.parse(params)
    placeholder = datetime.fromtimestamp(0, tz=UTC)
    return _params(values, start=placeholder, end=placeholder), values["time"], values["ResourceId"]


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


ERRORS = {
    400: _error(400, "Bad request: `errors[].field` names each offending parameter."),
    401: _error(401, "Missing, unknown, revoked or expired credential."),
    404: _error(404, "Unknown location, service or resource."),
    429: _error(429, TOO_MANY_REQUESTS),
}


class AvailabilityView(V3APIView):
    def dispatch(self, request, *args, **kwargs):
        """A repeated query with a known API key is answered from the cache before DRF runs
        (``booking.api.express``), with the headers DRF would add; anything else, as usual."""
        if request.method == "GET":
            (throttle,) = self.throttle_classes  # the one rate limit express_read counts
            response = availability_express_get(request, scope=throttle.scope)
            if response is not None:
                headers = self.default_response_headers
                vary = headers.pop("Vary", None)
                if vary is not None:
                    patch_vary_headers(response, list(split_header_value(vary)))
                for name, value in headers.items():
                    response[name] = value
                return response
        return super().dispatch(request, *args, **kwargs)

    @extend_schema(
        operation_id="availability_retrieve",
        tags=["Availability"],
        summary="Bookable slots of a service at a location",
        parameters=[
            AvailabilityQuery,
            OpenApiParameter("X-Cache", str, OpenApiParameter.HEADER, response=[200], enum=["HIT", "MISS"]),
        ],
        responses={200: AvailabilitySerializer, **ERRORS},
    )
    def get(self, request):
        params = availability_query_parse(request.query_params)
        sync_failed = params.sync_external and not availability_external_sync(organization=self.organization, params=params)
        express_key = None if params.sync_external else availability_express_key_of(request, organization_id=self.organization.pk)
        answer = availability_answer(
            organization=self.organization, params=params, sync_failed=sync_failed, express_key=express_key
        )
        response = HttpResponse(answer.body, content_type="application/json")
        response["X-Cache"] = answer.cache
        return response


class AvailabilityExplainView(V3APIView):
    @extend_schema(
        operation_id="availability_explain",
        tags=["Availability"],
        summary="Why a resource can or cannot take the service at a time",
        parameters=[ExplainQuery],
        responses={200: ExplanationSerializer, **ERRORS},
    )
    def get(self, request):
        params, at, resource_id = explain_query_parse(request.query_params)
        return Response(availability_explain(organization=self.organization, params=params, resource_id=resource_id, at=at))
