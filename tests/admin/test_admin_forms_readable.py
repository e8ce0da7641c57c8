"""Readable forms and lists (admin.md, "Lists and forms"): weekdays by name, opening hours and
shifts as rows, licensed states as check boxes of codes, objects named by what they are."""

from __future__ import annotations

from datetime import time

import pytest
from django.urls import reverse

from booking.models import Location, RecurringBlock, Resource
from tests import factories as f
from tests.admin.forms import form_values


@pytest.fixture
def staff(client, admin_world):
    client.force_login(admin_world.staff)
    return client


def _post_form(staff, url, **changes):
    data = form_values(staff.get(url).content.decode())
    for name in list(data):
        if any(name.startswith(f"{field}__") for field in changes.pop("_drop", ())):
            data.pop(name)
    return data


def test_opening_hours_are_edited_as_rows_of_day_start_and_end(staff, admin_world):
    location = admin_world.a_location
    Location.objects.filter(pk=location.pk).update(
        weekly_availability=[{"dayOfWeek": 1, "startTime": "08:00:00", "endTime": "12:00:00"}])
    url = reverse("admin:booking_location_change", args=[location.pk])
    page = staff.get(url).content.decode()
    assert '<option value="1" selected>Monday</option>' in page and 'value="08:00"' in page
    assert 'name="weekly_availability"' not in page  # no raw JSON box
    data = form_values(page)
    data.pop("weekly_availability__day"), data.pop("weekly_availability__start"), data.pop("weekly_availability__end")
    rows = {"weekly_availability__day": ["1", "1", "5", ""], "weekly_availability__start": ["08:00", "13:00", "22:00", ""],
            "weekly_availability__end": ["12:00", "17:00", "00:00", ""]}
    response = staff.post(url, {**data, **rows, "_save": "Save"})
    assert response.status_code == 302, response.content.decode()[:3000]
    location.refresh_from_db()
    assert location.weekly_availability == [
        {"dayOfWeek": 1, "startTime": "08:00:00", "endTime": "12:00:00"},
        {"dayOfWeek": 1, "startTime": "13:00:00", "endTime": "17:00:00"},
        {"dayOfWeek": 5, "startTime": "22:00:00", "endTime": "24:00:00"},
    ]
    listing = staff.get(reverse("admin:booking_location_changelist")).content.decode()
    assert "Mon 08:00–12:00, 13:00–17:00 · Fri 22:00–24:00" in listing


def test_a_bad_row_is_a_form_error_and_nothing_changes(staff, admin_world):
    location = admin_world.a_location
    url = reverse("admin:booking_location_change", args=[location.pk])
    data = form_values(staff.get(url).content.decode())
    rows = {"weekly_availability__day": ["2"], "weekly_availability__start": ["17:00"], "weekly_availability__end": ["09:00"]}
    response = staff.post(url, {**data, **rows, "_save": "Save"})
    assert "weekly_availability" in response.context["adminform"].form.errors
    location.refresh_from_db()
    assert location.weekly_availability == []


def test_licensed_states_are_check_boxes_of_codes(staff, admin_world):
    resource = admin_world.a_resource
    Resource.objects.filter(pk=resource.pk).update(licensed_states=["MA"])
    url = reverse("admin:booking_resource_change", args=[resource.pk])
    page = staff.get(url).content.decode()
    assert 'name="licensed_states__item" value="MA" checked' in page and 'value="WY"' in page
    data = form_values(page)
    data.pop("licensed_states__item")
    response = staff.post(url, {**data, "licensed_states__item": ["NY", "CT"], "_save": "Save"})
    assert response.status_code == 302, response.content.decode()[:3000]
    resource.refresh_from_db()
    assert resource.licensed_states == ["CT", "NY"]
    # Unchecking every box empties the list.
    data = form_values(staff.get(url).content.decode())
    data.pop("licensed_states__item", None)
    assert staff.post(url, {**data, "_save": "Save"}).status_code == 302
    resource.refresh_from_db()
    assert resource.licensed_states == []


def test_recurring_block_weekdays_are_named_check_boxes(staff, admin_world):
    recurring = f.RecurringBlockFactory(resource=admin_world.a_resource, frequency=RecurringBlock.Frequency.WEEKLY,
                                        weekdays=[3], start_date="2031-01-06", start_time=time(12), end_time=time(13),
                                        reason="Staff meeting")
    url = reverse("admin:booking_recurringblock_change", args=[recurring.pk])
    page = staff.get(url).content.decode()
    assert 'value="3" checked> Wednesday' in page
    data = form_values(page)
    data.pop("weekdays__item")
    assert staff.post(url, {**data, "weekdays__item": ["1", "3"], "_save": "Save"}).status_code == 302
    recurring.refresh_from_db()
    assert recurring.weekdays == [1, 3]
    listing = staff.get(reverse("admin:booking_recurringblock_changelist")).content.decode()
    assert "weekly on Monday, Wednesday" in listing


def test_shift_weekdays_are_names(staff, admin_world):
    shift = f.ShiftFactory(resource=admin_world.a_resource, day_of_week=2, start_time=time(9), end_time=time(0))
    assert str(shift) == "Dr Alpha Adams: Tuesday 09:00–24:00"
    listing = staff.get(reverse("admin:booking_shift_changelist")).content.decode()
    assert ">Tuesday<" in listing
    page = staff.get(reverse("admin:booking_resource_change", args=[admin_world.a_resource.pk])).content.decode()
    assert '<option value="2" selected>Tuesday</option>' in page


def test_messages_name_the_object(staff, admin_world):
    url = reverse("admin:booking_block_add")
    response = staff.post(url, {"resource": admin_world.a_resource.pk, "start_0": "2031-01-07", "start_1": "13:00",
                                "end_0": "2031-01-07", "end_1": "17:00", "reason": "Training"}, follow=True)
    text = " ".join(str(m) for m in response.context["messages"])
    assert "Block: Dr Alpha Adams, Tue 7 Jan 2031, 13:00–17:00 UTC (Training)" in text
    assert "object (" not in text
