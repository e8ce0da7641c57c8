from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from emr.adapters.base import AuthMode, EmrNotConfigured
from emr.models import EmrConnection, Job, LocalHours, SandboxClient, VisitStatus, VisitType
from emr.services.connections import (
    SECRET_FIELDS,
    emr_connection_access_token_rotate,
    emr_connection_create,
    emr_connection_credentials,
    emr_connection_credentials_update,
    emr_connection_keypair_ensure,
)
from emr.services.live_fetch import job_retry, providers_sync_start
from tenants.admin_scoping import TenantScopedAdmin, user_can_write
from tenants.crypto import DecryptionError

CREDENTIAL_HELP = "Write-only: leave blank to keep the stored value."


class EmrConnectionForm(forms.ModelForm):
    """Connection settings plus write-only credential fields (stored encrypted, never shown)."""

    auth = forms.ChoiceField(
        choices=[("", "— keep —")] + [(m, m) for m in AuthMode.ALL],
        required=False,
        help_text="smart_backend (eClinicalWorks: RS384 JWT client assertion), client_secret, or none.",
    )
    client_id = forms.CharField(required=False, max_length=200, help_text=CREDENTIAL_HELP)
    client_secret = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False), help_text=CREDENTIAL_HELP)
    private_key_pem = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off"}),
        label="Private key (PEM)",
        help_text=CREDENTIAL_HELP + " Use the 'Generate a key pair' action to create one and get the public JWKS to register.",
    )
    kid = forms.CharField(required=False, max_length=100, label="Key id (kid)", help_text=CREDENTIAL_HELP)
    base_url = forms.URLField(required=False, max_length=500, assume_scheme="https", help_text="FHIR base URL.")
    token_url = forms.URLField(required=False, max_length=500, assume_scheme="https", help_text=CREDENTIAL_HELP + " Empty: discovered from the EMR.")
    scope = forms.CharField(required=False, max_length=1000, help_text=CREDENTIAL_HELP)
    mrn_system = forms.CharField(required=False, max_length=500, label="MRN identifier system", help_text=CREDENTIAL_HELP)
    rate_per_minute = forms.IntegerField(
        required=False, min_value=1, max_value=100000, help_text=CREDENTIAL_HELP + " Empty: the vendor's limit (eClinicalWorks 250)."
    )

    CREDENTIAL_FIELDS = ("auth", "client_id", "client_secret", "private_key_pem", "kid", "token_url", "scope", "mrn_system", "rate_per_minute")

    class Meta:
        model = EmrConnection
        fields = ["organization", "name", "vendor", "base_url", "timezone", "is_active"]

    def clean_private_key_pem(self):
        value = self.cleaned_data.get("private_key_pem", "").strip()
        if value:
            from cryptography.hazmat.primitives import serialization

            try:
                serialization.load_pem_private_key(value.encode(), password=None)
            except (ValueError, TypeError):
                raise forms.ValidationError("Not an unencrypted PEM private key.") from None
        return value

    def credential_changes(self) -> dict:
        return {
            name: self.cleaned_data[name]
            for name in self.CREDENTIAL_FIELDS
            if self.cleaned_data.get(name) not in (None, "")
        }


