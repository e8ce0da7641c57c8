"""``/v1/`` EMR endpoints: appointments (live fetch and cache), providers, locations, settings.

Thin views: parse (serializers), call a selector or service, render. Everything is scoped to the
EMR connection the ``access_token`` names.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from emr.api import serializers as s
from emr.api.base import V1APIView
from emr.api.schema import v1_errors
from emr.representation import appointment_v1_representation, visit_type_descriptions
from emr.selectors import (
    appointments_cached,
    location_get,
    locations_visible,
    provider_get,
    providers_visible,
)
from emr.services.live_fetch import live_fetch_start
from emr.services.providers import location_update, provider_update

ACCEPTED_MESSAGE = "Live fetch request accepted. Results will be sent via webhook when ready."


class AppointmentsFetchView(V1APIView):
    @extend_schema(
        operation_id="v1_appointments_fetch",
        tags=["EMR: appointments"],
        summary="Live fetch of appointments from the EMR (asynchronous; the result arrives as an "
        "appointment.live_fetch_completed event)",
        request=s.V1FetchRequestSerializer,
        responses={202: s.V1FetchAcceptedSerializer, **v1_errors(400, 401, 413, 415, 429)},
    )
    def post(self, request):
        fetch = s.fetch_request_parse(request.data)
        job = live_fetch_start(connection=self.emr_connection, request=fetch)
        return Response({"success": True, "message": ACCEPTED_MESSAGE, "job_id": job.pk}, status=status.HTTP_202_ACCEPTED)


class AppointmentsView(V1APIView):
    @extend_schema(
        operation_id="v1_appointments_list",
        tags=["EMR: appointments"],
        summary="Cached appointments (never calls the EMR)",
        parameters=[s.V1AppointmentQuery],
        responses={200: s.V1AppointmentListSerializer, **v1_errors(400, 401, 429)},
    )
    def get(self, request):
        connection = self.emr_connection
        query = s.V1AppointmentQuery.parse(request.query_params, zone=ZoneInfo(connection.timezone))
        appointments = appointments_cached(
            connection=connection,
            start=query["start_date"],
            end=query["end_date"],
            patient_mrn=query["patient_mrn"],
            patient_name=query["patient_name"],
            provider_ehr_id=query["provider_ehr_id"],
            status=query["status"],
        )
        descriptions = visit_type_descriptions(connection=connection)
        return Response(
            {
                "success": True,
                "appointments": [
                    appointment_v1_representation(a, connection=connection, descriptions=descriptions) for a in appointments
                ],
            }
        )


class ProvidersView(V1APIView):
    @extend_schema(
        operation_id="v1_providers_list",
        tags=["EMR: providers and locations"],
        summary="Providers with their hours, facilities and visit-type rules",
        responses={200: s.V1ProviderListSerializer, **v1_errors(401, 429)},
    )
    def get(self, request):
        connection = self.emr_connection
        providers = providers_visible(connection=connection)
        return Response(
            {"success": True, "providers": [s.provider_representation(p, connection=connection) for p in providers]}
        )


class _ProviderItemView(V1APIView):
    def _provider(self, **kwargs):
        raise NotImplementedError

    def _patch(self, request, **kwargs):
        connection = self.emr_connection
        provider = self._provider(**kwargs)
        incoming = s.V1ProviderPatchSerializer(data=request.data, context={"connection": connection})
        incoming.is_valid(raise_exception=True)
        data = {k: v for k, v in incoming.validated_data.items() if k != "hours"}
        if "hours" in incoming.validated_data:
            data["hours"] = incoming.shifts()
        provider_update(resource=provider, data=data)
        provider = self._provider(**kwargs)  # fresh, with its new shifts
        return Response({"success": True, "provider": s.provider_representation(provider, connection=connection)})


class ProviderItemView(_ProviderItemView):
    def _provider(self, *, pk):
        return provider_get(connection=self.emr_connection, pk=pk)

    @extend_schema(
        operation_id="v1_providers_update",
        tags=["EMR: providers and locations"],
        summary="Change a provider's status, visibility or hours (hours replace all existing hours)",
        request=s.V1ProviderPatchSerializer,
        responses={200: s.V1ProviderItemSerializer, **v1_errors(400, 401, 404, 413, 415, 429)},
    )
    def patch(self, request, pk):
        return self._patch(request, pk=pk)


class ProviderByEhrIdView(_ProviderItemView):
    def _provider(self, *, ehr_id):
        return provider_get(connection=self.emr_connection, ehr_id=ehr_id)

    @extend_schema(
        operation_id="v1_providers_update_by_ehr_id",
        tags=["EMR: providers and locations"],
        summary="Same as PATCH /v1/providers/{id}, addressing the provider by its EHR id",
        request=s.V1ProviderPatchSerializer,
        responses={200: s.V1ProviderItemSerializer, **v1_errors(400, 401, 404, 413, 415, 429)},
    )
    def patch(self, request, ehr_id):
        return self._patch(request, ehr_id=ehr_id)


class LocationsView(V1APIView):
    @extend_schema(
        operation_id="v1_locations_list",
        tags=["EMR: providers and locations"],
        summary="Locations (facilities)",
        responses={200: s.V1LocationListSerializer, **v1_errors(401, 429)},
    )
    def get(self, request):
        locations = locations_visible(connection=self.emr_connection)
        return Response({"success": True, "locations": [s.location_representation(loc) for loc in locations]})


class LocationItemView(V1APIView):
    @extend_schema(
        operation_id="v1_locations_update",
        tags=["EMR: providers and locations"],
        summary="Change a location's status",
        request=s.V1LocationPatchSerializer,
        responses={200: s.V1LocationItemSerializer, **v1_errors(400, 401, 404, 413, 415, 429)},
    )
    def patch(self, request, pk):
        location = location_get(connection=self.emr_connection, pk=pk)
        incoming = s.V1LocationPatchSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        location = location_update(location=location, data=incoming.validated_data)
        return Response({"success": True, "location": s.location_representation(location)})
