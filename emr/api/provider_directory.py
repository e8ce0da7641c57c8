"""``GET /api/v1/provider-availability``: the provider directory (the ``cv-api-key`` family).

Its own error shape, ``{"status", "success": false, "message", "error"}``, for every answer that
is not a 200: 400 bad query, 401 no or wrong key, 429 over the key's rate (``Retry-After``), and
502/503/504 when Calendly failed, was rate limiting us past the deadline, or did not answer.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from emr.calendly import CalendlyError, CalendlyRateLimited, CalendlyTimeout
from emr.provider_directory import MESSAGE, DirectoryQuery, provider_directory
from tenants.api import errors
from tenants.api import query as q
from tenants.api.auth import CvApiKeyAuthentication
from tenants.api.throttling import CredentialRateThrottle
from tenants.us_states import US_STATE_CODES

MAX_WINDOW = timedelta(days=31)
EVENT_TYPE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def directory_exception_handler(exc, context):
    """The shared directory handler (``tenants.api.errors``), after Calendly's failures: 502, 504
    when it did not answer in time, 503 with ``Retry-After`` when it kept rate limiting us."""
    if isinstance(exc, CalendlyError):
        status, headers = 502, {}
        if isinstance(exc, CalendlyTimeout):
            status = 504
        elif isinstance(exc, CalendlyRateLimited):
            status, headers = 503, {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
        return errors.directory_error_response(errors.ApiError(status, f"Calendly: {exc}", headers=headers))
    return errors.directory_exception_handler(exc, context)


class ProviderDirectoryThrottle(CredentialRateThrottle):
    """``PROVIDER_DIRECTORY_RATE_LIMIT`` requests per API key, counted in the shared cache."""

    scope = "provider_directory"


# --- the query ---------------------------------------------------------------------------------


class DirectoryQueryFilter(q.QueryFilter):
    """The query string (``tenants.api.query``, the directory's wording): blank values read as
    absent; every problem is named, the first one shown as ``"<parameter>: <message>"``."""

    family = q.DIRECTORY
    provider_states = q.ListField(
        child=q.StateField(), required=True, max_items=len(US_STATE_CODES), noun="state codes",
        help_text="Comma-separated US state codes (50 states, DC, PR, VI, GU, AS, MP); spaces trimmed, any case.",
    )
    provider_email = q.TextField(max_length=254, help_text="Only the provider with this email (trimmed, lowercased).")
    event_type_id = q.TextField(max_length=64, help_text="Only this Calendly event type (its UUID).")
    start_time = q.InstantField(help_text="With end_time and event_type_id. A past start is moved to now.")
    end_time = q.InstantField(help_text="At least start_time, at most 31 days after it.")

    def validate(self, attrs):
        problems: dict[str, str] = {}
        email = attrs.get("provider_email")
        if email is not None:
            attrs["provider_email"] = email = email.lower()
            try:
                EmailValidator()(email)
            except DjangoValidationError:
                problems["provider_email"] = "Must be an email address."
        event_type_id = attrs.get("event_type_id")
        if event_type_id is not None and not EVENT_TYPE_ID.fullmatch(event_type_id):
            problems["event_type_id"] = "Must be a Calendly event type id (its UUID)."
        start, end = attrs.get("start_time"), attrs.get("end_time")
        given = [name for name in ("start_time", "end_time") if attrs.get(name) is not None]
        if given:
            verb = "is" if len(given) == 1 else "are"
            for name in ("start_time", "end_time", "event_type_id"):
                if attrs.get(name) is None:
                    problems.setdefault(name, f"Required when {' and '.join(given)} {verb} given.")
        if start is not None and end is not None:
            if end < start:
                problems["end_time"] = "Must not be before start_time."
            elif end - start > MAX_WINDOW:
                problems["end_time"] = "Must be at most 31 days after start_time."
        if problems:
            raise q.ValidationError(problems)
        return attrs


def directory_query_parse(params) -> DirectoryQuery:
    """The query string as a ``DirectoryQuery``, or a ``ValidationError`` naming every problem."""
    attrs = DirectoryQueryFilter.parse(params)
    return DirectoryQuery(
        states=frozenset(attrs["provider_states"]), email=attrs["provider_email"], event_type_id=attrs["event_type_id"],
        start=attrs["start_time"], end=attrs["end_time"],
    )


# --- the view ------------------------------------------------------------------------------------


class DirectoryItemSerializer(serializers.Serializer):
    providerName = serializers.CharField()
    calendlyLink = serializers.CharField(
        help_text="The event type's scheduling URL; with a window, followed by `/<first open start>` "
        "as `YYYY-MM-DDTHH:MM:SS+00:00`."
    )
    startTime = serializers.ListField(
        child=serializers.CharField(), required=False,
        help_text="Only with a window: open start times, `YYYY-MM-DDTHH:MM:SSZ`, sorted.",
    )
    eventTypeId = serializers.CharField(help_text="The Calendly event type's UUID.")


class DirectoryAnswerSerializer(serializers.Serializer):
    status = serializers.IntegerField(default=200)
    success = serializers.BooleanField(default=True)
    message = serializers.CharField(default=MESSAGE)
    data = DirectoryItemSerializer(many=True)


class DirectoryErrorSerializer(serializers.Serializer):
    status = serializers.IntegerField()
    success = serializers.BooleanField()
    message = serializers.CharField()
    error = serializers.CharField()


def _errors(*codes: int) -> dict:
    text = {
        400: "Invalid query: `error` names the parameter.",
        401: "Missing or invalid `cv-api-key`.",
        429: "Over the key's rate limit (`Retry-After`).",
        502: "Calendly failed or answered something unexpected.",
        503: "Calendly is rate limiting the organization's token (`Retry-After`).",
        504: "Calendly did not answer in time.",
    }
    return {code: OpenApiResponse(DirectoryErrorSerializer, description=text[code]) for code in codes}


class ProviderAvailabilityView(q.StorableInput, APIView):
    input_family = q.DIRECTORY
    authentication_classes = [CvApiKeyAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [ProviderDirectoryThrottle]

    def get_exception_handler(self):
        return directory_exception_handler

    @extend_schema(
        operation_id="provider_availability",
        summary="Providers licensed in given states, with their Calendly links (and open times)",
        tags=["Provider directory"],
        parameters=[DirectoryQueryFilter],
        responses={200: DirectoryAnswerSerializer, **_errors(400, 401, 429, 502, 503, 504)},
    )
    def get(self, request):
        query = directory_query_parse(request.query_params)
        data = provider_directory(organization=request.user.organization, query=query)
        return Response({"status": 200, "success": True, "message": MESSAGE, "data": data})
