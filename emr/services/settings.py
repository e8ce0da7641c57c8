"""``PATCH /v1/settings``: visit types and statuses (code and description) and the organization's
default hours (what ``fallback_to_default_hours`` uses)."""

from __future__ import annotations

from django.db import transaction

from booking.services.invalidation import availability_invalidate
from emr.models import EmrConnection, VisitStatus, VisitType
from tenants.models import Organization


def visit_type_descriptions_fill(*, organization_id, rules: list[dict], connection_id=None) -> None:
    """A visit-type rule written without a description takes the organization's description for
    that code (the connection's visit type first, else any of the organization's)."""
    codes = {rule["visit_type_id"] for rule in rules if not rule.get("visit_type_desc")}
    if not codes:
        return
    found: dict[str, str] = {}
    rows = VisitType.objects.filter(organization_id=organization_id, code__in=list(codes)).exclude(description="")
    for code, description, row_connection in rows.values_list("code", "description", "emr_connection_id").order_by("created_at"):
        if code not in found or (connection_id is not None and row_connection == connection_id):
            found[code] = description
    for rule in rules:
        if not rule.get("visit_type_desc"):
            rule["visit_type_desc"] = found.get(rule["visit_type_id"], "")


def settings_update(*, connection: EmrConnection, data: dict) -> None:
    """``visit_types``/``visit_statuses``: ``[{code, description}]`` upserted by code (others are
    kept); ``default_hours``: the organization's weekly JSON (replaces them)."""
    with transaction.atomic():
        for model, key in ((VisitType, "visit_types"), (VisitStatus, "visit_statuses")):
            for item in data.get(key, ()):
                model.objects.update_or_create(
                    emr_connection=connection,
                    code=item["code"],
                    defaults={"organization_id": connection.organization_id, "description": item["description"]},
                )
        if "default_hours" in data:
            Organization.objects.filter(pk=connection.organization_id).update(default_hours=data["default_hours"])
            availability_invalidate(organization_id=connection.organization_id)
