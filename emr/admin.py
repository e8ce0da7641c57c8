from django.contrib import admin

from emr.models import EmrConnection
from tenants.admin_scoping import TenantScopedAdmin


@admin.register(EmrConnection)
class EmrConnectionAdmin(TenantScopedAdmin):
    list_display = ["name", "vendor", "base_url", "timezone", "access_token_reference_id", "is_active", "organization"]
    list_filter = ["vendor", "is_active", "organization"]
    search_fields = ["name", "base_url", "access_token_reference_id"]
    readonly_fields = ["id", "access_token_reference_id"]
