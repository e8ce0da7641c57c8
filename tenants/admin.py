from django.contrib import admin, messages
from django.utils.html import format_html

from tenants.admin_scoping import TenantScopedAdmin, user_organization_ids
from tenants.admin_webhooks import DeliveryInlineForEvent, redeliver_action, redeliver_permitted
from tenants.models import ApiClient, Delivery, Event, Membership, Organization
from tenants.services import api_client_create, api_client_revoke, api_client_rotate_key

admin.site.site_header = "Scheduling admin"
admin.site.site_title = "Scheduling admin"
admin.site.index_title = "Your organization"


@admin.register(Organization)
class OrganizationAdmin(TenantScopedAdmin):
    list_display = ["name", "slug", "timezone", "is_active", "created_at"]
    list_filter = ["is_active", "timezone"]
    search_fields = ["name", "slug"]
    readonly_fields = ["id", "availability_version"]
    prepopulated_fields = {"slug": ["name"]}

    def has_add_permission(self, request, *args):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if not request.user.is_superuser:
            fields = [*fields, "slug", "is_active"]
        return fields

    def get_prepopulated_fields(self, request, obj=None):
        return {} if not request.user.is_superuser else self.prepopulated_fields


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Who administers which organization: managed by superusers only."""

    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    search_fields = ["user__username", "user__email", "organization__name"]
    autocomplete_fields = ["user", "organization"]
    readonly_fields = ["created_at", "updated_at"]

    def has_module_permission(self, request):
        return request.user.is_superuser

    has_view_permission = has_add_permission = has_change_permission = has_delete_permission = (
        lambda self, request, *args: request.user.is_superuser
    )


@admin.register(ApiClient)
class ApiClientAdmin(TenantScopedAdmin):
    """API clients; secrets are shown once, on creation or key rotation, and stored only hashed."""

    list_display = ["name", "client_id", "status", "last_used_at", "created_at", "organization"]
    list_filter = ["organization", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "client_id"]
    fields = ["organization", "name", "client_id", "revoked_at", "last_used_at", "created_at", "updated_at"]
    readonly_fields = ["client_id", "revoked_at", "last_used_at"]
    actions = ["revoke", "rotate_api_key"]

    @admin.display(description="Status")
    def status(self, obj):
        return "revoked" if obj.revoked_at else "active"

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if obj is None:
            fields = [f for f in fields if f in ("organization", "name")]
        return fields

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        issued = api_client_create(organization=obj.organization, name=obj.name)
        obj.pk = issued.api_client.pk
        obj.client_id = issued.api_client.client_id
        messages.warning(
            request,
            format_html(
                "Copy these now; they are not shown again. client_id: <code>{}</code> · client_secret: <code>{}</code> · "
                "API key: <code>{}</code>",
                issued.api_client.client_id,
                issued.client_secret,
                issued.api_key,
            ),
        )

    @admin.action(description="Revoke the selected API clients", permissions=["change"])
    def revoke(self, request, queryset):
        for client in queryset:
            api_client_revoke(api_client=client)
        self.message_user(request, f"Revoked {queryset.count()} client(s).")

    @admin.action(description="Issue a new API key (the old one stops working)", permissions=["change"])
    def rotate_api_key(self, request, queryset):
        for client in queryset.filter(revoked_at__isnull=True):
            key = api_client_rotate_key(api_client=client)
            messages.warning(request, format_html("New API key for {}: <code>{}</code> (shown once)", client.name, key))


@admin.register(Event)
class EventAdmin(TenantScopedAdmin):
    list_display = ["id", "type", "job_id", "created_at", "organization"]
    list_filter = ["type", "organization"]
    search_fields = ["id", "job_id"]
    date_hierarchy = "created_at"
    readonly_fields = ["id", "organization", "type", "payload", "job_id", "access_token_reference_id", "created_at"]
    exclude = ["body"]
    inlines = [DeliveryInlineForEvent]
    actions = ["redeliver"]

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_redeliver_permission(self, request):
        return redeliver_permitted(self, request)

    redeliver = redeliver_action(
        description="Redeliver the selected events to their webhook endpoints",
        deliveries=lambda events: Delivery.objects.filter(event__in=events),
    )


__all__ = ["user_organization_ids"]
