"""Admin forms whose instants are typed as wall-clock time in the object's zone (admin.md, "Time").

A block typed 13:00–17:00 for a Boston provider is 13:00–17:00 Boston time: the form reads the
zone from the block's resource, location or service (``booking.selectors.scoped_zone_get``), and
refuses a time the clocks skip or repeat there with a message saying so.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from booking import models as m
from booking.selectors import scoped_zone_get
from tenants.admin_time import LocalDateTimeField
from tenants.localtime import local, wall_clock_to_instant

ZONE_HELP = "Wall-clock time where it happens: {where}."


class LocalTimesForm(forms.ModelForm):
    """``start`` and ``end`` as wall-clock values in the object's zone."""

    LOCAL_FIELDS = ("start", "end")
    WHERE = "the zone of the location, else of the resource, else of the organization"

    start = LocalDateTimeField(label="Start")
    end = LocalDateTimeField(label="End")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        zone = self._instance_zone()
        for name in self.LOCAL_FIELDS:
            if name not in self.fields:
                continue
            if zone is not None:
                moment = getattr(self.instance, name)
                if moment is not None:
                    self.initial[name] = local(moment, zone).replace(tzinfo=None)
                abbreviation = local(getattr(self.instance, name), zone).tzname() if getattr(self.instance, name) else ""
                self.fields[name].help_text = f"In {zone} ({abbreviation})." if abbreviation else f"In {zone}."
            else:
                self.fields[name].help_text = ZONE_HELP.format(where=self.WHERE)

    def _instance_zone(self) -> str | None:
        if self.instance.pk is None or self.instance._state.adding:
            return None
        instance = self.instance
        return self.zone_for(
            instance.resource if instance.resource_id else None,
            instance.location if instance.location_id else None,
            instance.organization_id,
        )

    @staticmethod
    def zone_for(resource, location, organization_id) -> str:
        return scoped_zone_get(resource=resource or None, location=location, organization_id=organization_id)

    def _organization_id(self, cleaned):
        organization = cleaned.get("organization")
        return organization.pk if organization is not None else self.instance.organization_id

    def clean(self):
        cleaned = super().clean()
        if not any(cleaned.get(name) for name in self.LOCAL_FIELDS):
            return cleaned
        resource = cleaned.get("resource")
        if resource is None and "resource" not in self.fields and self.instance.resource_id:
            resource = self.instance.resource  # an inline on the resource's page
        zone = self.zone_for(resource, cleaned.get("location"), self._organization_id(cleaned))
        for name in self.LOCAL_FIELDS:
            naive = cleaned.get(name)
            if naive is None or naive.tzinfo is not None:
                continue
            try:
                cleaned[name] = wall_clock_to_instant(naive, zone)
            except ValidationError as exc:
                self.add_error(name, exc)
                cleaned.pop(name, None)
        self.zone = zone
        return cleaned


class BlockForm(LocalTimesForm):
    WHERE = "the resource's zone for a provider's block, the location's for a site's, the organization's for a service's"

    class Meta:
        model = m.Block
        fields = "__all__"


class AllocationForm(LocalTimesForm):
    WHERE = "the location's zone, else the resource's"

    class Meta:
        model = m.Allocation
        fields = "__all__"
