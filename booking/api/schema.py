"""OpenAPI helpers for the ``/v3/`` family (error body, pages, common parameters)."""

from __future__ import annotations

from functools import lru_cache

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers


class V3ErrorItemSerializer(serializers.Serializer):
    field = serializers.CharField()
    message = serializers.CharField()


class V3ErrorSerializer(serializers.Serializer):
    statusCode = serializers.IntegerField()
    name = serializers.CharField()
    message = serializers.CharField()
    errors = V3ErrorItemSerializer(many=True)


@lru_cache(maxsize=None)
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


PAGE_PARAMETERS = [
    OpenApiParameter("limit", int, description="Items per page, 1 to 100 (default 20)."),
    OpenApiParameter("page", int, description="Page number from 1 (default 1)."),
]


def errors(*codes: int) -> dict:
    text = {
        400: "Bad request: `errors[].field` names each offending field or parameter.",
        401: "Missing, unknown, revoked or expired credential.",
        404: "Not found (or another organization's object).",
        409: "Conflict.",
        429: "Too many requests.",
    }
    return {code: OpenApiResponse(V3ErrorSerializer, description=text[code]) for code in codes}


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


class EmrCredentialsScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.api.auth.EmrCredentialsAuthentication"
    name = ["ClientId", "ClientSecret", "AccessToken"]

    def get_security_requirement(self, auto_schema):
        return {"ClientId": [], "ClientSecret": [], "AccessToken": []}

    def get_security_definition(self, auto_schema):
        return [
            {"type": "apiKey", "in": "header", "name": "client_id"},
            {"type": "apiKey", "in": "header", "name": "client_secret"},
            {"type": "apiKey", "in": "header", "name": "access_token"},
        ]
