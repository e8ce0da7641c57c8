"""The sandbox Calendly: the few Calendly API v2 endpoints the provider directory uses, served by
the product itself at ``/sandbox/calendly/`` when ``SANDBOX_ENABLED`` (the demo's connection
reaches it over HTTP at ``SITE_URL``, through the same client as the real Calendly).

Its token names one organization (signed with ``SECRET_KEY``); that organization's providers with
an email are its users, and each (provider, service, location) link is that provider's copy of the
organization's event type for the service at the location: one UUID per (service, location),
shared by the providers offering it (so one ``event_type_id`` asks for all of them, as the
directory's time window does), in a uri of the provider's own, ``…/event_types/<provider>/<UUID>``.
The open
times of an event type are what ``GET /v3/availability`` offers for that provider, service and
location (``booking.availability.selectors.availability_answer``: the same engine, hours,
appointments and blocks). Like Calendly, it answers in its error shape ``{"title", "message",
"details"}``, refuses windows longer than 31 days (Calendly's limit since 2026-07-09) or starting in the past, and pages collections
by ``count``/``page_token`` with an absolute ``pagination.next_page``.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_GET

from booking.models import ActiveStatus, Resource, ResourceService
from tenants.models import Organization

PREFIX = "/sandbox/calendly"
SALT = "sandbox-calendly-token"
MAX_DAYS = 31
PAST_TOLERANCE = timedelta(seconds=60)  # clocks of caller and sandbox may differ a little
DEFAULT_COUNT, MAX_COUNT = 20, 100


def sandbox_calendly_token(organization: Organization) -> str:
    """The personal access token of the organization's sandbox Calendly account."""
    return "sbx_" + signing.dumps({"org": str(organization.pk)}, salt=SALT, compress=True)


def _error(status: int, title: str, message: str, details: list | None = None) -> JsonResponse:
    body = {"title": title, "message": message}
    if details:
        body["details"] = details
    return JsonResponse(body, status=status)


def _invalid(parameter: str, message: str) -> JsonResponse:
    return _error(400, "Invalid Argument", "The supplied parameters are invalid.", [{"parameter": parameter, "message": message}])


