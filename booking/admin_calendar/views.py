"""The calendar pages and the booking actions taken from them.

Every page starts from the model admin's own (tenant-scoped) ``get_object``: another
organization's location, resource or appointment is a 404, as everywhere in the admin. Booking
controls are shown, and the POSTs accepted, only for a ``frontdesk`` or ``admin`` membership in the
object's organization (``may_book``); bookings, holds, moves and cancellations go through
``booking.services.appointments``, which lock, re-check with the engine and refuse a start taken
meanwhile (a message here, never a double booking).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from rest_framework.exceptions import APIException, ValidationError

from booking.admin_calendar import selectors as cal
from booking.admin_calendar.render import LaneRenderer
from booking.models import Appointment, Location, Resource, ResourceService, Service
from booking.services import appointments as booking
from tenants.admin_scoping import FRONT_DESK, user_role
from tenants.errors import DomainError


def may_book(request, organization_id) -> bool:
    """Book, hold, move and cancel: ``frontdesk`` and ``admin`` (``admin.md`` "Roles")."""
    return request.user.is_superuser or user_role(request, organization_id) in FRONT_DESK


def _refusal_text(exc: Exception) -> str:
    detail = getattr(exc, "detail", None)
    if isinstance(detail, dict):
        return " ".join(str(m) for values in detail.values() for m in (values if isinstance(values, list) else [values]))
    if isinstance(detail, list):
        return " ".join(str(m) for m in detail)
    return str(detail if detail is not None else exc)


def _parse_date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def _parse_start(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "+"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _safe_next(request, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return fallback


def _object_or_404(model_admin, request, object_id):
    obj = model_admin.get_object(request, object_id)
    if obj is None or not model_admin.has_view_permission(request, obj):
        raise Http404(f"{model_admin.model._meta.verbose_name.capitalize()} not found.")
    return obj


def _calendar_context(request, model_admin, *, calendar: cal.Calendar, obj, title: str, base_url: str, services,
                      selected_day: date | None, week: date, organization_id, kind: str) -> dict:
    bookable = may_book(request, organization_id)
    renderer = LaneRenderer(
        kind=kind, week=week.isoformat(), service=calendar.service, may_book=bookable, next_url=request.get_full_path(),
        selected_day=selected_day,
    )
    for day in calendar.days:
        day.lanes_html = mark_safe("".join(renderer.lane(day, day_lane) for day_lane in day.lanes))
        day.agenda_html = mark_safe("".join(renderer.agenda_row(item) for item in day.appointments))

    def link(**changes) -> str:
        params = {"week": week.isoformat()}
        if calendar.service is not None:
            params["service"] = calendar.service.pk
        if selected_day is not None:
            params["day"] = selected_day.isoformat()
        params.update(changes)
        return base_url + "?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})

    today = cal.local_today(calendar.zone, timezone.now())
    week_days = [week + timedelta(days=i) for i in range(7)]
    return {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.model._meta,
        "original": obj,
        "calendar": calendar,
        "services": services,
        "may_book": bookable,
        "week": week,
        "selected_day": selected_day,
        "week_days": [(d, link(week=d.isoformat(), day=d.isoformat()), d == selected_day) for d in week_days],
        "prev_url": link(week=(week - timedelta(days=7)).isoformat(), day=(selected_day - timedelta(days=1)).isoformat() if selected_day else None)
        if not selected_day else link(week=(selected_day - timedelta(days=1)).isoformat(), day=(selected_day - timedelta(days=1)).isoformat()),
        "next_url": link(week=(week + timedelta(days=7)).isoformat(), day=None)
        if not selected_day else link(week=(selected_day + timedelta(days=1)).isoformat(), day=(selected_day + timedelta(days=1)).isoformat()),
        "today_url": link(week=today.isoformat(), day=today.isoformat() if selected_day else None),
        "week_url": link(day=None),
        "base_url": base_url,
        "is_nav_sidebar_enabled": False,  # the calendar needs the width
    }


def _week_and_day(request, zone: str) -> tuple[date, date | None]:
    today = cal.local_today(zone, timezone.now())
    day = _parse_date(request.GET.get("day"))
    week_of = _parse_date(request.GET.get("week")) or day or today
    if request.GET.get("week") and _parse_date(request.GET.get("week")) is None:
        messages.warning(request, "The week must be a date (YYYY-MM-DD); showing this week.")
    if request.GET.get("day") and day is None:
        messages.warning(request, "The day must be a date (YYYY-MM-DD); showing the week.")
    monday = cal.week_monday(week_of)
    if day is not None and cal.week_monday(day) != monday:
        monday = cal.week_monday(day)
    return monday, day


def _chosen_service(request, services: list[Service]) -> Service | None:
    wanted = (request.GET.get("service") or "").strip()
    if not wanted:
        return None
    found = next((s for s in services if str(s.pk) == wanted), None)
    if found is None:
        messages.warning(request, "That service is not offered here; choose one from the menu.")
    return found


def location_calendar_view(model_admin, request, object_id):
    location: Location = _object_or_404(model_admin, request, object_id)
    organization = location.organization
    zone = location.timezone
    week, day = _week_and_day(request, zone)
    services = cal.services_at_location(location=location)
    service = _chosen_service(request, services)
    lanes = [
        cal.Lane(resource=r, location=location, zone=cal.effective_zone(r, organization))
        for r in cal.location_resources(location=location)
    ]
    calendar = cal.calendar_build(
        organization=organization, lanes=lanes, zone=zone, first_day=day or week, days=1 if day else 7,
        service=service, now=timezone.now(),
    )
    if calendar.error:
        messages.error(request, calendar.error)
    context = _calendar_context(
        request, model_admin, calendar=calendar, obj=location, title=f"Calendar: {location}",
        base_url=reverse("admin:booking_location_calendar", args=[location.pk]), services=services,
        selected_day=day, week=week, organization_id=location.organization_id, kind="location",
    )
    context.update({"kind": "location", "lane_heading": "Resource"})
    return TemplateResponse(request, "admin/booking/calendar/calendar.html", context)


def resource_calendar_view(model_admin, request, object_id):
    resource: Resource = _object_or_404(model_admin, request, object_id)
    organization = resource.organization
    zone = cal.effective_zone(resource, organization)
    week, day = _week_and_day(request, zone)
    services = cal.services_of_resource(resource=resource)
    service = _chosen_service(request, services)
    lanes = [cal.Lane(resource=resource, location=loc, zone=zone) for loc in cal.resource_locations(resource=resource)]
    calendar = cal.calendar_build(
        organization=organization, lanes=lanes, zone=zone, first_day=day or week, days=1 if day else 7,
        service=service, now=timezone.now(), resource_calendar=True,
    )
    if calendar.error:
        messages.error(request, calendar.error)
    context = _calendar_context(
        request, model_admin, calendar=calendar, obj=resource, title=f"Calendar: {resource}",
        base_url=reverse("admin:booking_resource_calendar", args=[resource.pk]), services=services,
        selected_day=day, week=week, organization_id=resource.organization_id, kind="resource",
    )
    context.update({"kind": "resource", "lane_heading": "Location"})
    return TemplateResponse(request, "admin/booking/calendar/calendar.html", context)


# --------------------------------------------------------------------------------------------
# Booking a listed start
# --------------------------------------------------------------------------------------------


class BookForm(forms.Form):
    customer_name = forms.CharField(max_length=200, label="Customer name")
    customer_email = forms.EmailField(max_length=254, required=False, label="Email")
    customer_phone = forms.CharField(max_length=40, required=False, label="Phone")
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 40}))


def _booking_terms(request, location: Location):
    """The service, resources and start named by the query string, each the location's
    organization's (404 otherwise)."""
    data = request.POST if request.method == "POST" else request.GET
    service = Service.objects.filter(organization_id=location.organization_id, pk=_uuid_or_404(data.get("service"))).first()
    if service is None:
        raise Http404("Service not found.")
    raw_ids = [v.strip() for v in (data.get("resource") or "").split(",") if v.strip()]
    ids = [_uuid_or_404(v) for v in raw_ids]
    resources = list(Resource.objects.filter(organization_id=location.organization_id, pk__in=ids).order_by("name"))
    if not ids or len(resources) != len(set(ids)):
        raise Http404("Resource not found.")
    start = _parse_start(data.get("start"))
    if start is None:
        raise Http404("Not a start time.")
    return service, resources, start


