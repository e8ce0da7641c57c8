"""The Calendly pages of the admin: the connection (admin role only: it holds the token), its
users with their provider link (editable), and the synced event types (read-only).

Writes go through ``emr.services.calendly``: the token is encrypted there, a changed link is
marked as staff's choice and invalidates cached times, "Sync now" queues a sync job.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from emr.models import CalendlyConnection, CalendlyEventType, CalendlyUser
from emr.services.calendly import (
    calendly_connect,
    calendly_connection_update,
    calendly_sync_start,
    calendly_user_link,
)
from tenants.admin_scoping import TenantScopedAdmin, user_can_write, user_writable_organization_ids


class CalendlyConnectionForm(forms.ModelForm):
    token = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        label="Personal access token",
        help_text="Write-only, stored encrypted: leave blank to keep the stored token.",
    )

    class Meta:
        model = CalendlyConnection
        fields = ["organization", "base_url", "is_active"]

    def clean(self):
        cleaned = super().clean()
        token = (cleaned.get("token") or "").strip()
        if token and any(ch.isspace() for ch in token):
            self.add_error("token", "The token must not contain spaces.")
        if self.instance._state.adding and not token:
            self.add_error("token", "A new connection needs a token.")
        return cleaned


@admin.register(CalendlyConnection)
class CalendlyConnectionAdmin(TenantScopedAdmin):
    form = CalendlyConnectionForm
    list_display = ["organization", "base_url", "is_active", "last_synced_at", "last_error_summary"]
    list_filter = ["is_active", "organization"]
    readonly_fields = ["id", "token_stored", "calendly_organization_uri", "calendly_user_uri", "last_synced_at", "last_error"]
    actions = ["sync_now"]

    # Only admins of an organization see its connection (viewers and front desk never do).
    def _is_member(self, request) -> bool:
        return request.user.is_superuser or bool(user_writable_organization_ids(request))

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(organization_id__in=user_writable_organization_ids(request))

    def get_fieldsets(self, request, obj=None):
        main = [f for f in ("organization", "base_url", "token", "is_active") if f not in (self.get_exclude(request, obj) or ())]
        sets = [(None, {"fields": main})]
        if obj is not None:
            sets.append(("State", {"fields": ["id", "token_stored", "calendly_organization_uri", "calendly_user_uri",
                                             "last_synced_at", "last_error"]}))
        return sets

    @admin.display(description="Token")
    def token_stored(self, obj):
        return "stored (encrypted)" if obj and obj.token_encrypted else "none"

    @admin.display(description="Last error")
    def last_error_summary(self, obj):
        return (obj.last_error[:120] + "…") if len(obj.last_error) > 120 else (obj.last_error or "—")

    def save_model(self, request, obj, form, change):
        token = (form.cleaned_data.get("token") or "").strip()
        try:
            if change:
                saved = calendly_connection_update(
                    connection=CalendlyConnection.objects.get(pk=obj.pk), token=token or None,
                    base_url=obj.base_url, is_active=obj.is_active,
                )
            else:
                saved = calendly_connect(organization=obj.organization, token=token, base_url=obj.base_url)
                if not obj.is_active:
                    saved = calendly_connection_update(connection=saved, is_active=False)
        except ValueError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        obj.pk = saved.pk
        obj.refresh_from_db()

    @admin.action(description="Sync now (users and event types from Calendly)")
    def sync_now(self, request, queryset):
        jobs = [calendly_sync_start(connection=c) for c in queryset.filter(is_active=True)]
        self.message_user(request, f"Queued {len(jobs)} Calendly sync job(s): {', '.join(j.pk for j in jobs)}.")


class CalendlyUserForm(forms.ModelForm):
    class Meta:
        model = CalendlyUser
        fields = ["resource"]


@admin.register(CalendlyUser)
class CalendlyUserAdmin(TenantScopedAdmin):
    form = CalendlyUserForm
    list_display = ["name", "email", "resource", "linked_manually", "is_member", "connection", "organization"]
    list_filter = ["linked_manually", "is_member", "organization"]
    search_fields = ["name", "email", "uri", "resource__name"]
    autocomplete_fields = ["resource"]
    readonly_fields = ["name", "email", "uri", "linked_manually", "is_member", "connection"]
    fields = ["name", "email", "uri", "resource", "linked_manually", "is_member", "connection"]
    list_select_related = ["resource", "connection"]

    def has_add_permission(self, request, *args):
        return False  # users come from the sync

    def save_model(self, request, obj, form, change):
        if "resource" in form.changed_data:
            try:
                calendly_user_link(user=CalendlyUser.objects.get(pk=obj.pk), resource=obj.resource)
            except ValueError as exc:
                self.message_user(request, str(exc), messages.ERROR)


@admin.register(CalendlyEventType)
class CalendlyEventTypeAdmin(TenantScopedAdmin):
    list_display = ["name", "event_type_id", "provider", "duration", "active", "scheduling_url", "organization"]
    list_filter = ["active", "organization"]
    search_fields = ["name", "event_type_id", "calendly_user__email", "calendly_user__resource__name"]
    readonly_fields = ["event_type_id", "uri", "name", "scheduling_url", "duration", "active", "owner_uri", "calendly_user", "connection"]
    fields = readonly_fields
    list_select_related = ["calendly_user__resource"]

    @admin.display(description="Provider")
    def provider(self, obj):
        user = obj.calendly_user
        return user.resource if user and user.resource else "—"

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return user_can_write(request, obj) and request.user.is_superuser
