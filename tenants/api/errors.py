"""Exceptions normalized once, then rendered in each API family's own error shape.

``normalize`` maps domain errors (``tenants.errors``), Django's 404/403 and DRF's exceptions to
one ``ApiError``; each family's exception handler renders it (``/v3/``: ``booking.api.base``,
``/v1/``: ``emr.api.base``, the provider directory: ``directory_exception_handler`` below).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from tenants import errors as domain


class Conflict(exceptions.APIException):  # views only; services raise tenants.errors.Conflict
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class BadRequest(exceptions.APIException):
    """A 400 whose message is shown exactly as given (the ``/v1/`` family's spec messages)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Bad request."
    default_code = "bad_request"


class BadGateway(exceptions.APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "An upstream service failed."
    default_code = "bad_gateway"


@dataclass
class ApiError:
    status: int
    message: str
    errors: list[dict] = field(default_factory=list)  # [{"field": ..., "message": ...}]
    headers: dict = field(default_factory=dict)


def _flatten(detail, path: str = "") -> list[dict]:
    """DRF's nested error detail as a flat list of ``{"field", "message"}``."""
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            name = "body" if key in ("non_field_errors", "__all__") and not path else key
            if isinstance(key, int):
                child = f"{path}[{key}]"
            elif path:
                child = path if key in ("non_field_errors", "__all__") else f"{path}.{name}"
            else:
                child = name
            out.extend(_flatten(value, child))
        return out
    if isinstance(detail, list):
        if detail and all(not isinstance(item, (dict, list)) for item in detail):
            return [{"field": path or "body", "message": str(item)} for item in detail]
        out = []
        for index, item in enumerate(detail):
            if item in ({}, []):
                continue
            out.extend(_flatten(item, f"{path}[{index}]"))
        return out
    return [{"field": path or "body", "message": str(detail)}]


DOMAIN_STATUS = {domain.InvalidInput: 400, domain.NotFound: 404, domain.Conflict: 409}


def _domain(exc: domain.DomainError) -> ApiError:
    code = next((code for kind, code in DOMAIN_STATUS.items() if isinstance(exc, kind)), 400)
    items = exc.errors if isinstance(exc, domain.InvalidInput) else []
    if code == 400 and not items:
        items = [{"field": "body", "message": exc.message}]
    return ApiError(code, exc.message, items)


def normalize(exc: Exception) -> ApiError | None:
    if isinstance(exc, domain.DomainError):
        return _domain(exc)
    if isinstance(exc, Http404):
        message = str(exc) if str(exc) and "matches the given query" not in str(exc) else "Not found."
        return ApiError(404, message)
    if isinstance(exc, DjangoPermissionDenied):
        return ApiError(403, "You do not have permission to perform this action.")
    if not isinstance(exc, exceptions.APIException):
        return None
    headers = {}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
    if isinstance(exc, (exceptions.AuthenticationFailed, exceptions.NotAuthenticated)):
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        first = errors[0] if errors else {"field": "body", "message": "Invalid input."}
        message = f"{first['field']}: {first['message']}" if first["field"] != "body" else first["message"]
        return ApiError(400, message, errors, headers)
    detail = exc.detail
    message = str(detail) if not isinstance(detail, (dict, list)) else "; ".join(e["message"] for e in _flatten(detail))
    # A 400 always names what is wrong; a malformed body is wrong as a whole.
    items = [{"field": "body", "message": message}] if exc.status_code == 400 else []
    return ApiError(exc.status_code, message, items, headers)


# --- the provider directory family (provider-availability.md) -------------------------------

DIRECTORY_MESSAGES = {
    400: "Invalid request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    429: "Too many requests",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}


def directory_error_body(status_code: int, error: str) -> dict:
    """``{"status", "success": false, "message": <fixed per status>, "error": <what is wrong>}``."""
    return {
        "status": status_code,
        "success": False,
        "message": DIRECTORY_MESSAGES.get(status_code, "Error"),
        "error": error,
    }


def directory_error_response(error: ApiError) -> Response:
    message = error.message
    if error.status == 429:
        message = f"Rate limit exceeded for this API key; retry after {error.headers.get('Retry-After', '?')} seconds."
    return Response(directory_error_body(error.status, message), status=error.status, headers=error.headers)


def directory_exception_handler(exc, context):
    """The provider directory's handler; its view maps the upstream (Calendly) failures to an
    ``ApiError`` first (``emr.api.provider_directory``)."""
    error = normalize(exc)
    if error is None:
        return None
    return directory_error_response(error)
