"""Wall-clock time in the admin (admin.md, "Time").

Instants are stored in UTC; staff read and type them in the zone of the place they happen. This
module holds the pieces every admin page uses:

- ``LocalDateTimeField`` takes a wall-clock date and time (no zone) from a form; the form turns
  it into an instant with ``tenants.localtime.wall_clock_to_instant`` once it knows the zone, which
  refuses times the zone skips (spring forward) or repeats (fall back), saying so;
- ``AdminTimezoneMiddleware`` activates the staff member's organization's zone on admin pages, so
  everything rendered without a more specific zone (jobs, deliveries, created/updated stamps, the
  date drill-down) is in the organization's wall-clock time.
"""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.contrib.admin import widgets as admin_widgets
from django.core.exceptions import ValidationError
from django.utils import timezone

from tenants.localtime import zone_of


class LocalSplitDateTimeWidget(admin_widgets.AdminSplitDateTime):
    """The admin's date and time inputs, showing a wall-clock value as it is (never converted to
    the active zone: the form knows the object's zone, see ``LocalDateTimeField``)."""

    def decompress(self, value):
        if isinstance(value, datetime):
            return [value.date(), value.time().replace(microsecond=0)]
        return [None, None]


class LocalDateTimeField(forms.SplitDateTimeField):
    """A wall-clock date and time (naive). The form turns it into an instant in the object's zone
    with ``wall_clock_to_instant`` once it knows the zone (a block's resource or location)."""

    widget = LocalSplitDateTimeWidget

    def compress(self, data_list):
        if not data_list:
            return None
        day, at = data_list
        if day in self.empty_values or at in self.empty_values:
            raise ValidationError(self.error_messages["invalid_date" if day in self.empty_values else "invalid_time"])
        return datetime.combine(day, at)


class AdminTimezoneMiddleware:
    """On admin pages, the staff member's organization's zone is the active zone (the zone of the
    first organization, for staff of several; UTC for superusers)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone_name = self._zone(request)
        if zone_name is None:
            return self.get_response(request)
        timezone.activate(zone_of(zone_name))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()

    @staticmethod
    def _zone(request) -> str | None:
        if not request.path.startswith("/admin/"):
            return None
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_staff or user.is_superuser:
            return None
        from tenants.models import Membership

        membership = (
            Membership.objects.filter(user=user, organization__is_active=True)
            .select_related("organization")
            .order_by("organization__name")
            .first()
        )
        return membership.organization.timezone if membership else None
