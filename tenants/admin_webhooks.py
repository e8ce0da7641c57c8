"""Admin for webhooks and background work.

- django-q2's own screens (queued tasks, successes, failures, schedules) are re-registered for
  superusers only: they show every organization's task arguments.
- Staff get tenant-scoped webhook endpoints (create shows the secret once; rotate, disable,
  enable, delete) and deliveries (status filters, every attempt's status code, duration and
  response excerpt, a "redeliver" action).
- ``/admin/tenants/delivery/overview/``: the last 24 hours of jobs and deliveries by status and
  the failing endpoints, linked from the admin index; staff see their organizations only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html

from tenants.admin_scoping import (
    ReadOnlyTenantInline,
    TenantScopedAdmin,
    user_can_write,
    user_organization_ids,
)
from tenants.models import Delivery, DeliveryAttempt, WebhookEndpoint
from tenants.webhooks.selectors import monitoring_overview
from tenants.webhooks.services import (
    EVENT_TYPES,
    EndpointConflict,
    delivery_redeliver,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_disable,
    webhook_endpoint_enable,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)

admin.site.index_template = "admin/tenants/index.html"


# --- redelivery, from the delivery list and the event list ------------------------------------------


def redeliver_permitted(model_admin: TenantScopedAdmin, request) -> bool:
    return model_admin._is_member(request) and user_can_write(request)


def redeliver_action(*, description: str, deliveries: Callable[[QuerySet], Iterable[Delivery]]):
    """The "redeliver" admin action: each of ``deliveries(selected)`` is queued again
    (``delivery_redeliver``); the ones in flight, or whose endpoint is disabled or deleted, are
    counted as skipped. Needs ``has_redeliver_permission`` (``redeliver_permitted``)."""

    @admin.action(description=description, permissions=["redeliver"])
    def redeliver(model_admin, request, queryset):
        queued = skipped = 0
        for delivery in deliveries(queryset):
            if delivery_redeliver(delivery=delivery):
                queued += 1
            else:
                skipped += 1
        model_admin.message_user(request, f"Queued {queued} redelivery(ies).")
        if skipped:
            model_admin.message_user(
                request, f"Skipped {skipped}: in flight right now, or the endpoint is disabled or deleted.", messages.WARNING
            )

    return redeliver


# --- django-q2: superusers only -------------------------------------------------------------------


class SuperuserOnlyAdminMixin:
    """Task arguments and results span every organization: only superusers see these screens."""

    def _is_superuser(self, request) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_module_permission(self, request):
        return self._is_superuser(request)

    def has_view_permission(self, request, obj=None):
        return self._is_superuser(request)

    def has_add_permission(self, request, *args):
        return self._is_superuser(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return self._is_superuser(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._is_superuser(request) and super().has_delete_permission(request, obj)


def _register_django_q_superuser_only() -> None:
    import django_q.admin as q_admin  # registers django-q2's admins first, so they can be replaced
    from django_q.models import Failure, OrmQ, Schedule, Success

    for model, base in (
        (Schedule, q_admin.ScheduleAdmin),
        (Success, q_admin.TaskAdmin),
        (Failure, q_admin.FailAdmin),
        (OrmQ, q_admin.QueueAdmin),
    ):
        if not admin.site.is_registered(model):
            continue  # OrmQ (queued tasks) exists only with the ORM broker
        admin.site.unregister(model)
        admin.site.register(model, type(f"SuperuserOnly{base.__name__}", (SuperuserOnlyAdminMixin, base), {}))


_register_django_q_superuser_only()


# --- webhook endpoints ------------------------------------------------------------------------


class WebhookEndpointForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Send only these event types; none checked sends every type.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["organization", "url", "event_types"]
        widgets = {"url": forms.URLInput(attrs={"size": 80})}


class EndpointStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("disabled", "Disabled"), ("deleted", "Deleted")]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(is_active=True, deleted_at__isnull=True)
        if self.value() == "disabled":
            return queryset.filter(is_active=False, deleted_at__isnull=True)
        if self.value() == "deleted":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TenantScopedAdmin):
    """An organization's webhook endpoints. The secret is shown once, when created or rotated."""

    form = WebhookEndpointForm
    # The services check the URL (safety, duplicates, the per-organization limit); their
    # refusals come back on the form.
    refusals_on_form = (ValidationError, EndpointConflict)
    refusal_fields = {EndpointConflict: "url"}
    list_display = ["url", "state", "types", "deliveries_link", "disabled_reason", "created_at", "organization"]
    list_filter = [EndpointStatusFilter, "organization"]
    search_fields = ["url", "id"]
    actions = ["rotate_secret", "disable_endpoints", "enable_endpoints", "delete_endpoints"]
    readonly_fields = [
        "id",
        "state",
        "disabled_reason",
        "disabled_at",
        "previous_secret_expires_at",
        "deleted_at",
        "deliveries_link",
    ]

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if obj is None:
            return [f for f in fields if f in ("organization", "url", "event_types")]
        return fields

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields.append("organization")
            if obj.deleted_at is not None:
                fields += ["url", "event_types"]
        return fields

    def has_delete_permission(self, request, obj=None):
        return False  # the "delete" action marks endpoints deleted and keeps their history

    @admin.display(description="Status")
    def state(self, obj):
        return obj.status

    @admin.display(description="Event types")
    def types(self, obj):
        return ", ".join(obj.event_types) if obj.event_types else "all"

    @admin.display(description="Deliveries")
    def deliveries_link(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        url = reverse("admin:tenants_delivery_changelist") + f"?endpoint__id__exact={obj.pk}"
        return format_html('<a href="{}">deliveries</a>', url)

    def save_model(self, request, obj, form, change):
        """Through the services; a refusal is raised on to the form (``refusals_on_form``)."""
        if change:
            webhook_endpoint_update(endpoint=obj, url=obj.url, event_types=obj.event_types)
            return
        issued = webhook_endpoint_create(organization=obj.organization, url=obj.url, event_types=obj.event_types)
        obj.pk = issued.endpoint.pk
        obj._state.adding = False
        messages.warning(
            request,
            format_html(
                "Copy the signing secret now; it is not shown again: <code>{}</code>",
                issued.secret,
            ),
        )

    @admin.action(description="Rotate the signing secret (the old one keeps verifying for 24 hours)", permissions=["change"])
    def rotate_secret(self, request, queryset):
        for endpoint in queryset.filter(deleted_at__isnull=True):
            issued = webhook_endpoint_rotate_secret(endpoint=endpoint)
            messages.warning(
                request, format_html("New signing secret for {} (shown once): <code>{}</code>", endpoint.url, issued.secret)
            )

    @admin.action(description="Disable the selected endpoints", permissions=["change"])
    def disable_endpoints(self, request, queryset):
        for endpoint in queryset.filter(is_active=True):
            webhook_endpoint_disable(endpoint=endpoint, reason=f"Disabled by {request.user.get_username()} in the admin.")
        self.message_user(request, "Disabled. Waiting deliveries were marked failed; redeliver them after enabling.")

    @admin.action(description="Enable the selected endpoints", permissions=["change"])
    def enable_endpoints(self, request, queryset):
        for endpoint in queryset.filter(deleted_at__isnull=True):
            webhook_endpoint_enable(endpoint=endpoint)
        self.message_user(request, "Enabled.")

    @admin.action(description="Delete the selected endpoints (stop sending; history kept)", permissions=["change"])
    def delete_endpoints(self, request, queryset):
        count = 0
        for endpoint in queryset.filter(deleted_at__isnull=True):
            webhook_endpoint_delete(endpoint=endpoint)
            count += 1
        self.message_user(request, f"Deleted {count} endpoint(s).")


# --- deliveries ---------------------------------------------------------------------------------


class DeliveryAttemptInline(ReadOnlyTenantInline, admin.TabularInline):
    model = DeliveryAttempt
    fields = ["number", "started_at", "outcome", "status_code", "duration_ms", "error", "response_excerpt"]
    readonly_fields = fields
    ordering = ["started_at", "id"]


class DeliveryInlineForEvent(ReadOnlyTenantInline, admin.TabularInline):
    model = Delivery
    fields = ["delivery", "endpoint", "status", "attempts", "last_status_code", "next_attempt_at"]
    readonly_fields = fields
    verbose_name_plural = "webhook deliveries"

    @admin.display(description="Delivery")
    def delivery(self, obj):
        return format_html('<a href="{}">#{}</a>', reverse("admin:tenants_delivery_change", args=[obj.pk]), obj.pk)


class EventTypeFilter(admin.SimpleListFilter):
    """The event types webhooks.md defines; not the values found in the table, which would
    show staff the types other organizations' events have."""

    title = "event type"
    parameter_name = "event_type"

    def lookups(self, request, model_admin):
        return [(t, t) for t in EVENT_TYPES]

    def queryset(self, request, queryset):
        return queryset.filter(event__type=self.value()) if self.value() else queryset


@admin.register(Delivery)
class DeliveryAdmin(TenantScopedAdmin):
    list_display = [
        "id",
        "event_link",
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "last_attempt_at",
        "next_attempt_at",
        "created_at",
        "organization",
    ]
    list_filter = ["status", EventTypeFilter, "endpoint", "organization"]
    search_fields = ["event__id", "event__job_id", "endpoint__url"]
    list_select_related = ["event", "endpoint", "organization"]
    date_hierarchy = "created_at"
    actions = ["redeliver"]
    inlines = [DeliveryAttemptInline]
    fields = [
        "organization",
        "event_link",
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "next_attempt_at",
        "last_attempt_at",
        "last_status_code",
        "last_error",
        "completed_at",
        "body",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_redeliver_permission(self, request):
        return redeliver_permitted(self, request)

    @admin.display(description="Event", ordering="event__id")
    def event_link(self, obj):
        return format_html('<a href="{}">{}</a>', reverse("admin:tenants_event_change", args=[quote(obj.event_id)]), obj.event_id)

    @admin.display(description="Type", ordering="event__type")
    def event_type(self, obj):
        return obj.event.type

    @admin.display(description="Body sent")
    def body(self, obj):
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>", obj.event.body)

    redeliver = redeliver_action(
        description="Redeliver the selected events to their endpoints",
        deliveries=lambda queryset: queryset.select_related("endpoint"),
    )

    # --- the overview page ---

    def get_urls(self):
        return [
            path("overview/", self.admin_site.admin_view(self.overview_view), name="tenants_delivery_overview"),
            *super().get_urls(),
        ]

    def overview_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        organization_ids = None if request.user.is_superuser else user_organization_ids(request)
        data = monitoring_overview(organization_ids=organization_ids)
        try:
            jobs_url = reverse("admin:emr_job_changelist")
        except NoReverseMatch:
            jobs_url = None
        queued_tasks = None
        if request.user.is_superuser:
            try:
                from django_q.brokers import get_broker

                queued_tasks = get_broker().queue_size()
            except Exception:  # noqa: BLE001 - the broker may be unreachable; the page still renders
                queued_tasks = None
        context = {
            **self.admin_site.each_context(request),
            "title": "Background work and webhooks: last 24 hours",
            "overview": data,
            "jobs_url": jobs_url,
            "deliveries_url": reverse("admin:tenants_delivery_changelist"),
            "endpoints_url": reverse("admin:tenants_webhookendpoint_changelist"),
            "queued_tasks": queued_tasks,
            "is_superuser": request.user.is_superuser,
        }
        return TemplateResponse(request, "admin/tenants/overview.html", context)
