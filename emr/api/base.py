"""The ``/v1/`` family's plumbing (Cobalt-shaped): header credentials, ``{"success": false,
"message": ...}`` errors, snake_case bodies."""

from __future__ import annotations

from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from emr.api.auth import EmrCredentialsAuthentication
from tenants.api import errors
from tenants.api import query as q
from tenants.api.throttling import CredentialRateThrottle


def v1_error_body(message: str) -> dict:
    return {"success": False, "message": message}


def v1_exception_handler(exc, context):
    error = errors.normalize(exc)
    if error is None:
        return None
    message = error.message
    if error.status == 401:
        message = "Unauthorized: " + message
    return Response(v1_error_body(message), status=error.status, headers=error.headers)


class V1Throttle(CredentialRateThrottle):
    scope = "v1"


class V1APIView(q.StorableInput, APIView):
    input_family = q.V1
    authentication_classes = [EmrCredentialsAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [V1Throttle]

    def get_exception_handler(self):
        return v1_exception_handler

    @property
    def organization(self):
        return self.request.user.organization

    @property
    def emr_connection(self):
        return self.request.user.emr_connection
