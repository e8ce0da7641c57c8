"""``/v3/appointments``: book, hold, reserve, list, read, confirm, cancel, reschedule.

Thin views: input serializers validate, ``booking.services.appointments`` decides and writes.
``ServiceId``/``LocationId`` in a booking body that are unknown or another tenant's answer 404, as
they do on ``GET /v3/availability``; a ``ResourceIds`` entry that doesn't offer the service at the
location is a 400, as it is there.
"""

from __future__ import annotations

from django.db.models import Q
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from booking.api.base import PageQuery, V3APIView, paginate
from booking.api.fields import (
    InstantField,
    StrictBooleanField,
    StrictCharField,
    StrictEmailField,
    StrictIntegerField,
    window_bound,
)
from booking.api.schema import errors, page_of
from booking.models import Appointment, Location, Service
from booking.selectors import tenant_get
from booking.services.appointments import (
    Customer,
    appointment_book,
    appointment_cancel,
    appointment_confirm,
    appointment_hold,
    appointment_holds_expire,
    appointment_reschedule,
    appointment_reserve,
    appointment_v3_representation,
)
from tenants.api import query as q

MAX_RESOURCES_PER_APPOINTMENT = 20


class StrictUUIDField(serializers.UUIDField):
    """A UUID given as a JSON string (no integers)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("Must be a UUID string.", code="invalid_type")
        return super().to_internal_value(data)


class CustomerSerializer(serializers.Serializer):
    name = StrictCharField(max_length=200, required=False, allow_blank=True, default="")
    email = StrictEmailField(max_length=254, required=False, allow_blank=True, default="")
    phone = StrictCharField(max_length=40, required=False, allow_blank=True, default="")


class AppointmentCreateSerializer(serializers.Serializer):
    ServiceId = StrictUUIDField()
    LocationId = StrictUUIDField()
    startTime = InstantField()
    ResourceIds = serializers.ListField(
        child=StrictUUIDField(), required=False, allow_null=True, max_length=MAX_RESOURCES_PER_APPOINTMENT,
        help_text="Omitted or empty: one resource is chosen as roundRobin would.",
    )
    duration = StrictIntegerField(
        min_value=1, max_value=1440, required=False, allow_null=True,
        help_text="Minutes, as overrideDuration: the service must allow duration selection.",
    )
    customer = CustomerSerializer(required=False)
    patientMrn = StrictCharField(max_length=64, required=False, allow_blank=True, default="")
    notes = StrictCharField(max_length=5000, required=False, allow_blank=True, default="")
    allowPaddingOverflow = StrictBooleanField(required=False, default=False)


class RescheduleSerializer(serializers.Serializer):
    startTime = InstantField()
    allowPaddingOverflow = StrictBooleanField(required=False, default=False)


class AppointmentSerializer(serializers.Serializer):
    """Output only (documentation); rendering is ``appointment_v3_representation``, shared with the
    appointment events."""

    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Appointment.Status.choices, help_text="IN hold, BK booked, RS reserved, CN cancelled.")
    startTime = serializers.CharField(help_text="In the location's zone, with its offset.")
    endTime = serializers.CharField()
    duration = serializers.IntegerField()
    timezone = serializers.CharField()
    ServiceId = serializers.UUIDField(allow_null=True)
    LocationId = serializers.UUIDField(allow_null=True)
    ResourceIds = serializers.ListField(child=serializers.UUIDField())
    source = serializers.ChoiceField(choices=Appointment.Source.values)
    customer = CustomerSerializer()
    patientMrn = serializers.CharField()
    notes = serializers.CharField()
    expiresAt = serializers.CharField(allow_null=True)
    cancelledAt = serializers.CharField(allow_null=True)
    ehrAppointmentId = serializers.CharField(allow_null=True)
    createdAt = serializers.CharField()
    updatedAt = serializers.CharField()

    def to_representation(self, instance):
        return appointment_v3_representation(instance)


def _appointments(organization):
    return (
        Appointment.objects.filter(organization=organization)
        .select_related("location", "service")
        .prefetch_related("resource_links")
        .order_by("start", "id")
    )


class _CreateView(V3APIView):
    create_appointment = staticmethod(appointment_book)

    def _create(self, request):
        incoming = AppointmentCreateSerializer(data=request.data, context=self.get_serializer_context())
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        service = tenant_get(model=Service, organization=self.organization, pk=data["ServiceId"])
        location = tenant_get(model=Location, organization=self.organization, pk=data["LocationId"])
        customer = data.get("customer") or {}
        appointment = type(self).create_appointment(
            organization=self.organization,
            service=service,
            location=location,
            start=data["startTime"],
            resource_ids=[str(r) for r in data.get("ResourceIds") or []] or None,
            duration=data.get("duration"),
            customer=Customer(**customer),
            patient_mrn=data.get("patientMrn", ""),
            notes=data.get("notes", ""),
            allow_padding_overflow=data.get("allowPaddingOverflow", False),
            api_client=request.user.api_client,
        )
        return Response(AppointmentSerializer(appointment).data, status=status.HTTP_201_CREATED)


class AppointmentListQuery(PageQuery):
    startDate = q.DateOrInstantField(
        help_text="Appointments starting at or after (YYYY-MM-DD = 00:00:00 in `timezone`)."
    )
    endDate = q.DateOrInstantField(help_text="Appointments starting at or before (YYYY-MM-DD = 23:59:59 in `timezone`).")
    timezone = q.TimezoneField(default="UTC", help_text="Zone of date-only startDate/endDate (default UTC).")
    ResourceId = q.UUIDField()
    LocationId = q.UUIDField()
    ServiceId = q.UUIDField()
    status = q.ListField(
        child=q.ChoiceField(choices=Appointment.Status.values, case_insensitive=True),
        max_items=len(Appointment.Status.values),
        help_text="IN, BK, RS or CN; several separated by commas.",
    )

    def validate(self, attrs):
        zone = attrs["timezone"]
        for name, is_end in (("startDate", False), ("endDate", True)):
            if attrs[name] is not None:
                attrs[name] = window_bound(attrs[name], zone, is_end=is_end)
        if attrs["startDate"] is not None and attrs["endDate"] is not None and attrs["endDate"] < attrs["startDate"]:
            raise q.ValidationError({"endDate": "Must be on or after startDate."})
        return attrs


class AppointmentCollectionView(_CreateView):
    create_appointment = staticmethod(appointment_book)

    @extend_schema(
        operation_id="appointments_list",
        tags=["Appointments"],
        summary="List appointments",
        parameters=[AppointmentListQuery],
        responses={200: page_of(AppointmentSerializer), **errors(400, 401)},
    )
    def get(self, request):
        query = AppointmentListQuery.parse(request.query_params)
        appointment_holds_expire(organization=self.organization)
        qs = _appointments(self.organization)
        if query["startDate"] is not None:
            qs = qs.filter(start__gte=query["startDate"])
        if query["endDate"] is not None:
            qs = qs.filter(start__lte=query["endDate"])
        if query["ResourceId"] is not None:
            qs = qs.filter(Q(resource_links__resource_id=query["ResourceId"])).distinct()
        if query["LocationId"] is not None:
            qs = qs.filter(location_id=query["LocationId"])
        if query["ServiceId"] is not None:
            qs = qs.filter(service_id=query["ServiceId"])
        if query["status"]:
            qs = qs.filter(status__in=query["status"])
        return paginate(request, qs, AppointmentSerializer, self.get_serializer_context(), query=query)

    @extend_schema(
        operation_id="appointments_book",
        tags=["Appointments"],
        summary="Book an appointment (BK)",
        request=AppointmentCreateSerializer,
        responses={201: AppointmentSerializer, **errors(400, 401, 404, 409)},
    )
    def post(self, request):
        return self._create(request)


class AppointmentHoldView(_CreateView):
    create_appointment = staticmethod(appointment_hold)

    @extend_schema(
        operation_id="appointments_hold",
        tags=["Appointments"],
        summary="Hold a time (IN); the hold lapses after the location's holdExpirationMinutes",
        request=AppointmentCreateSerializer,
        responses={201: AppointmentSerializer, **errors(400, 401, 404, 409)},
    )
    def post(self, request):
        return self._create(request)


class AppointmentReserveView(_CreateView):
    create_appointment = staticmethod(appointment_reserve)

    @extend_schema(
        operation_id="appointments_reserve",
        tags=["Appointments"],
        summary="Reserve a time (RS, no expiry)",
        request=AppointmentCreateSerializer,
        responses={201: AppointmentSerializer, **errors(400, 401, 404, 409)},
    )
    def post(self, request):
        return self._create(request)


class _ItemView(V3APIView):
    def get_appointment(self, pk) -> Appointment:
        return tenant_get(model=Appointment, organization=self.organization, pk=pk)

    @staticmethod
    def refuse_malformed_body(request) -> None:
        """An action without parameters ignores a JSON object's fields, but a body that is not one
        (malformed JSON, an array, null) is a 400 like on every other write."""
        if not isinstance(request.data, dict):  # a body that does not parse raises here
            raise ValidationError({"body": "Must be a JSON object, or empty."})


class AppointmentItemView(_ItemView):
    @extend_schema(
        operation_id="appointments_retrieve",
        tags=["Appointments"],
        summary="Get an appointment",
        responses={200: AppointmentSerializer, **errors(401, 404)},
    )
    def get(self, request, pk):
        appointment = self.get_appointment(pk)
        if appointment_holds_expire(organization=self.organization):
            appointment.refresh_from_db()
        return Response(AppointmentSerializer(appointment).data)


class AppointmentBookView(_ItemView):
    @extend_schema(
        operation_id="appointments_confirm",
        tags=["Appointments"],
        summary="Book a held (IN) or reserved (RS) appointment",
        request=None,
        responses={200: AppointmentSerializer, **errors(400, 401, 404, 409)},
    )
    def put(self, request, pk):
        appointment = self.get_appointment(pk)
        self.refuse_malformed_body(request)
        return Response(AppointmentSerializer(appointment_confirm(appointment=appointment)).data)


class AppointmentCancelView(_ItemView):
    @extend_schema(
        operation_id="appointments_cancel",
        tags=["Appointments"],
        summary="Cancel an appointment (its time is free at once)",
        request=None,
        responses={200: AppointmentSerializer, **errors(400, 401, 404, 409)},
    )
    def put(self, request, pk):
        appointment = self.get_appointment(pk)
        self.refuse_malformed_body(request)
        return Response(AppointmentSerializer(appointment_cancel(appointment=appointment)).data)


class AppointmentRescheduleView(_ItemView):
    @extend_schema(
        operation_id="appointments_reschedule",
        tags=["Appointments"],
        summary="Move an appointment to another start (same length and resources)",
        request=RescheduleSerializer,
        responses={200: AppointmentSerializer, **errors(400, 401, 404, 409)},
    )
    def put(self, request, pk):
        appointment = self.get_appointment(pk)
        incoming = RescheduleSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        moved = appointment_reschedule(
            appointment=appointment,
            start=incoming.validated_data["startTime"],
            allow_padding_overflow=incoming.validated_data["allowPaddingOverflow"],
        )
        return Response(AppointmentSerializer(moved).data)


__all__ = [
    "AppointmentBookView",
    "AppointmentCancelView",
    "AppointmentCollectionView",
    "AppointmentHoldView",
    "AppointmentItemView",
    "AppointmentRescheduleView",
    "AppointmentReserveView",
]
