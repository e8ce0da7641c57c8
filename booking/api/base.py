"""The ``/v3/`` family's plumbing: authentication, error shape, pagination, base views."""

from __future__ import annotations

from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.api import errors
from tenants.api import query as q
from tenants.api.auth import ApiKeyAuthentication, BearerTokenAuthentication
from tenants.api.throttling import CredentialRateThrottle

V3_ERROR_NAMES = {
    400: "BadRequestError",
    401: "UnauthorizedError",
    403: "ForbiddenError",
    404: "NotFoundError",
    405: "MethodNotAllowedError",
    406: "NotAcceptableError",
    409: "ConflictError",
    413: "PayloadTooLargeError",
    415: "UnsupportedMediaTypeError",
    429: "TooManyRequestsError",
    502: "BadGatewayError",
    503: "ServiceUnavailableError",
}


def v3_error_body(status: int, message: str, errors_list: list | None = None) -> dict:
    return {
        "statusCode": status,
        "name": V3_ERROR_NAMES.get(status, "Error"),
        "message": message,
        "errors": errors_list or [],
    }


def v3_exception_handler(exc, context):
    error = errors.normalize(exc)
    if error is None:
        return None  # a real bug: let Django log it and answer 500
    return Response(v3_error_body(error.status, error.message, error.errors), status=error.status, headers=error.headers)



class V3Throttle(CredentialRateThrottle):
    scope = "v3"


class V3APIView(q.StorableInput, APIView):
    input_family = q.V3
    authentication_classes = [ApiKeyAuthentication, BearerTokenAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [V3Throttle]

    def get_exception_handler(self):
        return v3_exception_handler

    @property
    def organization(self):
        return self.request.user.organization

    def get_serializer_context(self) -> dict:
        return {"request": self.request, "organization": self.organization, "view": self}


class PageQuery(q.QueryFilter):
    """``?limit=1..100 (20)&page=1..``; a collection's filter class derives from it."""

    limit = q.BoundedIntField(min_value=1, max_value=100, default=20, help_text="Items per page.")
    page = q.BoundedIntField(
        min_value=1,
        max_value=1_000_000,
        default=1,
        help_text="Page number; a page past the last one answers an empty `data` with the real `count`.",
    )


def paginate(request, queryset, serializer_class, context: dict, *, query: dict | None = None) -> Response:
    """``{"data", "count", "page", "limit"}``; ``query`` is the parsed filter (a ``PageQuery``),
    parsed here when not given."""
    query = query if query is not None else PageQuery.parse(request.query_params)
    limit, page = query["limit"], query["page"]
    count = queryset.count()
    offset = (page - 1) * limit
    items = list(queryset[offset : offset + limit]) if offset < count else []
    return Response(
        {"data": serializer_class(items, many=True, context=context).data, "count": count, "page": page, "limit": limit}
    )
