"""OpenAPI helpers for the ``/v1/`` family."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse

# One error component for the whole /v1/ family (the webhook endpoints document it too).
from tenants.api.webhook_views import V1ErrorSerializer


_TEXT = {
    400: "Bad request: `message` names the offending parameter.",
    401: "Missing or wrong `client_id`, `client_secret` or `access_token` header.",
    404: "Not found (or not visible to this EMR connection).",
    413: "Request body too large.",
    415: "Request body is not JSON.",
    429: "Too many requests.",
}


def v1_errors(*codes: int) -> dict:
    return {code: OpenApiResponse(V1ErrorSerializer, description=_TEXT[code]) for code in codes}
