from datetime import datetime, timezone as dt_timezone
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from booking import models as m
from booking.availability.selectors import AvailabilityParams, availability_explain
from booking.services.external_calendars import external_calendar_sync
from booking.services.invalidation import availability_invalidate
from tenants.crypto import encrypt_text
from tenants.admin_scoping import TenantScopedAdmin, TenantScopedInline


class AvailabilityAdmin(TenantScopedAdmin):
    """Admin writes change availability like API writes do: invalidate cached answers."""

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            availability_invalidate(organization_id=obj.organization_id)

    def save_related(self, request, form, formsets, change):
        with transaction.atomic():
            super().save_related(request, form, formsets, change)
            availability_invalidate(organization_id=form.instance.organization_id)

    def delete_model(self, request, obj):
        with transaction.atomic():
            super().delete_model(request, obj)
            availability_invalidate(organization_id=obj.organization_id)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            org_ids = set(queryset.values_list("organization_id", flat=True))
            super().delete_queryset(request, queryset)
            for org_id in org_ids:
                availability_invalidate(organization_id=org_id)


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
    extra = 0
    fields = ["start", "end", "location"]


@admin.register(m.Location)
class LocationAdmin(AvailabilityAdmin):
    list_display = ["name", "timezone", "status", "ehr_id", "hold_expiration_minutes", "organization"]
    list_filter = ["status", "timezone", "organization"]
    search_fields = ["name", "ehr_id", "address"]
    readonly_fields = ["id"]


@admin.register(m.Service)
class ServiceAdmin(AvailabilityAdmin):
    list_display = ["name", "duration", "padding", "duration_select", "bookings_per_slot", "round_robin", "visit_type", "organization"]
    list_filter = ["duration_select", "round_robin", "organization"]
    search_fields = ["name", "visit_type"]
    readonly_fields = ["id"]


@admin.register(m.Resource)
class ResourceAdmin(AvailabilityAdmin):
    list_display = ["name", "type", "status", "timezone", "email", "ehr_id", "npi", "hide_in_availability", "organization"]
    list_filter = ["type", "status", "hide_in_availability", "organization"]
    search_fields = ["name", "email", "ehr_id", "npi"]
    readonly_fields = ["id", "availability_explain_link"]
    inlines = [ResourceServiceInline, ShiftInline, AllocationInline]

    @admin.display(description="Availability")
    def availability_explain_link(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        url = reverse("admin:booking_resource_explain", args=[obj.pk])
        return format_html('<a href="{}">Why is a time not bookable?</a>', url)

    def get_urls(self):
        explain = path(
            "<path:object_id>/explain/",
            self.admin_site.admin_view(self.explain_view),
            name="booking_resource_explain",
        )
        return [explain, *super().get_urls()]

    def explain_view(self, request, object_id):
        """Why this resource can or cannot take a service at a time: ``GET /v3/availability/explain``
        (the same engine code) for staff."""
        resource = self.get_object(request, object_id)
        if resource is None or not self.has_view_permission(request, resource):
            raise Http404("Resource not found.")
        form = ExplainForm(request.GET or None, organization_id=resource.organization_id)
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

    def __init__(self, *args, organization_id, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["service"].queryset = m.Service.objects.filter(organization_id=organization_id)
        self.fields["location"].queryset = m.Location.objects.filter(organization_id=organization_id)

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
        cleaned["at"] = parsed.astimezone(dt_timezone.utc)
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
    list_filter = ["day_of_week", "location", "organization"]
    search_fields = ["resource__name"]
    autocomplete_fields = ["resource", "location"]
    inlines = [VisitTypeRuleInline]


@admin.register(m.Allocation)
class AllocationAdmin(AvailabilityAdmin):
    list_display = ["resource", "start", "end", "location"]
    list_filter = ["location", "organization"]
    search_fields = ["resource__name"]
    autocomplete_fields = ["resource", "location"]
    date_hierarchy = "start"


@admin.register(m.Block)
class BlockAdmin(AvailabilityAdmin):
    list_display = ["start", "end", "resource", "location", "service", "reason"]
    list_filter = ["resource", "location", "service", "organization"]
    search_fields = ["reason", "resource__name", "location__name", "service__name"]
    autocomplete_fields = ["resource", "location", "service"]
    date_hierarchy = "start"


@admin.register(m.RecurringBlock)
class RecurringBlockAdmin(AvailabilityAdmin):
    list_display = ["frequency", "interval", "start_date", "end_date", "start_time", "end_time", "resource", "location", "service", "reason"]
    list_filter = ["frequency", "resource", "location", "service", "organization"]
    search_fields = ["reason", "resource__name", "location__name", "service__name"]
    autocomplete_fields = ["resource", "location", "service"]


class AppointmentResourceInline(TenantScopedInline, admin.TabularInline):
    model = m.AppointmentResource
    extra = 0
    fields = ["resource"]
    readonly_fields = ["resource"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(m.Appointment)
class AppointmentAdmin(TenantScopedAdmin):
    """Appointments are browsed here; the time they take changes only through the booking services
    (the booking API, or the cancel action below), which lock the resources, re-check availability,
    emit events and invalidate cached answers. Staff may correct the contact details and notes."""

    list_display = [
        "start", "end", "status", "source", "service", "location", "primary_provider", "patient_name",
        "patient_mrn", "customer_name", "ehr_appointment_id",
    ]
    list_filter = ["status", "source", "primary_provider", "location", "service", "emr_connection", "organization"]
    search_fields = ["patient_name", "patient_mrn", "customer_name", "customer_email", "ehr_appointment_id", "id"]
    date_hierarchy = "start"
    inlines = [AppointmentResourceInline]
    list_select_related = ["service", "location", "primary_provider"]
    actions = ["cancel_appointments"]
    EDITABLE = ("customer_name", "customer_email", "customer_phone", "patient_name", "patient_mrn", "notes", "reason")

    def has_add_permission(self, request, *args):
        return False  # bookings are made through the booking API, which checks availability

    def has_delete_permission(self, request, obj=None):
        return False  # cancel instead: deleting would free the time without an event

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.concrete_fields if f.name not in self.EDITABLE]

    @admin.action(description="Cancel the selected appointments (booked through the API)", permissions=["change"])
    def cancel_appointments(self, request, queryset):
        from booking.services.appointments import appointment_cancel

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
