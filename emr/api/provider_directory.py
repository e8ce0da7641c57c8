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
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from booking.api.fields import parse_instant
from emr.calendly import CalendlyError, CalendlyRateLimited, CalendlyTimeout
from emr.provider_directory import MESSAGE, DirectoryQuery, provider_directory
from tenants.api import errors
from tenants.api.auth import CvApiKeyAuthentication
from tenants.api.throttling import CredentialRateThrottle
from tenants.us_states import US_STATE_CODES

MAX_WINDOW = timedelta(days=31)
PARAMETERS = ("provider_states", "provider_email", "event_type_id", "start_time", "end_time")
EVENT_TYPE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MESSAGES = {400: "Invalid request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
            429: "Too many requests", 502: "Bad gateway", 503: "Service unavailable", 504: "Gateway timeout"}


def directory_error_body(status: int, error: str) -> dict:
    return {"status": status, "success": False, "message": MESSAGES.get(status, "Error"), "error": error}


def directory_exception_handler(exc, context):
    if isinstance(exc, CalendlyError):
        status, headers = 502, {}
        if isinstance(exc, CalendlyTimeout):
            status = 504
        elif isinstance(exc, CalendlyRateLimited):
            status, headers = 503, {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
        return Response(directory_error_body(status, f"Calendly: {exc}"), status=status, headers=headers)
    error = errors.normalize(exc)
    if error is None:
        return None
    message = error.message
    if error.status == 429:
        message = f"Rate limit exceeded for this API key; retry after {error.headers.get('Retry-After', '?')} seconds."
    return Response(directory_error_body(error.status, message), status=error.status, headers=error.headers)


class ProviderDirectoryThrottle(CredentialRateThrottle):
    """``PROVIDER_DIRECTORY_RATE_LIMIT`` requests per API key, counted in the shared cache."""

    scope = "provider_directory"


# --- the query ---------------------------------------------------------------------------------


def _instant(errors_: dict, params, name: str):
    value = params.get(name)
    if value is None:
        return None
    value = value.strip()
    # An unencoded '+' in a query string arrives as a space: "12:00:00 05:30" meant "+05:30".
    value = re.sub(r" ([0-9]{2}:?[0-9]{2})\Z", r"+\1", value)
    parsed = parse_instant(value) if value else None
    if parsed is None:
        errors_[name] = "must be an ISO 8601 date-time with offset, e.g. 2024-01-01T12:00:00Z (encode '+' as %2B)."
    return parsed


def directory_query_parse(params) -> DirectoryQuery:
    """The query string as a ``DirectoryQuery``, or a ``ValidationError`` naming every problem."""
    problems: dict[str, str] = {}
    for name in PARAMETERS:
        if len(params.getlist(name)) > 1:
            problems[name] = "must be given once."
        elif "\x00" in (params.get(name) or ""):
            problems[name] = "must not contain NUL characters."
    if problems:
        raise ValidationError(problems)

    states: frozenset[str] = frozenset()
    raw = params.get("provider_states")
    if raw is None or not raw.strip():
        problems["provider_states"] = "is required: comma-separated US state codes, e.g. CA,NY."
    elif len(raw) > 1000:
        problems["provider_states"] = "is too long."
    else:
        codes = [code.strip().upper() for code in raw.split(",")]
        bad = sorted({code for code in codes if code not in US_STATE_CODES}, key=lambda c: (c == "", c))
        if bad:
            shown = ", ".join(repr(code) if code else "an empty code" for code in bad[:10])
            problems["provider_states"] = f"not a US state code: {shown}."
        else:
            states = frozenset(codes)

    email = params.get("provider_email")
    if email is not None:
        email = email.strip().lower()
        if not email or len(email) > 254:
            problems["provider_email"] = "must be an email address."
        else:
            try:
                EmailValidator()(email)
            except DjangoValidationError:
                problems["provider_email"] = "must be an email address."

    event_type_id = params.get("event_type_id")
    if event_type_id is not None:
        event_type_id = event_type_id.strip()
        if not EVENT_TYPE_ID.fullmatch(event_type_id):
            problems["event_type_id"] = "must be a Calendly event type id (its UUID)."

    start, end = _instant(problems, params, "start_time"), _instant(problems, params, "end_time")
    given = [name for name in ("start_time", "end_time") if params.get(name) is not None]
    if given:
        for name in ("start_time", "end_time", "event_type_id"):
            if params.get(name) is None:
                problems.setdefault(name, f"is required when {' and '.join(given)} {'is' if len(given) == 1 else 'are'} given.")
    if start is not None and end is not None:
        if end < start:
            problems["end_time"] = "must not be before start_time."
        elif end - start > MAX_WINDOW:
            problems["end_time"] = "must be at most 31 days after start_time."
    if problems:
        raise ValidationError(problems)
    return DirectoryQuery(states=states, email=email, event_type_id=event_type_id, start=start, end=end)


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


class ProviderAvailabilityView(APIView):
    authentication_classes = [CvApiKeyAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [ProviderDirectoryThrottle]

    def get_exception_handler(self):
        return directory_exception_handler

    @extend_schema(
        operation_id="provider_availability",
        summary="Providers licensed in given states, with their Calendly links (and open times)",
        tags=["Provider directory"],
        parameters=[
            OpenApiParameter("provider_states", str, required=True,
                             description="Comma-separated US state codes (50 states, DC, PR, VI, GU, AS, MP); spaces trimmed, any case."),
            OpenApiParameter("provider_email", str, description="Only the provider with this email (trimmed, lowercased)."),
            OpenApiParameter("event_type_id", str, description="Only this Calendly event type (its UUID)."),
            OpenApiParameter("start_time", str, description="ISO 8601 date-time; with end_time and event_type_id. A past start is moved to now."),
            OpenApiParameter("end_time", str, description="ISO 8601 date-time, at least start_time, at most 31 days after it."),
        ],
        responses={200: DirectoryAnswerSerializer, **_errors(400, 401, 429, 502, 503, 504)},
    )
    def get(self, request):
        query = directory_query_parse(request.query_params)
        data = provider_directory(organization=request.user.organization, query=query)
        return Response({"status": 200, "success": True, "message": MESSAGE, "data": data})
