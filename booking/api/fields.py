"""Field types of the ``/v3/`` family: strict about what they accept, exact in what they render."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from datetime import timezone as dt_timezone
from zoneinfo import ZoneInfo

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from booking.availability.wallclock import instant, wall_to_epoch
from booking.validators import MIDNIGHT, NPI, parse_wall_time, validate_npi
from tenants.api.query import parse_date, parse_instant
from tenants.models import available_timezones


def window_bound(value: date | datetime, zone: str, *, is_end: bool) -> datetime:
    """A query's date-or-instant as an instant. v3-api.md rule 1: "A date-only startDate is
    00:00:00 and a date-only endDate 23:59:59 of that date in timezone (default UTC)."""
    if isinstance(value, datetime):
        return value
    wall = time(23, 59, 59) if is_end else time(0, 0)
    return instant(wall_to_epoch(zone, value, wall, is_end))


def render_instant(value: datetime, zone: ZoneInfo | dt_timezone = UTC) -> str:
    """``YYYY-MM-DDTHH:MM:SS±HH:MM``: never ``Z``, never fractions."""
    return value.astimezone(zone).replace(microsecond=0).isoformat()


@extend_schema_field(OpenApiTypes.DATETIME)
class InstantField(serializers.Field):
    """An instant: ISO 8601 date-time with an offset (``Z`` or ``±HH:MM``); rendered in UTC."""

    default_error_messages = {
        "invalid": "Must be an ISO 8601 date-time with offset between 1970 and 2200, e.g. 2025-03-21T09:00:00-04:00.",
    }

    def to_internal_value(self, data):
        parsed = parse_instant(data)
        if parsed is None:
            self.fail("invalid")
        return parsed

    def to_representation(self, value):
        return render_instant(value)


@extend_schema_field(OpenApiTypes.DATE)
class StrictDateField(serializers.Field):
    """``YYYY-MM-DD`` and nothing else."""

    default_error_messages = {"invalid": "Must be a date in YYYY-MM-DD format between 1970 and 2200."}

    def to_internal_value(self, data):
        parsed = parse_date(data)
        if parsed is None:
            self.fail("invalid")
        return parsed

    def to_representation(self, value):
        return value.isoformat()


@extend_schema_field({"type": "string", "pattern": r"^[0-9]{2}:[0-9]{2}:[0-9]{2}$", "example": "09:00:00"})
class WallTimeField(serializers.Field):
    """A wall-clock ``HH:MM:SS``. With ``end=True``, ``24:00:00`` (or ``00:00:00``) is midnight at the
    end of the day, stored as 00:00 and rendered ``24:00:00``."""

    default_error_messages = {"invalid": "Must be a time in HH:MM:SS format (00:00:00 to {maximum})."}

    def __init__(self, *, end: bool = False, **kwargs):
        self.end = end
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        parsed = parse_wall_time(data, end=self.end)
        if parsed is None:
            self.fail("invalid", maximum="24:00:00" if self.end else "23:59:59")
        return parsed

    def to_representation(self, value):
        if self.end and value == MIDNIGHT:
            return "24:00:00"
        return value.strftime("%H:%M:%S")


class TimezoneField(serializers.CharField):  # made strict below
    default_error_messages = {"unknown": "'{value}' is not a known IANA time zone."}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 64)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value not in available_timezones():
            self.fail("unknown", value=value[:64])
        return value


@extend_schema_field(OpenApiTypes.UUID)
class TenantRefField(serializers.RelatedField):
    """A reference to another object of the caller's organization, by UUID.

    An unknown id, or another tenant's, is the same 400: nothing tells them apart.
    """

    default_error_messages = {
        "does_not_exist": "No {model} with id '{value}'.",
        "invalid": "Must be a UUID string.",
    }

    def __init__(self, model, **kwargs):
        self.model = model
        kwargs.setdefault("queryset", model.objects.none())
        super().__init__(**kwargs)

    def get_queryset(self):
        return self.model.objects.filter(organization=self.context["organization"])

    def run_validation(self, data=serializers.empty):
        if data == "":  # DRF's related fields read "" as null; an empty id is a wrong id
            self.fail("invalid")
        return super().run_validation(data)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            pk = uuid.UUID(data)
        except ValueError:
            self.fail("invalid")
        obj = self.get_queryset().filter(pk=pk).first()
        if obj is None:
            self.fail("does_not_exist", model=self.model._meta.verbose_name, value=str(pk))
        return obj

    def to_representation(self, value):
        return str(value.pk)

    def use_pk_only_optimization(self):
        return True



class _StrictTypeMixin:
    """JSON bodies must carry the right JSON type: no ``12`` for a string, no ``"30"`` or ``true``
    for a number, no ``"yes"`` for a boolean."""

    json_types: tuple[type, ...] = ()
    type_name = ""

    def to_internal_value(self, data):
        if not isinstance(data, self.json_types) or (bool not in self.json_types and isinstance(data, bool)):
            raise serializers.ValidationError(f"Must be {self.type_name}.", code="invalid_type")
        return super().to_internal_value(data)


class StrictCharField(_StrictTypeMixin, serializers.CharField):
    json_types, type_name = (str,), "a string"


class StrictEmailField(_StrictTypeMixin, serializers.EmailField):
    json_types, type_name = (str,), "a string"


class StrictRegexField(_StrictTypeMixin, serializers.RegexField):
    json_types, type_name = (str,), "a string"


class StrictChoiceField(_StrictTypeMixin, serializers.ChoiceField):
    json_types, type_name = (str,), "a string"


class StrictIntegerField(_StrictTypeMixin, serializers.IntegerField):
    json_types, type_name = (int,), "an integer"


class StrictBooleanField(_StrictTypeMixin, serializers.BooleanField):
    json_types, type_name = (bool,), "true or false"


class StrictTimezoneField(_StrictTypeMixin, TimezoneField):
    json_types, type_name = (str,), "a string"


@extend_schema_field({"type": "string", "pattern": f"^{NPI.pattern}$", "example": "1234567893"})
class NpiField(StrictCharField):
    """A National Provider Identifier (10 digits), or empty."""

    def __init__(self, **kwargs):
        kwargs.setdefault("validators", [validate_npi])
        super().__init__(**kwargs)