def _uuid_or_404(text):
    import uuid

    try:
        return uuid.UUID(str(text).strip())
    except (ValueError, TypeError):
        raise Http404("Not found.") from None


def location_book_view(model_admin, request, object_id):
    location: Location = _object_or_404(model_admin, request, object_id)
    if not may_book(request, location.organization_id):
        raise PermissionDenied("Viewers cannot book.")
    service, resources, start = _booking_terms(request, location)
    fallback = reverse("admin:booking_location_calendar", args=[location.pk]) + "?" + urlencode(
        {"service": service.pk, "day": cal.local(int(start.timestamp()), location.timezone).date().isoformat()}
    )
    next_url = _safe_next(request, fallback)
    seconds = int(start.timestamp())
    when = f"{cal.local(seconds, location.timezone):%a %b} {cal.local(seconds, location.timezone).day}, " + cal.clock_range(
        seconds, seconds + service.duration * 60, location.timezone
    )
    who = ", ".join(r.name for r in resources)
    form = BookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        hold = request.POST.get("action") == "hold"
        create = booking.appointment_hold if hold else booking.appointment_book
        try:
            appointment = create(
                organization=location.organization, service=service, location=location, start=start,
                resource_ids=[str(r.pk) for r in resources],
                customer=booking.Customer(
                    name=form.cleaned_data["customer_name"], email=form.cleaned_data["customer_email"],
                    phone=form.cleaned_data["customer_phone"],
                ),
                notes=form.cleaned_data["notes"],
            )
        except (APIException, ValidationError, DomainError) as exc:
            messages.error(
                request, f"Not booked: {when} with {who} is no longer free ({_refusal_text(exc)}) Pick another listed start."
            )
            return HttpResponseRedirect(next_url)
        verb = "Held" if hold else "Booked"
        extra = ""
        if hold and appointment.expires_at:
            extra = f" until {cal.clock(int(appointment.expires_at.timestamp()), location.timezone)}"
        messages.success(request, f"{verb}{extra}: {appointment.customer_name}, {service}, {when} with {who}.")
        return HttpResponseRedirect(next_url)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Book {service} at {location}",
        "opts": model_admin.model._meta,
        "original": location,
        "form": form,
        "service": service,
        "resources": resources,
        "when": when,
        "start": start.isoformat(),
        "resource_value": ",".join(str(r.pk) for r in resources),
        "next": next_url,
    }
    return TemplateResponse(request, "admin/booking/calendar/book.html", context)


# --------------------------------------------------------------------------------------------
# One appointment: reschedule to a listed start, confirm a hold, cancel
# --------------------------------------------------------------------------------------------


def location_appointment_view(model_admin, request, object_id, appointment_id):
    location: Location = _object_or_404(model_admin, request, object_id)
    appointment = (
        Appointment.objects.filter(organization_id=location.organization_id, location=location, pk=appointment_id)
        .select_related("service", "location")
        .first()
    )
    if appointment is None:
        raise Http404("Appointment not found.")
    if not may_book(request, location.organization_id):
        raise PermissionDenied("Viewers cannot change appointments.")
    zone = location.timezone
    day = cal.local(int(appointment.start.timestamp()), zone).date()
    fallback = reverse("admin:booking_location_calendar", args=[location.pk]) + "?" + urlencode(
        {k: v for k, v in {"service": appointment.service_id or "", "day": day.isoformat()}.items() if v}
    )
    next_url = _safe_next(request, fallback)
    resource_ids = [str(pk) for pk in appointment.resource_links.order_by("resource_id").values_list("resource_id", flat=True)]
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "cancel":
                booking.appointment_cancel(appointment=appointment)
                messages.success(request, f"Cancelled: {cal.appointment_person(appointment)}, {_when(appointment, zone)}.")
                return HttpResponseRedirect(next_url)
            if action == "confirm":
                booking.appointment_confirm(appointment=appointment)
                messages.success(request, f"Booked (was a hold): {cal.appointment_person(appointment)}, {_when(appointment, zone)}.")
                return HttpResponseRedirect(next_url)
            if action == "reschedule":
                start = _parse_start(request.POST.get("start"))
                if start is None:
                    messages.error(request, "Choose one of the listed starts.")
                    return HttpResponseRedirect(request.get_full_path())
                moved = booking.appointment_reschedule(appointment=appointment, start=start)
                messages.success(request, f"Moved: {cal.appointment_person(moved)} to {_when(moved, zone)}.")
                new_day = cal.local(int(moved.start.timestamp()), zone).date().isoformat()
                return HttpResponseRedirect(next_url.replace(f"day={day.isoformat()}", f"day={new_day}") if "day=" in next_url else next_url)
        except (APIException, ValidationError, DomainError) as exc:
            messages.error(request, f"Not changed: {_refusal_text(exc)} Pick another listed start.")
            return HttpResponseRedirect(request.get_full_path())
        messages.error(request, "Unknown action.")
        return HttpResponseRedirect(request.get_full_path())

    week = cal.week_monday(_parse_date(request.GET.get("week")) or day)
    changeable = appointment.source == Appointment.Source.API and appointment.status != Appointment.Status.CANCELLED
    starts_by_day: list[tuple[date, list]] = []
    error = ""
    if changeable and appointment.service_id and resource_ids:
        service = appointment.service
        offering = {
            str(r) for r in ResourceService.objects.filter(
                service=service, location=location, resource_id__in=resource_ids
            ).values_list("resource_id", flat=True)
        }
        try:
            starts = _reschedule_starts(appointment, resource_ids, week) if offering == set(resource_ids) else []
        except (ValidationError, DomainError) as exc:
            starts, error = [], _refusal_text(exc)
        for offset in range(7):
            d = week + timedelta(days=offset)
            todays = [s for s in starts if cal.local(s.at, zone).date() == d]
            starts_by_day.append((d, [(s.iso, f"{cal.local(s.at, zone):%H:%M}") for s in todays]))
    base = request.path
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"{cal.appointment_title(appointment)}",
        "opts": model_admin.model._meta,
        "original": location,
        "appointment": appointment,
        "when": _when(appointment, zone),
        "status_text": cal.appointment_status_text(appointment, timezone.now()),
        "resources": list(Resource.objects.filter(pk__in=resource_ids).order_by("name")),
        "changeable": changeable,
        "is_hold": appointment.status == Appointment.Status.HOLD,
        "starts_by_day": starts_by_day,
        "zone_name": cal.local(int(appointment.start.timestamp()), zone).tzname(),
        "error": error,
        "next": next_url,
        "prev_week_url": base + "?" + urlencode({"week": (week - timedelta(days=7)).isoformat(), "next": next_url}),
        "next_week_url": base + "?" + urlencode({"week": (week + timedelta(days=7)).isoformat(), "next": next_url}),
        "week": week,
    }
    return TemplateResponse(request, "admin/booking/calendar/appointment.html", context)


def _reschedule_starts(appointment: Appointment, resource_ids: list[str], week: date) -> list[cal.Start]:
    """The starts ``GET /v3/availability`` lists for the appointment's service with all of its
    resources (one: ``ResourceIds``; several: together, ``COMBINED``) and its length."""
    from django.http import QueryDict

    location, service, zone = appointment.location, appointment.service, appointment.location.timezone
    query = QueryDict(mutable=True)
    query.update({
        "LocationId": str(location.pk), "ServiceId": str(service.pk), "startDate": week.isoformat(),
        "endDate": (week + timedelta(days=6)).isoformat(), "timezone": zone,
        "roundRobin": "COMBINED" if len(resource_ids) > 1 else "NONE",
    })
    minutes = int((appointment.end - appointment.start).total_seconds() // 60)
    if minutes != service.duration and service.duration_select:
        query["overrideDuration"] = str(minutes)
    for rid in resource_ids:
        query.appendlist("ResourceIds", rid)
    return cal.starts_from_query(organization=location.organization, query=query)


def _when(appointment: Appointment, zone: str) -> str:
    s, e = int(appointment.start.timestamp()), int(appointment.end.timestamp())
    moment = cal.local(s, zone)
    return f"{moment:%a %b} {moment.day}, {cal.clock_range(s, e, zone)}"
