"""OpenAPI helpers for the ``/v3/`` family (error body, pages, common parameters)."""

from __future__ import annotations

from functools import cache

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from booking.api.base import PageQuery


class V3ErrorItemSerializer(serializers.Serializer):
    field = serializers.CharField()
    message = serializers.CharField()


class V3ErrorSerializer(serializers.Serializer):
    statusCode = serializers.IntegerField()
    name = serializers.CharField()
    message = serializers.CharField()
    errors = V3ErrorItemSerializer(many=True)


@cache
def page_of(serializer_class: type[serializers.Serializer]) -> type[serializers.Serializer]:
    name = serializer_class.__name__.removesuffix("Serializer") + "PageSerializer"
    return type(
        name,
        (serializers.Serializer,),
        {
            "data": serializer_class(many=True),
            "count": serializers.IntegerField(),
            "page": serializers.IntegerField(),
            "limit": serializers.IntegerField(),
        },
    )


PAGE_PARAMETERS = [PageQuery]  # the filter class documents its own bounds and defaults


TOO_MANY_REQUESTS = "Too many requests for this credential (or, on the token endpoint, this address); retry after `Retry-After` seconds."


def errors(*codes: int) -> dict:
    """Error responses of a ``/v3/`` operation. Every ``/v3/`` route is rate limited, so 429 is
    always declared."""
    text = {
        400: "Bad request: `errors[].field` names each offending field or parameter.",
        401: "Missing, unknown, revoked or expired credential.",
        404: "Not found (or another organization's object).",
        409: "Conflict.",
        429: TOO_MANY_REQUESTS,
    }
    return {code: OpenApiResponse(V3ErrorSerializer, description=text[code]) for code in (*dict.fromkeys(codes), 429)}


class OAuthErrorCode(serializers.ChoiceField):
    CODES = ["invalid_request", "invalid_client", "unsupported_grant_type"]

    def __init__(self, **kwargs):
        super().__init__(choices=self.CODES, **kwargs)


class OAuthErrorSerializer(V3ErrorSerializer):
    """The token endpoint's errors: the ``/v3/`` body plus RFC 6749 §5.2's ``error`` and
    ``error_description``."""

    error = OAuthErrorCode()
    error_description = serializers.CharField()


def oauth_errors() -> dict:
    text = {
        400: "invalid_request (missing or repeated parameter, malformed body) or unsupported_grant_type.",
        401: "invalid_client: missing, unknown or revoked client credentials, or a wrong secret.",
        413: "invalid_request: the body is too large.",
        415: "invalid_request: the body is neither a form nor JSON.",
    }
    return {
        **{code: OpenApiResponse(OAuthErrorSerializer, description=description) for code, description in text.items()},
        # OAuth defines no rate-limit error: a throttled request gets the plain /v3/ body.
        429: OpenApiResponse(V3ErrorSerializer, description=TOO_MANY_REQUESTS),
    }


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "x-api-key"}


class BearerScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.api.auth.BearerTokenAuthentication"
    name = "OAuth2ClientCredentials"

    def get_security_definition(self, auto_schema):
        return {
            "type": "oauth2",
            "description": "Bearer token from POST /v3/oauth/token (HTTP Basic client_id:client_secret).",
            "flows": {"clientCredentials": {"tokenUrl": "/v3/oauth/token", "scopes": {}}},
        }


class CvApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.api.auth.CvApiKeyAuthentication"
    name = "CvApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "cv-api-key"}
