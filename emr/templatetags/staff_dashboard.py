"""``{% staff_dashboards as dashboards %}`` on the admin index: the dashboard of each organization
the staff member belongs to; a superuser picks one with ``?organization=<id>``."""

from __future__ import annotations

from django import template
from django.core.exceptions import ValidationError

from emr.dashboard import staff_dashboard
from tenants.admin_scoping import user_organization_ids
from tenants.models import Organization

register = template.Library()


@register.simple_tag(takes_context=True)
def staff_dashboards(context) -> dict:
    request = context["request"]
    chosen = request.GET.get("organization")
    if request.user.is_superuser:
        organizations = []
        if chosen:
            try:
                organizations = list(Organization.objects.filter(pk=chosen))
            except ValidationError:
                organizations = []
        return {
            "dashboards": [staff_dashboard(organization=org) for org in organizations],
            "choices": list(Organization.objects.filter(is_active=True).order_by("name")),
            "chosen": chosen or "",
        }
    organizations = Organization.objects.filter(pk__in=user_organization_ids(request)).order_by("name")
    return {"dashboards": [staff_dashboard(organization=org) for org in organizations], "choices": [], "chosen": ""}