def _organization(request) -> Organization | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer sbx_"):
        return None
    try:
        payload = signing.loads(header[len("Bearer sbx_"):], salt=SALT)
        org_id = uuid.UUID(payload["org"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    return Organization.objects.filter(pk=org_id, is_active=True).first()


def _api(view):
    """Sandbox switch, token, added latency (``SANDBOX_CALENDLY_LATENCY_MS``, for benchmarks)."""

    @require_GET
    def wrapped(request, *args, **kwargs):
        if not settings.SANDBOX_ENABLED:
            return _error(404, "Resource Not Found", "The sandbox Calendly is disabled (SANDBOX_ENABLED=false).")
        if settings.SANDBOX_CALENDLY_LATENCY_MS > 0:
            time.sleep(settings.SANDBOX_CALENDLY_LATENCY_MS / 1000)
        organization = _organization(request)
        if organization is None:
            return _error(401, "Unauthenticated", "The access token is invalid")
        return view(request, organization, *args, **kwargs)

    wrapped.__name__, wrapped.__doc__ = view.__name__, view.__doc__
    return wrapped


def _base(request) -> str:
    return request.build_absolute_uri(PREFIX)


def _org_uri(request, organization) -> str:
    return f"{_base(request)}/organizations/{organization.pk}"


def _owner_uuid(organization) -> uuid.UUID:
    return uuid.uuid5(organization.pk, "owner")


def _owner(request, organization) -> dict:
    return {
        "uri": f"{_base(request)}/users/{_owner_uuid(organization)}",
        "name": f"{organization.name} scheduling",
        "slug": organization.slug,
        "email": f"scheduling@{organization.slug}.sandbox.invalid",
        "scheduling_url": f"{_base(request)}/book",
        "timezone": organization.timezone,
        "current_organization": _org_uri(request, organization),
        "resource_type": "User",
    }


def _providers(organization):
    return Resource.objects.filter(organization=organization, type=Resource.Type.PROVIDER).exclude(email="").order_by("name", "id")


def _user(request, organization, resource: Resource) -> dict:
    return {
        "uri": f"{_base(request)}/users/{resource.pk}",
        "name": resource.name,
        "slug": str(resource.pk),
        "email": resource.email,
        "scheduling_url": f"{_base(request)}/book",
        "timezone": resource.timezone or organization.timezone,
        "current_organization": _org_uri(request, organization),
        "resource_type": "User",
    }


def _page(request, items: list, params: dict) -> JsonResponse | dict:
    try:
        count = int(request.GET.get("count") or DEFAULT_COUNT)
        offset = int(request.GET.get("page_token") or 0)
    except ValueError:
        return _invalid("count", "must be an integer")
    if not 1 <= count <= MAX_COUNT:
        return _invalid("count", f"must be between 1 and {MAX_COUNT}")
    chunk = items[offset:offset + count]
    next_page = next_token = None
    if offset + count < len(items):
        next_token = str(offset + count)
        next_page = request.build_absolute_uri(request.path) + "?" + urlencode({**params, "count": count, "page_token": next_token})
    return {
        "collection": chunk,
        "pagination": {"count": len(chunk), "next_page": next_page, "previous_page": None,
                       "next_page_token": next_token, "previous_page_token": None},
    }


@_api
def users_me(request, organization):
    return JsonResponse({"resource": _owner(request, organization)})


@_api
def organization_memberships(request, organization):
    if request.GET.get("organization") != _org_uri(request, organization):
        return _invalid("organization", "must be the uri of the token's organization")
    users = [_owner(request, organization)] + [_user(request, organization, r) for r in _providers(organization)]
    memberships = [
        {"uri": f"{_base(request)}/organization_memberships/{uuid.uuid5(organization.pk, u['uri'])}",
         "role": "owner" if index == 0 else "user", "user": u, "organization": _org_uri(request, organization)}
        for index, u in enumerate(users)
    ]
    body = _page(request, memberships, {"organization": request.GET["organization"]})
    return body if isinstance(body, JsonResponse) else JsonResponse(body)


def _links(organization):
    return (
        ResourceService.objects.filter(organization=organization, resource__type=Resource.Type.PROVIDER)
        .exclude(resource__email="")
        .select_related("resource", "service", "location")
        .order_by("resource__name", "resource_id", "service__name", "location__name", "id")
    )


def event_type_uuid(link: ResourceService) -> uuid.UUID:
    """The organization's event type for the link's service at its location."""
    return uuid.uuid5(link.service_id, str(link.location_id))


def _event_type(request, link: ResourceService, several_sites: bool) -> dict:
    name = f"{link.service.name} ({link.location.name})" if several_sites else link.service.name
    uri = f"{_base(request)}/event_types/{link.resource_id}/{event_type_uuid(link)}"
    return {
        "uri": uri,
        "name": name,
        "active": link.location.status == ActiveStatus.ACTIVE,
        "slug": str(event_type_uuid(link)),
        "scheduling_url": f"{_base(request)}/book/{link.resource_id}/{event_type_uuid(link)}",
        "duration": link.service.duration,
        "kind": "solo",
        "pooling_type": None,
        "type": "StandardEventType",
        "profile": {"type": "User", "name": link.resource.name, "owner": f"{_base(request)}/users/{link.resource_id}"},
    }


@_api
def event_types(request, organization):
    if request.GET.get("organization") != _org_uri(request, organization):
        return _invalid("organization", "must be the uri of the token's organization")
    links = list(_links(organization))
    sites: dict[tuple, set] = {}
    for link in links:
        sites.setdefault((link.resource_id, link.service_id), set()).add(link.location_id)
    items = [_event_type(request, link, len(sites[(link.resource_id, link.service_id)]) > 1) for link in links]
    body = _page(request, items, {"organization": request.GET["organization"]})
    return body if isinstance(body, JsonResponse) else JsonResponse(body)


def _instant(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else None


def _calendly_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sandbox_open_times(*, organization: Organization, link: ResourceService, start: datetime, end: datetime) -> list[datetime]:
    """What ``GET /v3/availability`` offers this link's provider for its service at its location
    with starts in ``[start, end]``: the sandbox's available times."""
    from booking.availability.selectors import AvailabilityParams, availability_answer

    params = AvailabilityParams(
        location_id=link.location_id, service_id=link.service_id, start=start, end=end, zone="UTC",
        resource_ids=(str(link.resource_id),),
    )
    body = json.loads(availability_answer(organization=organization, params=params).body)
    resource_id = str(link.resource_id)
    return [
        datetime.fromisoformat(item["start_time"]).astimezone(UTC)
        for item in body["availableTimes"]
        if resource_id in item.get("ResourceIds", ())
    ]


@_api
def event_type_available_times(request, organization):
    event_type = request.GET.get("event_type")
    if not event_type:
        return _invalid("event_type", "is required")
    start, end = _instant(request.GET.get("start_time")), _instant(request.GET.get("end_time"))
    if start is None:
        return _invalid("start_time", "must be an ISO 8601 date-time")
    if end is None:
        return _invalid("end_time", "must be an ISO 8601 date-time")
    if start < timezone.now() - PAST_TOLERANCE:
        return _invalid("start_time", "must be in the future")
    if end <= start:
        return _invalid("end_time", "must be after start_time")
    if end - start > timedelta(days=MAX_DAYS):
        return _invalid("end_time", f"date range can be no greater than {MAX_DAYS} days")
    prefix = f"{_base(request)}/event_types/"
    link = None
    try:
        resource_id, type_id = (uuid.UUID(part) for part in event_type.removeprefix(prefix).split("/"))
    except ValueError:
        resource_id = type_id = None
    if event_type.startswith(prefix) and resource_id is not None:
        candidates = ResourceService.objects.filter(organization=organization, resource_id=resource_id).select_related(
            "service", "location"
        )
        link = next((c for c in candidates if event_type_uuid(c) == type_id), None)
    if link is None:
        return _error(404, "Resource Not Found", "The server could not find the requested resource.")
    url = f"{_base(request)}/book/{link.resource_id}/{event_type_uuid(link)}"
    collection = [
        {
            "status": "available",
            "invitees_remaining": 1,
            "start_time": _calendly_time(at),
            "scheduling_url": f"{url}/{at.strftime('%Y-%m-%dT%H:%M:%S')}+00:00?month={at:%Y-%m}&date={at:%Y-%m-%d}",
        }
        for at in sandbox_open_times(organization=organization, link=link, start=start, end=end)
    ]
    return JsonResponse({"collection": collection})


@require_GET
def booking_page(request, resource_id, type_id, at=None):
    """Where a scheduling link leads: a plain page naming the provider, service and site."""
    if not settings.SANDBOX_ENABLED:
        return HttpResponse("The sandbox Calendly is disabled.", status=404, content_type="text/plain")
    links = ResourceService.objects.filter(resource_id=resource_id).select_related("resource", "service", "location")
    link = next((c for c in links if event_type_uuid(c) == type_id), None)
    if link is None:
        return HttpResponse("No such event type.", status=404, content_type="text/plain")
    when = f" at {at}" if at else ""
    return HttpResponse(
        format_html(
            "<!doctype html><title>Sandbox Calendly</title><h1>{} with {}</h1><p>{}{}. This is the built-in "
            "sandbox Calendly: book through <code>POST /v3/appointments</code> instead.</p>",
            link.service.name, link.resource.name, link.location.name, when,
        )
    )