@admin.register(EmrConnection)
class EmrConnectionAdmin(TenantScopedAdmin):
    form = EmrConnectionForm
    list_display = [
        "name", "vendor", "base_url", "timezone", "access_token_reference_id", "is_active", "login_required_at",
        "last_synced_at", "organization",
    ]
    list_filter = ["vendor", "is_active", "organization"]
    search_fields = ["name", "base_url", "access_token_reference_id"]
    readonly_fields = ["id", "access_token_reference_id", "credentials_summary", "public_jwks", "login_required_at", "last_error", "last_synced_at"]
    actions = ["sync_providers", "rotate_access_token", "generate_key_pair"]

    def get_fieldsets(self, request, obj=None):
        excluded = set(self.get_exclude(request, obj) or ())
        main = [f for f in ("organization", "name", "vendor", "base_url", "timezone", "is_active") if f not in excluded]
        sets = [
            (None, {"fields": main}),
            ("Credentials (write-only, stored encrypted)", {"fields": ["credentials_summary", *EmrConnectionForm.CREDENTIAL_FIELDS]}),
        ]
        if obj is not None:
            sets.append(("State", {"fields": ["id", "access_token_reference_id", "public_jwks", "login_required_at", "last_error", "last_synced_at"]}))
        return sets

    @admin.display(description="Stored credentials")
    def credentials_summary(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        try:
            creds = emr_connection_credentials(connection=obj)
        except EmrNotConfigured:  # undecryptable with the configured keys
            return "Cannot be decrypted with the configured FIELD_ENCRYPTION_KEYS."
        if not creds:
            return "None stored."
        parts = []
        for key in EmrConnectionForm.CREDENTIAL_FIELDS:
            if key in creds:
                shown = "set" if key in SECRET_FIELDS or key == "client_id" else creds[key]
                parts.append(f"{key}: {shown}")
        return "; ".join(parts)

    @admin.display(description="Public JWKS (register with the EMR)")
    def public_jwks(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        try:
            creds = emr_connection_credentials(connection=obj)
        except EmrNotConfigured:
            return "—"
        if not (creds.get("private_key_pem") and creds.get("kid")):
            return "No key pair yet."
        import json

        jwks = emr_connection_keypair_ensure(connection=obj)
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", json.dumps(jwks, indent=2))

    def save_model(self, request, obj, form, change):
        changes = form.credential_changes()
        if change:
            super().save_model(request, obj, form, change)
            if changes:
                emr_connection_credentials_update(connection=obj, changes=changes)
            return
        issued = emr_connection_create(
            organization=obj.organization,
            vendor=obj.vendor,
            name=obj.name,
            base_url=obj.base_url or None,
            timezone_name=obj.timezone,
            credentials=changes,
        )
        obj.pk = issued.connection.pk
        obj.access_token_reference_id = issued.connection.access_token_reference_id
        messages.warning(
            request,
            format_html(
                "Copy this access_token now; it is not shown again: <code>{}</code>",
                issued.access_token,
            ),
        )

    @admin.action(description="Sync providers, locations and schedules from the EMR")
    def sync_providers(self, request, queryset):
        jobs = [providers_sync_start(connection=c) for c in queryset.filter(is_active=True)]
        self.message_user(request, f"Queued {len(jobs)} sync job(s): {', '.join(j.pk for j in jobs)}.")

    @admin.action(description="Issue a new access_token (the old one stops working)")
    def rotate_access_token(self, request, queryset):
        for connection in queryset:
            token = emr_connection_access_token_rotate(connection=connection)
            messages.warning(
                request, format_html("New access_token for {}: <code>{}</code> (shown once)", connection.name, token)
            )

    @admin.action(description="Generate a key pair for SMART Backend Services (if none)")
    def generate_key_pair(self, request, queryset):
        for connection in queryset:
            try:
                emr_connection_keypair_ensure(connection=connection)
            except (DecryptionError, EmrNotConfigured):
                self.message_user(request, f"{connection.name}: stored credentials cannot be decrypted.", messages.ERROR)
                continue
        self.message_user(request, "Key pairs are ready; the public JWKS is shown on each connection's page.")

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not user_can_write(request):
            for name in ("sync_providers", "rotate_access_token", "generate_key_pair"):
                actions.pop(name, None)
        return actions


@admin.register(Job)
class JobAdmin(TenantScopedAdmin):
    list_display = ["id", "kind", "status", "emr_connection", "created_at", "started_at", "finished_at", "duration", "counts_summary", "error_summary", "attempts"]
    list_filter = ["kind", "status", "emr_connection", "organization"]
    search_fields = ["id", "error", "task_id"]
    date_hierarchy = "created_at"
    fields = ["id", "organization", "emr_connection", "calendly_connection", "kind", "status", "params", "created_at", "started_at", "finished_at", "duration", "attempts", "counts", "error", "task_id"]
    readonly_fields = fields
    actions = ["retry"]
    list_select_related = ["emr_connection"]

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_retry_permission(self, request):
        return self._is_member(request) and user_can_write(request)

    @admin.display(description="Duration")
    def duration(self, obj):
        seconds = obj.duration_seconds
        return f"{seconds:.1f} s" if seconds is not None else "—"

    @admin.display(description="Counts")
    def counts_summary(self, obj):
        if not obj.counts:
            return "—"
        keys = [k for k in ("fetched", "created", "updated", "cancelled_missing", "providers", "shifts", "users_linked",
                            "event_types_active", "event_types_deactivated") if k in obj.counts]
        return ", ".join(f"{k} {obj.counts[k]}" for k in keys) or "—"

    @admin.display(description="Error")
    def error_summary(self, obj):
        return (obj.error[:120] + "…") if len(obj.error) > 120 else (obj.error or "—")

    @admin.action(description="Retry the selected failed jobs", permissions=["retry"])
    def retry(self, request, queryset):
        retried = [job.pk for job in queryset if job_retry(job=job)]
        skipped = queryset.count() - len(retried)
        if retried:
            self.message_user(request, f"Queued again: {', '.join(retried)}.")
        if skipped:
            self.message_user(request, f"{skipped} job(s) were not failed (or cannot be run here) and were left alone.", messages.WARNING)


@admin.register(VisitType)
class VisitTypeAdmin(TenantScopedAdmin):
    list_display = ["code", "description", "emr_connection", "service", "organization"]
    list_filter = ["emr_connection", "organization"]
    search_fields = ["code", "description"]
    autocomplete_fields = ["service"]
    readonly_fields = ["emr_connection", "code"]

    def has_add_permission(self, request, *args):
        return False


@admin.register(VisitStatus)
class VisitStatusAdmin(TenantScopedAdmin):
    """The appointment statuses an EMR connection's appointments carry (recorded by the live
    fetches); staff edit their descriptions."""

    list_display = ["code", "description", "emr_connection", "organization"]
    list_filter = ["emr_connection", "organization"]
    search_fields = ["code", "description"]
    readonly_fields = ["emr_connection", "code"]

    def has_add_permission(self, request, *args):
        return False


@admin.register(LocalHours)
class LocalHoursAdmin(TenantScopedAdmin):
    """Providers whose hours were set through the API; delete a row to let the EMR sync manage
    that provider's hours again."""

    list_display = ["resource", "created_at", "organization"]
    list_filter = ["organization"]
    search_fields = ["resource__name", "resource__ehr_id"]
    readonly_fields = ["resource"]

    def has_add_permission(self, request, *args):
        return False


@admin.register(SandboxClient)
class SandboxClientAdmin(admin.ModelAdmin):
    """The sandbox EMR's registered clients (the EMR's side): superusers only."""

    list_display = ["client_id", "emr_connection", "created_at"]
    readonly_fields = ["client_id", "jwks", "emr_connection", "created_at"]

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


from emr import admin_calendly  # noqa: E402, F401  (the Calendly pages register themselves)
