"""The calendar pages, added to the location and resource admins' URLs (``get_urls``)."""

from __future__ import annotations

import functools

from django.urls import path

from booking.admin_calendar import explain, views


def _view(model_admin, func):
    return model_admin.admin_site.admin_view(functools.partial(func, model_admin))


def location_calendar_urls(model_admin) -> list:
    return [
        path("<path:object_id>/calendar/book/", _view(model_admin, views.location_book_view), name="booking_location_calendar_book"),
        path(
            "<path:object_id>/calendar/appointments/<uuid:appointment_id>/",
            _view(model_admin, views.location_appointment_view),
            name="booking_location_calendar_appointment",
        ),
        path("<path:object_id>/calendar/", _view(model_admin, views.location_calendar_view), name="booking_location_calendar"),
    ]


def resource_calendar_urls(model_admin) -> list:
    return [
        path("<path:object_id>/calendar/", _view(model_admin, views.resource_calendar_view), name="booking_resource_calendar"),
        path("<path:object_id>/explain/day/", _view(model_admin, explain.explain_day_view), name="booking_resource_explain_day"),
    ]
