"""``GET`` and ``PATCH /v1/settings``: the connection's visit types and statuses (code and
description), its zone and ``access_token_reference_id``, and the organization's default hours."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from booking.api.fields import StrictCharField
from booking.validators import MIDNIGHT
from emr.api.base import V1APIView
from emr.api.schema import v1_errors
from emr.api.serializers import DAYS, ShiftTimeField, V1CodeDescriptionSerializer, _RejectUnknown
from emr.models import EmrConnection, VisitStatus
from emr.representation import FHIR_APPOINTMENT_STATUSES
from emr.selectors import appointment_statuses_seen, visit_types_of
from emr.services.settings import settings_update


def visit_statuses_of(*, connection: EmrConnection) -> list[dict]:
    """FHIR's statuses first (in FHIR's order), then every other status the connection's
    appointments carry; a recorded ``VisitStatus`` gives the description."""
    recorded = dict(VisitStatus.objects.filter(emr_connection=connection).values_list("code", "description"))
    out = [{"code": code, "description": recorded.get(code) or text} for code, text in FHIR_APPOINTMENT_STATUSES]
    known = {code for code, _ in FHIR_APPOINTMENT_STATUSES}
    others = sorted((set(recorded) | set(appointment_statuses_seen(connection=connection))) - known)
    return out + [{"code": code, "description": recorded.get(code) or code} for code in others]


def default_hours_representation(items: list[dict]) -> list[dict]:
    """The organization's weekly JSON in ``/v1/`` hours shape (``[{day, shifts: [{start, end}]}]``)."""
    by_day: dict[str, list[dict]] = {}
    start_f, end_f = ShiftTimeField(), ShiftTimeField(end=True)
    from booking.validators import parse_wall_time

    for item in sorted(items, key=lambda i: ((i["dayOfWeek"] + 6) % 7, i["startTime"])):
        day = DAYS[(item["dayOfWeek"] - 1) % 7]
        by_day.setdefault(day, []).append(
            {
                "start": start_f.to_representation(parse_wall_time(item["startTime"])),
                "end": end_f.to_representation(parse_wall_time(item["endTime"], end=True)),
            }
        )
    return [{"day": day, "shifts": by_day[day]} for day in DAYS if day in by_day]


def settings_representation(connection: EmrConnection) -> dict:
    return {
        "success": True,
        "visit_types": [{"code": vt.code, "description": vt.description or vt.code} for vt in visit_types_of(connection=connection)],
        "visit_statuses": visit_statuses_of(connection=connection),
        "timezone": connection.timezone,
        "access_token_reference_id": connection.access_token_reference_id,
        "default_hours": default_hours_representation(connection.organization.default_hours or []),
    }


class V1CodeDescriptionInSerializer(_RejectUnknown, serializers.Serializer):
    code = StrictCharField(min_length=1, max_length=128)
    description = StrictCharField(max_length=255, allow_blank=True)


class V1HoursWindowSerializer(_RejectUnknown, serializers.Serializer):
    start = ShiftTimeField()
    end = ShiftTimeField(end=True)

    def validate(self, attrs):
        if attrs["end"] != MIDNIGHT and attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": "Must be after start."})
        return attrs


class V1DefaultHoursDaySerializer(_RejectUnknown, serializers.Serializer):
    day = serializers.ChoiceField(choices=DAYS)
    shifts = V1HoursWindowSerializer(many=True, max_length=24)


class V1SettingsPatchSerializer(_RejectUnknown, serializers.Serializer):
    visit_types = V1CodeDescriptionInSerializer(many=True, required=False, max_length=500, help_text="Upserted by code.")
    visit_statuses = V1CodeDescriptionInSerializer(many=True, required=False, max_length=500, help_text="Upserted by code.")
    default_hours = V1DefaultHoursDaySerializer(
        many=True, required=False, max_length=7,
        help_text="The organization's default hours (fallback_to_default_hours); replaces them.",
    )

    def weekly(self) -> list[dict]:
        """``default_hours`` as the organization stores them (0 = Sunday; 24:00:00 = midnight)."""
        out = []
        for day in self.validated_data["default_hours"]:
            for window in day["shifts"]:
                end = "24:00:00" if window["end"] == MIDNIGHT else window["end"].strftime("%H:%M:%S")
                out.append({"dayOfWeek": (DAYS.index(day["day"]) + 1) % 7, "startTime": window["start"].strftime("%H:%M:%S"), "endTime": end})
        return out


class V1HoursWindowOutSerializer(serializers.Serializer):
    start = serializers.CharField()
    end = serializers.CharField()


class V1DefaultHoursDayOutSerializer(serializers.Serializer):
    day = serializers.ChoiceField(choices=DAYS)
    shifts = V1HoursWindowOutSerializer(many=True)


class V1SettingsSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    visit_types = V1CodeDescriptionSerializer(many=True)
    visit_statuses = V1CodeDescriptionSerializer(many=True)
    timezone = serializers.CharField()
    access_token_reference_id = serializers.CharField()
    default_hours = V1DefaultHoursDayOutSerializer(many=True)


class SettingsView(V1APIView):
    @extend_schema(
        operation_id="v1_settings",
        tags=["EMR: settings"],
        summary="Visit types, visit statuses, time zone, access_token_reference_id and default hours",
        responses={200: V1SettingsSerializer, **v1_errors(401, 429)},
    )
    def get(self, request):
        return Response(settings_representation(self.emr_connection))

    @extend_schema(
        operation_id="v1_settings_update",
        tags=["EMR: settings"],
        summary="Describe visit types and statuses, change the organization's default hours",
        request=V1SettingsPatchSerializer,
        responses={200: V1SettingsSerializer, **v1_errors(400, 401, 413, 415, 429)},
    )
    def patch(self, request):
        connection = self.emr_connection
        incoming = V1SettingsPatchSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = {k: v for k, v in incoming.validated_data.items() if k != "default_hours"}
        if "default_hours" in incoming.validated_data:
            data["default_hours"] = incoming.weekly()
        settings_update(connection=connection, data=data)
        connection.organization.refresh_from_db(fields=["default_hours"])
        return Response(settings_representation(connection))
