"""OpenAPI helpers for the ``/v1/`` family."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class V1ErrorSerializer(serializers.Serializer):
    """One error component for the whole /v1/ family (the webhook endpoints document it too)."""

    success = serializers.BooleanField()
    message = serializers.CharField()


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


class EmrCredentialsScheme(OpenApiAuthenticationExtension):
    target_class = "emr.api.auth.EmrCredentialsAuthentication"
    name = ["ClientId", "ClientSecret", "AccessToken"]

    def get_security_requirement(self, auto_schema):
        return {"ClientId": [], "ClientSecret": [], "AccessToken": []}

    def get_security_definition(self, auto_schema):
        return [
            {"type": "apiKey", "in": "header", "name": "client_id"},
            {"type": "apiKey", "in": "header", "name": "client_secret"},
            {"type": "apiKey", "in": "header", "name": "access_token"},
        ]
