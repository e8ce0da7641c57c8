import functools
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Case, F, Prefetch, Q, Value, When
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from booking import models as m
from booking.admin_filters import (
    LocalDateHierarchyChangeList,
    LocalDayFilter,
    ScopedLocalDayFilter,
    appointment_zone_expression,
)
from booking.admin_forms import AllocationForm, BlockForm
from booking.admin_widgets import StatesField, WeekdaysField, WeeklyWindowsField, weekly_windows_text
from booking.availability.selectors import AvailabilityParams, availability_explain
from booking.selectors import scoped_zone_get
from booking.services.appointments import DETAIL_FIELDS, appointment_cancel, appointment_details_update
from booking.services.crud import tenant_object_delete, tenant_object_save, tenant_objects_delete
from booking.services.external_calendars import external_calendar_sync
from booking.services.invalidation import availability_invalidate
from tenants.admin_errors import domain_error_text
from tenants.admin_scoping import FRONT_DESK, ReadOnlyTenantInline, TenantScopedAdmin, TenantScopedInline
from tenants.api.errors import Conflict as ApiConflict
from tenants.crypto import encrypt_text
from tenants.errors import DomainError
from tenants.localtime import local_range_text, local_text

# What a service may refuse an admin write with; shown as a message, nothing written. (The DRF
# conflict is what services raised before domain errors; kept until none does.)
REFUSALS = (DomainError, ApiConflict, DjangoValidationError)


def refusal_text(exc) -> str:
    if isinstance(exc, DomainError):
        return domain_error_text(exc)
    if isinstance(exc, DjangoValidationError):
        return " ".join(exc.messages)
    return str(getattr(exc, "detail", exc))


class AvailabilityAdmin(TenantScopedAdmin):
    """Admin writes of booking objects go through the same services as ``/v3/``
    (``booking.services.crud``): one transaction that ends by invalidating cached availability,
    and the same guards. A delete the service refuses (a location, service or resource with
    upcoming appointments) is shown as a message and deletes nothing, singly or in bulk."""

    def save_model(self, request, obj, form, change):
        tenant_object_save(instance=obj)

    def save_related(self, request, form, formsets, change):
        with transaction.atomic():
            super().save_related(request, form, formsets, change)
            availability_invalidate(organization_id=form.instance.organization_id)

    def delete_model(self, request, obj):
        tenant_object_delete(instance=obj)

    def delete_queryset(self, request, queryset):
        tenant_objects_delete(instances=list(queryset))

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except REFUSALS as exc:  # the whole delete was rolled back
            self.message_user(request, f"Not deleted: {refusal_text(exc)}", messages.ERROR)
            opts = self.model._meta
            return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(object_id)]))

    def get_actions(self, request):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            func, name, description = actions["delete_selected"]
            actions["delete_selected"] = (_refusals_as_messages(func), name, description)
        return actions


def _refusals_as_messages(action):
    """The bulk delete, all or nothing: a refused object leaves every selected one in place."""

    @functools.wraps(action)
    def run(modeladmin, request, queryset):
        if not request.POST.get("post"):
            return action(modeladmin, request, queryset)  # the confirmation page
        try:
            with transaction.atomic():
                return action(modeladmin, request, queryset)
        except REFUSALS as exc:
            modeladmin.message_user(request, f"Nothing was deleted: {refusal_text(exc)}", messages.ERROR)
            return None

    return run


class ResourceServiceInline(TenantScopedInline, admin.TabularInline):
    model = m.ResourceService
    extra = 0
    autocomplete_fields = ["service", "location"]


class ShiftInline(TenantScopedInline, admin.TabularInline):
    model = m.Shift
    extra = 0
    fields = ["day_of_week", "start_time", "end_time", "location", "valid_from", "valid_until", "recur_every_weeks"]


class AllocationInline(TenantScopedInline, admin.TabularInline):
    model = m.Allocation
    form = AllocationForm
    extra = 0
    fields = ["start", "end", "location"]


class LocationForm(forms.ModelForm):
    weekly_availability = WeeklyWindowsField(required=False, label="Opening hours", help_text="Empty: no restriction.")

    class Meta:
        model = m.Location
        fields = "__all__"


