"""``/v3/`` collection endpoints: thin views over serializers (validation) and services (writes).

Every view starts from the caller's organization; another tenant's id is a 404.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from django.db import IntegrityError
from django.db.models import Model
from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from booking.api.base import V3APIView, paginate, v3_error_body
from booking.api.schema import PAGE_PARAMETERS, errors, oauth_errors, page_of
from booking.api.serializers import (
    AllocationSerializer,
    BlockSerializer,
    LocationSerializer,
    RecurringBlockSerializer,
    ResourceSerializer,
    ResourceServiceSerializer,
    ScheduleOutSerializer,
    ScheduleSerializer,
    ServiceSerializer,
)
from booking.models import Allocation, Block, Location, RecurringBlock, Resource, ResourceService, Service, Shift
from booking.selectors import tenant_get
from booking.services.crud import tenant_object_create, tenant_object_delete, tenant_object_update
from booking.services.resources import (
    allocation_create,
    allocation_delete,
    resource_schedule_replace,
    resource_service_link,
    resource_service_unlink,
)
from tenants.api import query as q
from tenants.api.auth import api_client_by_secret, touch_last_used
from tenants.api.parsers import PayloadTooLarge, StrictFormParser, StrictJSONParser
from tenants.api.throttling import CredentialRateThrottle
from tenants.services import oauth_token_issue


def _revalidate_after_lost_race(incoming: serializers.Serializer) -> None:
    """A write failed on a unique constraint: a concurrent request took the value (an ehrId) after
    this one's checks passed. Validating a fresh serializer again sees it and answers the same 400
    a later request would get; if it still passes, the error is a real bug and propagates."""
    incoming.is_valid(raise_exception=True)


def collection_views(*, model: type[Model], serializer: type[serializers.Serializer], plural: str, tag: str):
    """The list/create and retrieve/update/delete views of one plain collection."""
    label = model._meta.verbose_name

    class CollectionView(V3APIView):
        queryset = model.objects.none()

        def get_queryset(self):
            return model.objects.filter(organization=self.organization)

        @extend_schema(
            operation_id=f"{plural}_list",
            tags=[tag],
            summary=f"List {model._meta.verbose_name_plural}",
            parameters=PAGE_PARAMETERS,
            responses={200: page_of(serializer), **errors(400, 401)},
        )
        def get(self, request):
            return paginate(request, self.get_queryset(), serializer, self.get_serializer_context())

        @extend_schema(
            operation_id=f"{plural}_create",
            tags=[tag],
            summary=f"Create a {label}",
            request=serializer,
            responses={201: serializer, **errors(400, 401)},
        )
        def post(self, request):
            incoming = serializer(data=request.data, context=self.get_serializer_context())
            incoming.is_valid(raise_exception=True)
            try:
                obj = tenant_object_create(model=model, organization=self.organization, data=incoming.validated_data)
            except IntegrityError:
                _revalidate_after_lost_race(serializer(data=request.data, context=self.get_serializer_context()))
                raise
            return Response(serializer(obj, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED)

    class ItemView(V3APIView):
        queryset = model.objects.none()

        def get_object(self, pk):
            return tenant_get(model=model, organization=self.organization, pk=pk)

        @extend_schema(operation_id=f"{plural}_retrieve", tags=[tag], summary=f"Get a {label}", responses={200: serializer, **errors(401, 404)})
        def get(self, request, pk):
            return Response(serializer(self.get_object(pk), context=self.get_serializer_context()).data)

        def _update(self, request, pk, partial: bool):
            obj = self.get_object(pk)
            incoming = serializer(obj, data=request.data, partial=partial, context=self.get_serializer_context())
            incoming.is_valid(raise_exception=True)
            try:
                obj = tenant_object_update(instance=obj, data=incoming.validated_data)
            except IntegrityError:
                _revalidate_after_lost_race(
                    serializer(self.get_object(pk), data=request.data, partial=partial, context=self.get_serializer_context())
                )
                raise
            return Response(serializer(obj, context=self.get_serializer_context()).data)

        @extend_schema(
            operation_id=f"{plural}_update",
            tags=[tag],
            summary=f"Replace a {label} (omitted optional fields return to their defaults; use PATCH to change some fields)",
            request=serializer,
            responses={200: serializer, **errors(400, 401, 404)},
        )
        def put(self, request, pk):
            return self._update(request, pk, partial=False)

        @extend_schema(
            operation_id=f"{plural}_partial_update",
            tags=[tag],
            summary=f"Change some fields of a {label}",
            request=serializer,
            responses={200: serializer, **errors(400, 401, 404)},
        )
        def patch(self, request, pk):
            return self._update(request, pk, partial=True)

        @extend_schema(
            operation_id=f"{plural}_destroy", tags=[tag], summary=f"Delete a {label}", responses={204: None, **errors(401, 404, 409)}
        )
        def delete(self, request, pk):
            tenant_object_delete(instance=self.get_object(pk))
            return Response(status=status.HTTP_204_NO_CONTENT)

    CollectionView.__name__ = CollectionView.__qualname__ = f"{model.__name__}CollectionView"
    ItemView.__name__ = ItemView.__qualname__ = f"{model.__name__}ItemView"
    return CollectionView, ItemView


LocationCollectionView, LocationItemView = collection_views(
    model=Location, serializer=LocationSerializer, plural="locations", tag="Locations"
)
ServiceCollectionView, ServiceItemView = collection_views(
    model=Service, serializer=ServiceSerializer, plural="services", tag="Services"
)
ResourceCollectionView, ResourceItemView = collection_views(
    model=Resource, serializer=ResourceSerializer, plural="resources", tag="Resources"
)
BlockCollectionView, BlockItemView = collection_views(
    model=Block, serializer=BlockSerializer, plural="blocks", tag="Blocks"
)
RecurringBlockCollectionView, RecurringBlockItemView = collection_views(
    model=RecurringBlock, serializer=RecurringBlockSerializer, plural="recurringBlocks", tag="Blocks"
)


class _ResourceSubView(V3APIView):
    queryset = Resource.objects.none()

    def get_resource(self, pk) -> Resource:
        return tenant_get(model=Resource, organization=self.organization, pk=pk)


class ResourceServicesView(_ResourceSubView):
    @extend_schema(
        operation_id="resources_services_list",
        tags=["Resources"],
        summary="Services the resource offers, and where",
        parameters=PAGE_PARAMETERS,
        responses={200: page_of(ResourceServiceSerializer), **errors(400, 401, 404)},
    )
    def get(self, request, pk):
        resource = self.get_resource(pk)
        links = ResourceService.objects.filter(resource=resource).order_by("created_at", "id")
        return paginate(request, links, ResourceServiceSerializer, self.get_serializer_context())

    @extend_schema(
        operation_id="resources_services_create",
        tags=["Resources"],
        summary="Offer a service at a location (201 when new, 200 when the link already existed)",
        request=ResourceServiceSerializer,
        responses={201: ResourceServiceSerializer, 200: ResourceServiceSerializer, **errors(400, 401, 404)},
    )
    def post(self, request, pk):
        resource = self.get_resource(pk)
        incoming = ResourceServiceSerializer(data=request.data, context=self.get_serializer_context())
        incoming.is_valid(raise_exception=True)
        link, created = resource_service_link(resource=resource, **incoming.validated_data)
        return Response(
            ResourceServiceSerializer(link, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class UnlinkQuery(q.QueryFilter):
    LocationId = q.UUIDField(help_text="Location of the link to remove.")


class ResourceServiceItemView(_ResourceSubView):
    @extend_schema(
        operation_id="resources_services_destroy",
        tags=["Resources"],
        summary="Stop offering a service (at one location, or everywhere when LocationId is omitted)",
        parameters=[UnlinkQuery],
        responses={204: None, **errors(400, 401, 404)},
    )
    def delete(self, request, pk, service_pk):
        resource = self.get_resource(pk)
        service = tenant_get(model=Service, organization=self.organization, pk=service_pk)
        location_id = UnlinkQuery.parse(request.query_params)["LocationId"]
        location = None
        if location_id is not None:
            location = tenant_get(model=Location, organization=self.organization, pk=location_id)
        if not resource_service_unlink(resource=resource, service=service, location=location):
            return Response(v3_error_body(404, "The resource does not offer that service there."), status=404)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ResourceScheduleView(_ResourceSubView):
    def _render(self, resource: Resource) -> Response:
        shifts = Shift.objects.filter(resource=resource).order_by("day_of_week", "start_time", "id")
        return Response(
            ScheduleOutSerializer(
                {"ResourceId": resource.pk, "timezone": resource.timezone, "weeklyAvailability": shifts}
            ).data
        )

    @extend_schema(operation_id="resources_schedule_retrieve", tags=["Resources"], summary="Weekly working hours", responses={200: ScheduleOutSerializer, **errors(401, 404)})
    def get(self, request, pk):
        return self._render(self.get_resource(pk))

    @extend_schema(
        operation_id="resources_schedule_replace",
        tags=["Resources"],
        summary="Replace all weekly working hours (in the resource's time zone)",
        request=ScheduleSerializer,
        responses={200: ScheduleOutSerializer, **errors(400, 401, 404)},
    )
    def put(self, request, pk):
        resource = self.get_resource(pk)
        incoming = ScheduleSerializer(data=request.data, context=self.get_serializer_context())
        incoming.is_valid(raise_exception=True)
        resource_schedule_replace(resource=resource, windows=incoming.validated_data["weeklyAvailability"])
        return self._render(resource)


class ResourceAllocationsView(_ResourceSubView):
    @extend_schema(
        operation_id="resources_allocations_list",
        tags=["Resources"],
        summary="Single allocations (extra availability on specific dates)",
        parameters=PAGE_PARAMETERS,
        responses={200: page_of(AllocationSerializer), **errors(400, 401, 404)},
    )
    def get(self, request, pk):
        resource = self.get_resource(pk)
        return paginate(request, Allocation.objects.filter(resource=resource), AllocationSerializer, self.get_serializer_context())

    @extend_schema(
        operation_id="resources_allocations_create",
        tags=["Resources"],
        summary="Add a single allocation",
        request=AllocationSerializer,
        responses={201: AllocationSerializer, **errors(400, 401, 404)},
    )
    def post(self, request, pk):
        resource = self.get_resource(pk)
        incoming = AllocationSerializer(data=request.data, context=self.get_serializer_context())
        incoming.is_valid(raise_exception=True)
        allocation = allocation_create(resource=resource, data=incoming.validated_data)
        return Response(AllocationSerializer(allocation).data, status=status.HTTP_201_CREATED)


class ResourceAllocationItemView(_ResourceSubView):
    def get_allocation(self, pk, allocation_pk) -> Allocation:
        resource = self.get_resource(pk)
        allocation = tenant_get(model=Allocation, organization=self.organization, pk=allocation_pk)
        if allocation.resource_id != resource.pk:
            raise Http404("Allocation not found.")
        return allocation

    @extend_schema(operation_id="resources_allocations_retrieve", tags=["Resources"], summary="Get a single allocation", responses={200: AllocationSerializer, **errors(401, 404)})
    def get(self, request, pk, allocation_pk):
        return Response(AllocationSerializer(self.get_allocation(pk, allocation_pk)).data)

    @extend_schema(operation_id="resources_allocations_destroy", tags=["Resources"], summary="Remove a single allocation", responses={204: None, **errors(401, 404)})
    def delete(self, request, pk, allocation_pk):
        allocation_delete(allocation=self.get_allocation(pk, allocation_pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


OAUTH_PARAMETERS = ("grant_type", "client_id", "client_secret", "scope")
TOKEN_REQUEST = inline_serializer(
    "TokenRequest",
    {
        "grant_type": serializers.ChoiceField(choices=["client_credentials"]),
        "client_id": serializers.CharField(required=False, help_text="Instead of HTTP Basic (not with it)."),
        "client_secret": serializers.CharField(required=False, help_text="Instead of HTTP Basic (not with it)."),
    },
)


class OAuthThrottle(CredentialRateThrottle):
    scope = "oauth"


class OAuthTokenView(V3APIView):
    """OAuth2 client credentials (RFC 6749 §4.4). Client authentication by HTTP Basic, or by
    ``client_id``/``client_secret`` in the body. Errors keep the ``/v3/`` shape and add the
    OAuth ``error`` code for OAuth libraries."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [OAuthThrottle]
    parser_classes = [StrictFormParser, StrictJSONParser]

    @staticmethod
    def _oauth_error(status_code: int, error: str, message: str, field: str = "body") -> Response:
        # A /v3/ 400 names what is wrong (`errors`); RFC 6749 §5.2 adds `error` and its description.
        items = [{"field": field, "message": message}] if status_code == 400 else []
        body = v3_error_body(status_code, message, items) | {"error": error, "error_description": message}
        headers = {"WWW-Authenticate": 'Basic realm="oauth"'} if status_code == 401 else {}
        return Response(body, status=status_code, headers=headers)

    @extend_schema(
        operation_id="oauth_token",
        tags=["Authentication"],
        summary="Exchange client credentials for a 1-hour bearer token",
        auth=[],
        request={"application/x-www-form-urlencoded": TOKEN_REQUEST, "application/json": TOKEN_REQUEST},
        responses={
            200: inline_serializer(
                "TokenResponse",
                {
                    "access_token": serializers.CharField(),
                    "token_type": serializers.CharField(),
                    "expires_in": serializers.IntegerField(),
                },
            ),
            **oauth_errors(),
        },
    )
    def post(self, request):
        try:
            data = request.data
        except (ParseError, UnsupportedMediaType, PayloadTooLarge) as exc:
            return self._oauth_error(exc.status_code, "invalid_request", f"Malformed request body: {exc.detail}")
        if not hasattr(data, "get"):
            return self._oauth_error(400, "invalid_request", "The body must be a form (or a JSON object).")
        repeated = [name for name in OAUTH_PARAMETERS if hasattr(data, "getlist") and len(data.getlist(name)) > 1]
        if repeated:  # RFC 6749 §3.2: parameters must not be included more than once
            return self._oauth_error(400, "invalid_request", f"{repeated[0]} is given more than once.", repeated[0])
        grant_type = data.get("grant_type")
        if grant_type in (None, ""):
            return self._oauth_error(400, "invalid_request", "grant_type is required (client_credentials).", "grant_type")
        if grant_type != "client_credentials":
            return self._oauth_error(400, "unsupported_grant_type", "grant_type must be client_credentials.", "grant_type")
        client_id, client_secret = data.get("client_id"), data.get("client_secret")
        auth = request.META.get("HTTP_AUTHORIZATION", "")
        if auth.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(auth[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return self._oauth_error(401, "invalid_client", "Malformed HTTP Basic credentials.")
            # RFC 6749 §2.3.1: both are form-url-encoded before the Basic encoding.
            client_id, _, client_secret = (unquote_plus(part) for part in decoded.partition(":"))
        if not isinstance(client_id, str) or not isinstance(client_secret, str):
            return self._oauth_error(401, "invalid_client", "Client credentials are required.")
        client = api_client_by_secret(client_id, client_secret)
        if client is None:
            return self._oauth_error(401, "invalid_client", "Unknown client or wrong secret.")
        touch_last_used(client)
        issued = oauth_token_issue(api_client=client)
        return Response(
            {"access_token": issued.access_token, "token_type": "Bearer", "expires_in": issued.expires_in},
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )
