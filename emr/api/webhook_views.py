"""``/v1/`` webhook registration and event polling (Cobalt-shaped, ``{"success": …}`` bodies).

Thin views: input serializers check JSON types, the services decide and write, nothing is
written on bad input. Ids of other organizations' webhooks and jobs answer 404.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from booking.api.fields import StrictCharField, StrictChoiceField
from emr.api.base import V1APIView
from emr.api.schema import V1ErrorSerializer
from emr.selectors import JOB_ID_PATTERN, job_events_list
from tenants.api.errors import Conflict
from tenants.url_guard import MAX_URL_LENGTH
from tenants.webhooks.selectors import webhook_endpoint_get, webhook_endpoint_list
from tenants.webhooks.services import (
    EVENT_TYPES,
    EndpointConflict,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
)


def _iso(value):
    return value.isoformat() if value is not None else None


def webhook_render(endpoint, *, secret: str | None = None) -> dict:
    body = {
        "id": endpoint.pk,
        "url": endpoint.url,
        "event_types": list(endpoint.event_types or []),
        "status": endpoint.status,
        "disabled_reason": endpoint.disabled_reason or None,
        "previous_secret_expires_at": _iso(endpoint.previous_secret_expires_at),
        "created_at": _iso(endpoint.created_at),
    }
    if secret is not None:
        body["secret"] = secret
    return body


def _service_errors(exc: DjangoValidationError) -> ValidationError:
    return ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"body": exc.messages})


# --- documentation shapes -------------------------------------------------------------------------


class WebhookSerializer(serializers.Serializer):
    id = serializers.CharField()
    url = serializers.CharField()
    event_types = serializers.ListField(child=serializers.CharField())
    status = serializers.CharField(help_text="active or disabled (a 410 Gone answer disables a webhook).")
    disabled_reason = serializers.CharField(allow_null=True)
    previous_secret_expires_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class WebhookWithSecretSerializer(WebhookSerializer):
    secret = serializers.CharField(help_text="whsec_…; shown in this answer only.")


class WebhookCreatedSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    webhook = WebhookWithSecretSerializer()


class WebhookListSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    webhooks = WebhookSerializer(many=True)


class MessageSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField()


class WebhookEventsSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    webhook_events = serializers.ListField(child=serializers.DictField(), help_text="Event payloads, oldest first.")


def _errors(*codes: int) -> dict:
    text = {
        400: "Bad request; the message names the field or parameter.",
        401: "Missing or invalid client_id, client_secret or access_token.",
        404: "Not found (or another organization's).",
        409: "A webhook with this URL is already registered.",
        429: "Too many requests.",
    }
    return {code: OpenApiResponse(V1ErrorSerializer, description=text[code]) for code in codes}


class WebhookCreateInput(serializers.Serializer):
    url = StrictCharField(max_length=MAX_URL_LENGTH, trim_whitespace=True)
    event_types = serializers.ListField(
        child=StrictChoiceField(choices=EVENT_TYPES), required=False, allow_empty=True, max_length=len(EVENT_TYPES) * 2
    )


class WebhookCollectionView(V1APIView):
    """``GET /v1/webhook``: the organization's webhooks (never their secrets).
    ``POST /v1/webhook``: register one; the secret is in this answer only."""

    @extend_schema(operation_id="webhook_list", responses={200: WebhookListSerializer, **_errors(401, 429)})
    def get(self, request):
        return Response({"success": True, "webhooks": [webhook_render(e) for e in webhook_endpoint_list(organization=self.organization)]})

    @extend_schema(
        operation_id="webhook_create",
        request=WebhookCreateInput,
        responses={200: WebhookCreatedSerializer, **_errors(400, 401, 409, 429)},
    )
    def post(self, request):
        data = WebhookCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            issued = webhook_endpoint_create(
                organization=self.organization,
                url=data.validated_data["url"],
                event_types=data.validated_data.get("event_types"),
            )
        except DjangoValidationError as exc:
            raise _service_errors(exc) from None
        except EndpointConflict as exc:
            raise Conflict(str(exc)) from None
        return Response({"success": True, "webhook": webhook_render(issued.endpoint, secret=issued.secret)})


class WebhookItemView(V1APIView):
    """``DELETE /v1/webhook/{id}``: stop sending to it."""

    @extend_schema(operation_id="webhook_delete", responses={200: MessageSerializer, **_errors(401, 404, 429)})
    def delete(self, request, webhook_id: str):
        endpoint = webhook_endpoint_get(organization=self.organization, endpoint_id=webhook_id)
        webhook_endpoint_delete(endpoint=endpoint)
        return Response({"success": True, "message": "Webhook deleted."})


class WebhookRotateSecretView(V1APIView):
    """``POST /v1/webhook/{id}/rotate-secret``: a new secret; the previous one keeps verifying
    (a second ``webhook-signature``) for 24 hours."""

    @extend_schema(
        operation_id="webhook_rotate_secret", request=None, responses={200: WebhookCreatedSerializer, **_errors(401, 404, 429)}
    )
    def post(self, request, webhook_id: str):
        endpoint = webhook_endpoint_get(organization=self.organization, endpoint_id=webhook_id)
        issued = webhook_endpoint_rotate_secret(endpoint=endpoint)
        return Response({"success": True, "webhook": webhook_render(issued.endpoint, secret=issued.secret)})


class WebhookEventsView(V1APIView):
    """``GET /v1/webhook-events?job_id=…``: the events a job produced, also when no webhook is
    registered (the polling alternative)."""

    @extend_schema(
        operation_id="webhook_events_list",
        parameters=[OpenApiParameter("job_id", str, required=True, description="The job_id a live fetch answered with.")],
        responses={200: WebhookEventsSerializer, **_errors(400, 401, 404, 429)},
    )
    def get(self, request):
        job_id = request.query_params.get("job_id")
        if job_id is None or not job_id.strip():
            raise ValidationError("Missing required parameters: job_id.")
        job_id = job_id.strip()
        if not JOB_ID_PATTERN.fullmatch(job_id):
            raise ValidationError({"job_id": "must be a job id such as job_1a2b3c (job_ followed by letters and digits)."})
        events = job_events_list(organization=self.organization, emr_connection=self.emr_connection, job_id=job_id)
        return Response({"success": True, "webhook_events": events})