@admin.register(m.Location)
class LocationAdmin(AvailabilityAdmin):
    form = LocationForm
    list_display = ["name", "timezone", "status", "opening_hours", "hold_expiration_minutes", "organization"]
    list_filter = ["status", "timezone", "organization"]
    search_fields = ["name", "ehr_id", "address"]
    readonly_fields = ["id", "calendar_link"]

    @admin.display(description="Calendar")
    def calendar_link(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        return format_html('<a href="{}">Week calendar</a>', reverse("admin:booking_location_calendar", args=[obj.pk]))

    def get_urls(self):
        from booking.admin_calendar.urls import location_calendar_urls

        return [*location_calendar_urls(self), *super().get_urls()]

    @admin.display(description="Opening hours")
    def opening_hours(self, obj):
        return weekly_windows_text(obj.weekly_availability) or "any time"


@admin.register(m.Service)
class ServiceAdmin(AvailabilityAdmin):
    list_display = ["name", "duration", "padding", "bookings_per_slot", "round_robin", "offered_by", "visit_type", "organization"]
    list_filter = ["duration_select", "round_robin", "organization"]
    search_fields = ["name", "visit_type"]
    readonly_fields = ["id"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related(
            Prefetch("resource_links", queryset=m.ResourceService.objects.select_related("resource").order_by("resource__name"))
        )

    @admin.display(description="Offered by")
    def offered_by(self, obj):
        names = sorted({link.resource.name for link in obj.resource_links.all()})
        return ", ".join(names) or "nobody"


class ResourceForm(forms.ModelForm):
    licensed_states = StatesField(required=False, help_text="US states the provider is licensed in.")

    class Meta:
        model = m.Resource
        fields = "__all__"

    def clean_email(self):
        """Stored lowercase, as ``/v3/resources`` stores it (the provider directory matches on it)."""
        return (self.cleaned_data.get("email") or "").strip().lower()


@admin.register(m.Resource)
class ResourceAdmin(AvailabilityAdmin):
    form = ResourceForm
    list_display = ["name", "type", "status", "zone", "email", "npi", "states", "organization"]
    list_filter = ["type", "status", "hide_in_availability", "organization"]
    search_fields = ["name", "email", "ehr_id", "npi"]
    readonly_fields = ["id", "availability_explain_link"]
    inlines = [ResourceServiceInline, ShiftInline, AllocationInline]

    @admin.display(description="Zone")
    def zone(self, obj):
        return obj.timezone or "first location's"

    @admin.display(description="Licensed in")
    def states(self, obj):
        return ", ".join(obj.licensed_states or []) or "—"

    @admin.display(description="Availability")
    def availability_explain_link(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        url = reverse("admin:booking_resource_explain", args=[obj.pk])
        return format_html(
            '<a href="{}">Why is a time not bookable?</a> · <a href="{}">By day</a> · <a href="{}">Week calendar</a>',
            url, reverse("admin:booking_resource_explain_day", args=[obj.pk]),
            reverse("admin:booking_resource_calendar", args=[obj.pk]),
        )

    def get_urls(self):
        explain = path(
            "<path:object_id>/explain/",
            self.admin_site.admin_view(self.explain_view),
            name="booking_resource_explain",
        )
        from booking.admin_calendar.urls import resource_calendar_urls

        return [explain, *resource_calendar_urls(self), *super().get_urls()]

    def explain_view(self, request, object_id):
        """Why this resource can or cannot take a service at a time: ``GET /v3/availability/explain``
        (the same engine code) for staff."""
        resource = self.get_object(request, object_id)
        if resource is None or not self.has_view_permission(request, resource):
            raise Http404("Resource not found.")
        form = ExplainForm(request.GET or None, organization_id=resource.organization_id, resource_id=resource.pk)
        result = None
        if form.is_valid():
            location, service, at = form.cleaned_data["location"], form.cleaned_data["service"], form.cleaned_data["at"]
            params = AvailabilityParams(location_id=location.pk, service_id=service.pk, start=at, end=at, zone=location.timezone)
            result = availability_explain(organization=resource.organization, params=params, resource_id=resource.pk, at=at)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Why is this time not bookable? {resource}",
            "opts": self.model._meta,
            "original": resource,
            "form": form,
            "result": result,
        }
        return TemplateResponse(request, "admin/booking/resource/explain.html", context)


class ExplainForm(forms.Form):
    service = forms.ModelChoiceField(queryset=m.Service.objects.none())
    location = forms.ModelChoiceField(queryset=m.Location.objects.none())
    time = forms.CharField(help_text="ISO date-time; without an offset it is read in the location's time zone, e.g. 2031-01-06 09:00.")

    def __init__(self, *args, organization_id, resource_id, **kwargs):
        super().__init__(*args, **kwargs)
        links = m.ResourceService.objects.filter(resource_id=resource_id)
        self.fields["service"].queryset = m.Service.objects.filter(organization_id=organization_id, pk__in=links.values("service_id"))
        self.fields["location"].queryset = m.Location.objects.filter(organization_id=organization_id, pk__in=links.values("location_id"))

    def clean(self):
        cleaned = super().clean()
        location, text = cleaned.get("location"), (cleaned.get("time") or "").strip()
        if location is None or not text:
            return cleaned
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise forms.ValidationError({"time": "Not a date-time."}) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=ZoneInfo(location.timezone))
        cleaned["at"] = parsed.astimezone(UTC)
        return cleaned


@admin.register(m.ResourceService)
class ResourceServiceAdmin(AvailabilityAdmin):
    list_display = ["resource", "service", "location", "created_at"]
    list_filter = ["service", "location", "organization"]
    search_fields = ["resource__name", "service__name", "location__name"]
    autocomplete_fields = ["resource", "service", "location"]


class VisitTypeRuleInline(TenantScopedInline, admin.TabularInline):
    model = m.VisitTypeRule
    extra = 0


@admin.register(m.Shift)
class ShiftAdmin(AvailabilityAdmin):
    list_display = ["resource", "day_of_week", "start_time", "end_time", "location", "valid_from", "valid_until", "recur_every_weeks"]
    list_select_related = ["resource", "location"]
    list_filter = ["day_of_week", "location", "organization"]
    search_fields = ["resource__name"]
    autocomplete_fields = ["resource", "location"]
    inlines = [VisitTypeRuleInline]


class LocalTimesAdmin(AvailabilityAdmin):
    """Blocks and allocations: listed and typed in their place's wall-clock time, zone named."""

    write_roles = FRONT_DESK
    list_select_related = ["resource", "location", "service", "organization"]

    @admin.display(description="When (local time)", ordering="start")
    def when(self, obj):
        zone = scoped_zone_get(resource=obj.resource, location=obj.location, organization_id=obj.organization_id)
        return local_range_text(obj.start, obj.end, zone)


@admin.register(m.Allocation)
class AllocationAdmin(LocalTimesAdmin):
    form = AllocationForm
    list_display = ["resource", "when", "location"]
    list_filter = [ScopedLocalDayFilter, "location", "organization"]
    search_fields = ["resource__name"]
    autocomplete_fields = ["resource", "location"]
    list_select_related = ["resource", "location", "organization"]


@admin.register(m.Block)
class BlockAdmin(LocalTimesAdmin):
    form = BlockForm
    list_display = ["scope", "when", "reason"]
    list_filter = [ScopedLocalDayFilter, "resource", "location", "service", "organization"]
    search_fields = ["reason", "resource__name", "location__name", "service__name"]
    autocomplete_fields = ["resource", "location", "service"]

    @admin.display(description="Blocks")
    def scope(self, obj):
        return obj.scope


class RecurringBlockForm(forms.ModelForm):
    weekdays = WeekdaysField(required=False, help_text="Weekly and every other week: empty = the start date's weekday.")

    class Meta:
        model = m.RecurringBlock
        fields = "__all__"


@admin.register(m.RecurringBlock)
class RecurringBlockAdmin(AvailabilityAdmin):
    form = RecurringBlockForm
    write_roles = FRONT_DESK
    list_display = ["scope", "pattern", "wall_times", "start_date", "end_date", "reason"]
    list_filter = ["frequency", "resource", "location", "service", "organization"]
    search_fields = ["reason", "resource__name", "location__name", "service__name"]
    autocomplete_fields = ["resource", "location", "service"]
    list_select_related = ["resource", "location", "service"]

    @admin.display(description="Blocks")
    def scope(self, obj):
        return obj.resource or obj.location or obj.service

    @admin.display(description="Repeats")
    def pattern(self, obj):
        every = f"every {obj.interval} " if obj.interval and obj.interval > 1 else ""
        text = f"{every}{obj.get_frequency_display().lower()}"
        if isinstance(obj.weekdays, list) and obj.weekdays:
            text += " on " + ", ".join(m.WEEKDAY_NAMES.get(d, str(d)) for d in obj.weekdays if isinstance(d, int))
        elif obj.month_day:
            text += f" on day {obj.month_day}"
        return text

    @admin.display(description="Time (local)")
    def wall_times(self, obj):
        zone = obj.timezone or scoped_zone_get(resource=obj.resource, location=obj.location, organization_id=obj.organization_id)
        end = "24:00" if obj.end_time == m.MIDNIGHT else f"{obj.end_time:%H:%M}"
        return f"{obj.start_time:%H:%M}–{end} ({zone})"


class AppointmentResourceInline(ReadOnlyTenantInline, admin.TabularInline):
    model = m.AppointmentResource
    fields = ["resource"]
    readonly_fields = ["resource"]


class ProviderFilter(admin.SimpleListFilter):
    """Appointments of a provider (any resource they occupy, so booked and EMR visits alike)."""

    title = "provider"
    parameter_name = "provider"

    def lookups(self, request, model_admin):
        from tenants.admin_scoping import scope_queryset

        resources = scope_queryset(request, m.Resource.objects.filter(type__in=[m.Resource.Type.PROVIDER, m.Resource.Type.STAFF]))
        return [(str(r.pk), r.name) for r in resources.order_by("name")]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            return queryset.filter(resource_links__resource_id=self.value())
        except DjangoValidationError:
            return queryset.none()


@admin.register(m.Appointment)
class AppointmentAdmin(TenantScopedAdmin):
    """Appointments are browsed here; the time they take changes only through the booking services
    (the booking API, the calendars, or the cancel action below), which lock the resources,
    re-check availability, emit events and invalidate cached answers. Staff may correct the contact
    details and notes (``appointment_details_update``, which emits ``appointment.updated``)."""

    write_roles = FRONT_DESK
    list_display = ["when", "status_label", "who", "service", "providers", "location", "source", "ehr_appointment_id"]
    list_display_links = ["when"]
    list_filter = [
        LocalDayFilter, "status", "source", ProviderFilter, "location", "service", "primary_provider", "emr_connection", "organization",
    ]
    date_hierarchy = "start"
    local_zone_expression = staticmethod(appointment_zone_expression)
    search_fields = [
        "patient_name", "patient_mrn", "customer_name", "customer_email", "resource_links__resource__name",
        "ehr_appointment_id", "=id",
    ]
    inlines = [AppointmentResourceInline]
    list_select_related = ["service", "location", "organization"]
    actions = ["cancel_appointments"]
    EDITABLE = DETAIL_FIELDS
    fieldsets = [
        (None, {"fields": ["when", "status_label", "service", "location", "providers", "source"]}),
        ("Who", {"fields": ["customer_name", "customer_email", "customer_phone", "patient_name", "patient_mrn", "notes", "reason"]}),
        ("EMR", {"fields": ["emr_connection", "ehr_appointment_id", "appointment_type", "ehr_location_name", "ehr_created_by", "ehr_locked"],
                 "classes": ["collapse"]}),
        ("Record", {"fields": ["id", "expires_local", "cancelled_local", "created_local", "created_by_client"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related(
            Prefetch("resource_links", queryset=m.AppointmentResource.objects.select_related("resource").order_by("resource__name"))
        )

    def get_ordering(self, request):
        """Upcoming first (from the start of today), soonest first; then the past, latest first."""
        today_start = datetime.combine(timezone.localdate(), time(0), timezone.get_current_timezone())
        upcoming = Q(start__gte=today_start) | Q(end__gt=timezone.now())
        return [
            Case(When(upcoming, then=Value(0)), default=Value(1)).asc(),
            Case(When(upcoming, then=F("start")), default=None).asc(nulls_last=True),
            F("start").desc(),
            "id",
        ]

    def get_changelist(self, request, **kwargs):
        return LocalDateHierarchyChangeList

    def get_search_results(self, request, queryset, search_term):
        queryset, _ = super().get_search_results(request, queryset, search_term)
        return queryset.distinct() if search_term else queryset, False

    def has_add_permission(self, request, *args):
        return False  # bookings are made through the booking services, which check availability

    def has_delete_permission(self, request, obj=None):
        return False  # cancel instead: deleting would free the time without an event

    def get_readonly_fields(self, request, obj=None):
        computed = ["when", "status_label", "providers", "expires_local", "cancelled_local", "created_local"]
        return [*computed, *(f.name for f in self.model._meta.concrete_fields if f.name not in self.EDITABLE)]

    def save_model(self, request, obj, form, change):
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in self.EDITABLE}
        if changes:
            appointment_details_update(appointment=obj, changes=changes)

    @staticmethod
    def _zone(obj):
        return obj.location.timezone if obj.location_id else obj.organization.timezone

    @admin.display(description="When (local time)", ordering="start")
    def when(self, obj):
        return local_range_text(obj.start, obj.end, self._zone(obj))

    @admin.display(description="Status", ordering="status")
    def status_label(self, obj):
        ours = obj.get_status_display()
        return f"{ours} (EMR: {obj.ehr_status})" if obj.ehr_status else ours

    @admin.display(description="Patient / customer", ordering="customer_name")
    def who(self, obj):
        name = obj.patient_name or obj.customer_name or "—"
        return f"{name} · {obj.patient_mrn}" if obj.patient_mrn else name

    @admin.display(description="Providers and resources")
    def providers(self, obj):
        links = list(obj.resource_links.all())
        return format_html_join(", ", "{}", ((link.resource.name,) for link in links)) if links else "—"

    @admin.display(description="Hold expires")
    def expires_local(self, obj):
        return local_text(obj.expires_at, self._zone(obj)) if obj.expires_at else "—"

    @admin.display(description="Cancelled at")
    def cancelled_local(self, obj):
        return local_text(obj.cancelled_at, self._zone(obj)) if obj.cancelled_at else "—"

    @admin.display(description="Created")
    def created_local(self, obj):
        return local_text(obj.created_at, self._zone(obj))

    @admin.action(description="Cancel the selected appointments (booked through the API)", permissions=["change"])
    def cancel_appointments(self, request, queryset):
        cancelled = skipped = 0
        for appointment in queryset.select_related("location"):
            if appointment.source != m.Appointment.Source.API or appointment.status == m.Appointment.Status.CANCELLED:
                skipped += 1
                continue
            appointment_cancel(appointment=appointment)
            cancelled += 1
        message = f"Cancelled {cancelled} appointment(s)."
        if skipped:
            message += f" Skipped {skipped} already cancelled or from the EMR (cancel those in the EMR)."
        self.message_user(request, message)


class ExternalCalendarForm(forms.ModelForm):
    url = forms.URLField(max_length=1000, assume_scheme="https", help_text="iCalendar feed (http, https) or CalDAV calendar URL.")
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="CalDAV only. Stored encrypted; leave empty to keep the current one.",
    )

    class Meta:
        model = m.ExternalCalendar
        fields = "__all__"

    def save(self, commit=True):
        calendar = super().save(commit=False)
        if self.cleaned_data.get("password"):
            calendar.password_encrypted = encrypt_text(self.cleaned_data["password"])
        if commit:
            calendar.save()
        return calendar


@admin.register(m.ExternalCalendar)
class ExternalCalendarAdmin(AvailabilityAdmin):
    form = ExternalCalendarForm
    list_display = ["__str__", "resource", "kind", "last_synced_at", "last_error"]
    list_filter = ["kind", "organization"]
    search_fields = ["name", "url", "resource__name"]
    autocomplete_fields = ["resource"]
    readonly_fields = ["last_synced_at", "last_error"]
    actions = ["sync_now"]

    @admin.action(description="Sync now", permissions=["change"])
    def sync_now(self, request, queryset):
        ok = failed = 0
        for calendar in queryset.select_related("resource", "organization"):
            if external_calendar_sync(calendar=calendar):
                ok += 1
            else:
                failed += 1
        level = messages.WARNING if failed else messages.SUCCESS
        self.message_user(request, f"{ok} calendar(s) synced, {failed} failed (see their last error).", level)
