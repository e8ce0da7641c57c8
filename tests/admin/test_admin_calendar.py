"""The location and resource calendars, booking from them, and the explainer's day view
(``admin.md`` "Calendars", "Explainer"), through the test client."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from booking import models as b
from tenants.models import Membership
from tests.booking.conftest import MONDAY_DATE, clinic_make

NY = ZoneInfo("America/New_York")
PASSWORD = "x" * 12


def staff(clinic, username: str, role: str):
    user = get_user_model().objects.create_user(username=username, password=PASSWORD, is_staff=True)
    Membership.objects.create(user=user, organization=clinic.organization, role=role)
    return user


def nth_sunday(year: int, month: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))


YEAR = MONDAY_DATE.year
SPRING_SUNDAY = nth_sunday(YEAR, 3, 2)  # New York springs forward at 02:00
FALL_SUNDAY = nth_sunday(YEAR, 11, 1)  # and falls back at 02:00


@pytest.fixture
def world(db):
    clinic, other = clinic_make("Alpha"), clinic_make("Beta")
    # Nights across the DST changes: a location without opening hours and a resource working
    # Sunday 00:00-06:00 and weekdays 09:00-17:00.
    night = b.Location.objects.create(organization=clinic.organization, name="Night clinic", timezone="America/New_York")
    owl = b.Resource.objects.create(organization=clinic.organization, name="Dr. Owl")
    b.ResourceService.objects.create(organization=clinic.organization, resource=owl, service=clinic.service, location=night)
    b.Shift.objects.create(organization=clinic.organization, resource=owl, day_of_week=0, start_time=time(0), end_time=time(6))
    for day in range(1, 6):
        b.Shift.objects.create(organization=clinic.organization, resource=owl, day_of_week=day, start_time=time(9), end_time=time(17))
    stepped = b.Service.objects.create(organization=clinic.organization, name="Quick check", duration=20, padding=5, booking_interval=10)
    for resource in clinic.resources:
        b.ResourceService.objects.create(organization=clinic.organization, resource=resource, service=stepped, location=clinic.location)
    return {
        "clinic": clinic, "other": other, "night": night, "owl": owl, "stepped": stepped,
        "frontdesk": staff(clinic, "desk", Membership.Role.FRONTDESK),
        "viewer": staff(clinic, "look", Membership.Role.VIEWER),
        "outsider": staff(other, "beta_desk", Membership.Role.FRONTDESK),
    }


def book_appointment(clinic, resource, start: datetime, *, name="Avery Johnson", service=None, status="BK", source="api"):
    service = service or clinic.service
    appointment = b.Appointment.objects.create(
        organization=clinic.organization, status=status, source=source, start=start,
        end=start + timedelta(minutes=service.duration), service=service, location=clinic.location,
        customer_name=name,
    )
    b.AppointmentResource.objects.create(appointment=appointment, resource=resource)
    return appointment


def lane_starts(html: str) -> set[tuple[str, str]]:
    """(resource id, start) of every bookable start on the page's time tracks."""
    found = set()
    for chunk in html.split('<div class="cal-row lane" data-resource="')[1:]:
        resource_id = chunk.split('"', 1)[0]
        track = chunk.split('<div class="cal-row lane"', 1)[0]
        track = track.split('<div class="cal-starts"', 1)[0]
        for iso in re.findall(r'class="start" name="start" value="([^"]+)"', track) + re.findall(
            r'<span class="start"[^>]*data-start="([^"]+)"', track
        ):
            found.add((resource_id, iso))
    return found


def v3_starts(clinic, params: dict) -> set[tuple[str, str]]:
    response = clinic.tenant.v3().get("/v3/availability", params)
    assert response.status_code == 200, response.content
    return {(rid, t["start_time"]) for t in response.json()["availableTimes"] for rid in t["ResourceIds"]}


# --------------------------------------------------------------------------------------------
# What the calendar shows
# --------------------------------------------------------------------------------------------


def test_location_calendar_shows_appointments_blocks_and_hours_in_local_time(client, world):
    clinic = world["clinic"]
    adams = clinic.resources[0]
    appointment = book_appointment(clinic, adams, datetime.combine(MONDAY_DATE, time(14, 20), NY))
    block = b.Block.objects.create(
        organization=clinic.organization, resource=adams, reason="Dentist",
        start=datetime.combine(MONDAY_DATE + timedelta(days=1), time(13), NY),
        end=datetime.combine(MONDAY_DATE + timedelta(days=1), time(17), NY),
    )
    client.force_login(world["frontdesk"])
    page = client.get(reverse("admin:booking_location_calendar", args=[clinic.location.pk]), {"week": MONDAY_DATE.isoformat()})
    html = page.content.decode()
    assert page.status_code == 200
    assert "America/New_York" in html and "(EST)" in html
    row = re.search(rf'<tr class="agenda-row" data-appointment="{appointment.pk}">(.*?)</tr>', html).group(1)
    assert "14:20–14:50 EST" in row and "Avery Johnson" in row and "Booked" in row and "Booking API" in row
    assert reverse("admin:booking_appointment_change", args=[appointment.pk]) in row
    assert 'title="Block: Dentist, 13:00–17:00 EST"' in html
    assert reverse("admin:booking_block_change", args=[block.pk]) in html
    assert 'title="Shift 09:00–17:00 EST"' in html and 'title="Open 08:00–18:00 EST"' in html
    # One section per local day, Monday to Sunday; every resource linked here has a lane a day.
    assert re.findall(r'<section class="cal-day[^"]*" data-date="([^"]+)"', html) == [
        (MONDAY_DATE + timedelta(days=i)).isoformat() for i in range(7)
    ]
    assert html.count(f'<div class="cal-row lane" data-resource="{adams.pk}"') == 7


def test_emr_appointments_and_holds_are_told_apart(client, world):
    clinic = world["clinic"]
    adams = clinic.resources[0]
    emr = book_appointment(clinic, adams, datetime.combine(MONDAY_DATE, time(9), NY), name="Ben Lee", source="emr")
    hold = book_appointment(clinic, adams, datetime.combine(MONDAY_DATE, time(11), NY), name="Cleo Hold", status="IN")
    client.force_login(world["frontdesk"])
    html = client.get(reverse("admin:booking_location_calendar", args=[clinic.location.pk]),
                      {"week": MONDAY_DATE.isoformat()}).content.decode()
    assert re.search(rf'class="item appointment status-BK source-emr"[^>]*data-appointment="{emr.pk}"', html)
    assert re.search(rf'class="item appointment status-IN source-api"[^>]*data-appointment="{hold.pk}"', html)
    emr_row = re.search(rf'data-appointment="{emr.pk}">(.*?)</tr>', html).group(1)
    assert "EMR" in emr_row and "Move or cancel" not in emr_row  # changed in the EMR, not here


def test_resource_calendar_uses_the_resources_zone_and_lists_its_locations(client, world):
    clinic = world["clinic"]
    adams = clinic.resources[0]
    adams.timezone = "America/Denver"
    adams.save()
    client.force_login(world["frontdesk"])
    html = client.get(reverse("admin:booking_resource_calendar", args=[adams.pk]),
                      {"week": MONDAY_DATE.isoformat(), "service": clinic.service.pk}).content.decode()
    assert "America/Denver" in html and "(MST)" in html
    # Shifts are read in the resource's zone; the appointment labels keep the location's zone.
    assert 'title="Shift 09:00–17:00 MST"' in html
    assert html.count(f'data-location="{clinic.location.pk}"') == 7


# --------------------------------------------------------------------------------------------
# The same starts as GET /v3/availability
# --------------------------------------------------------------------------------------------


CASES = [
    # (name, location key, service key, Monday of the week, day view)
    ("standard week", "location", "service", MONDAY_DATE, False),
    ("10-minute grid with padding", "location", "stepped", MONDAY_DATE + timedelta(days=7), False),
    ("one day", "location", "stepped", MONDAY_DATE, True),
    ("spring-forward week", "night", "service", SPRING_SUNDAY - timedelta(days=6), False),
    ("fall-back week", "night", "service", FALL_SUNDAY - timedelta(days=6), False),
    ("spring-forward Sunday", "night", "service", SPRING_SUNDAY - timedelta(days=6), "sunday"),
]


@pytest.mark.parametrize(("name", "location_key", "service_key", "monday", "day"), CASES, ids=[c[0] for c in CASES])
def test_calendar_starts_equal_v3_availability(client, world, name, location_key, service_key, monday, day):
    clinic = world["clinic"]
    location = clinic.location if location_key == "location" else world["night"]
    service = clinic.service if service_key == "service" else world["stepped"]
    book_appointment(clinic, clinic.resources[0], datetime.combine(monday + timedelta(days=1), time(10), NY))
    first = monday + timedelta(days=6) if day == "sunday" else monday
    last = first if day else monday + timedelta(days=6)
    query = {"week": monday.isoformat(), "service": service.pk}
    if day:
        query["day"] = first.isoformat()
    client.force_login(world["frontdesk"])
    html = client.get(reverse("admin:booking_location_calendar", args=[location.pk]), query).content.decode()
    params = {
        "LocationId": str(location.pk), "ServiceId": str(service.pk), "startDate": first.isoformat(),
        "endDate": last.isoformat(), "timezone": location.timezone,
    }
    expected = v3_starts(clinic, {**params, "roundRobin": "NONE"})
    assert expected, "the case must have bookable starts"
    assert lane_starts(html) == expected
    # The default answer (one resource per start) lists the same starts.
    assert {iso for _, iso in lane_starts(html)} == {iso for _, iso in v3_starts(clinic, params)}
    if "Sunday" in name or "week" in name and location_key == "night":
        offsets = {iso[-6:] for _, iso in expected}
        assert offsets == {"-05:00", "-04:00"}, "the DST change falls inside the window"


def test_explainer_day_view_agrees_with_calendar_and_v3(client, world):
    clinic = world["clinic"]
    adams = clinic.resources[0]
    service = world["stepped"]
    day = MONDAY_DATE + timedelta(days=2)
    appointment = book_appointment(clinic, adams, datetime.combine(day, time(10), NY), name="Dana Kim", service=service)
    block = b.Block.objects.create(
        organization=clinic.organization, resource=adams, reason="Team huddle",
        start=datetime.combine(day, time(13), NY), end=datetime.combine(day, time(14), NY),
    )
    client.force_login(world["frontdesk"])
    url = reverse("admin:booking_resource_explain_day", args=[adams.pk])
    html = client.get(url, {"service": service.pk, "location": clinic.location.pk, "date": day.isoformat()}).content.decode()
    rows = re.findall(r'<tr class="(\w+)" data-starts="([^"]*)" data-state="\w+">(.*?)</tr>', html, re.S)
    bookable = {iso for state, starts, _ in rows if state == "bookable" for iso in starts.split()}
    params = {
        "LocationId": str(clinic.location.pk), "ServiceId": str(service.pk), "startDate": day.isoformat(),
        "endDate": day.isoformat(), "timezone": "America/New_York", "roundRobin": "NONE",
    }
    listed = {iso for rid, iso in v3_starts(clinic, params) if rid == str(adams.pk)}
    assert bookable == listed and listed
    calendar = client.get(reverse("admin:booking_location_calendar", args=[clinic.location.pk]),
                          {"week": MONDAY_DATE.isoformat(), "day": day.isoformat(), "service": service.pk}).content.decode()
    assert {iso for rid, iso in lane_starts(calendar) if rid == str(adams.pk)} == listed
    # Every candidate start is a row: the grid from midnight covers the whole day.
    assert sum(len(starts.split()) for _, starts, _ in rows) >= 24 * 6

    def why(local: str) -> str:
        iso = datetime.combine(day, time.fromisoformat(local), NY).isoformat()
        return next(body for _, starts, body in rows if iso in starts.split())

    at_ten = why("10:00")
    assert 'data-code="appointment"' in at_ten and "Dana Kim" in at_ten and "10:00–10:20 EST" in at_ten
    assert reverse("admin:booking_appointment_change", args=[appointment.pk]) in at_ten
    assert 'data-code="padding"' in why("10:20")
    at_one = why("13:00")
    assert 'data-code="blocked"' in at_one and "Team huddle, 13:00–14:00 EST" in at_one
    assert reverse("admin:booking_block_change", args=[block.pk]) in at_one
    night = why("03:00")
    assert 'data-code="outside_working_hours"' in night and 'data-code="location_closed"' in night
    assert reverse("admin:booking_location_change", args=[clinic.location.pk]) in night


DAY_CASES = [
    # (name, location key, resource key, service key, local date)
    ("weekday with a booking", "location", "adams", "stepped", MONDAY_DATE + timedelta(days=1)),
    ("spring-forward Sunday", "night", "owl", "service", SPRING_SUNDAY),
    ("fall-back Sunday", "night", "owl", "service", FALL_SUNDAY),
]


@pytest.mark.parametrize(("name", "location_key", "resource_key", "service_key", "day"), DAY_CASES, ids=[c[0] for c in DAY_CASES])
def test_explainer_day_view_equals_calendar_and_v3_on_each_day(client, world, name, location_key, resource_key, service_key, day):
    clinic = world["clinic"]
    location = clinic.location if location_key == "location" else world["night"]
    resource = clinic.resources[0] if resource_key == "adams" else world["owl"]
    service = clinic.service if service_key == "service" else world["stepped"]
    book_appointment(clinic, clinic.resources[0], datetime.combine(MONDAY_DATE + timedelta(days=1), time(10), NY))
    client.force_login(world["frontdesk"])
    html = client.get(reverse("admin:booking_resource_explain_day", args=[resource.pk]), {
        "service": service.pk, "location": location.pk, "date": day.isoformat(),
    }).content.decode()
    rows = re.findall(r'<tr class="(\w+)" data-starts="([^"]*)" data-state="\w+">', html)
    explained = {iso for state, starts in rows if state == "bookable" for iso in starts.split()}
    params = {
        "LocationId": str(location.pk), "ServiceId": str(service.pk), "startDate": day.isoformat(),
        "endDate": day.isoformat(), "timezone": location.timezone, "roundRobin": "NONE",
    }
    listed = {iso for rid, iso in v3_starts(clinic, params) if rid == str(resource.pk)}
    monday = day - timedelta(days=day.weekday())
    calendar = client.get(reverse("admin:booking_location_calendar", args=[location.pk]),
                          {"week": monday.isoformat(), "day": day.isoformat(), "service": service.pk}).content.decode()
    on_calendar = {iso for rid, iso in lane_starts(calendar) if rid == str(resource.pk)}
    assert listed, "the case must have bookable starts"
    assert explained == listed == on_calendar
    # The day view's candidates cover every instant of the local day, 23 or 25 hours long on a DST Sunday.
    step = service.booking_interval or service.duration
    hours = {"spring-forward Sunday": 23, "fall-back Sunday": 25}.get(name, 24)
    assert sum(len(starts.split()) for _, starts in rows) >= hours * 60 // step
    if "Sunday" in name:
        assert {iso[-6:] for iso in listed} == {"-05:00", "-04:00"}, "the DST change falls inside her night"


def test_explainer_day_view_says_when_a_time_is_off_the_grid(client, world):
    clinic = world["clinic"]
    adams = clinic.resources[0]
    client.force_login(world["frontdesk"])
    html = client.get(reverse("admin:booking_resource_explain_day", args=[adams.pk]), {
        "service": clinic.service.pk, "location": clinic.location.pk, "date": MONDAY_DATE.isoformat(), "time": "09:05",
    }).content.decode()
    iso = datetime.combine(MONDAY_DATE, time(9, 5), NY).isoformat()
    row = re.search(rf'<tr class="off_grid" data-starts="{re.escape(iso)}"', html)
    assert row and "bookable, off the grid" in html


def test_explainer_menus_offer_only_the_resources_services(client, world):
    clinic = world["clinic"]
    adams = clinic.resources[0]
    elsewhere = b.Service.objects.create(organization=clinic.organization, name="Not his", duration=15)
    client.force_login(world["frontdesk"])
    for name in ("admin:booking_resource_explain_day", "admin:booking_resource_explain"):
        html = client.get(reverse(name, args=[adams.pk])).content.decode()
        assert f'value="{clinic.service.pk}"' in html and f'value="{elsewhere.pk}"' not in html
        assert f'value="{world["night"].pk}"' not in html  # Dr. Adams is not linked at the night clinic


# --------------------------------------------------------------------------------------------
# Booking from the calendar
# --------------------------------------------------------------------------------------------


def _first_start(html: str, resource) -> str:
    return sorted(iso for rid, iso in lane_starts(html) if rid == str(resource.pk))[0]


def test_frontdesk_books_a_listed_start_and_a_start_taken_meanwhile_is_refused(client, world):
    clinic = world["clinic"]
    adams = clinic.resources[0]
    client.force_login(world["frontdesk"])
    calendar_url = reverse("admin:booking_location_calendar", args=[clinic.location.pk])
    html = client.get(calendar_url, {"week": MONDAY_DATE.isoformat(), "service": clinic.service.pk}).content.decode()
    start = _first_start(html, adams)
    book_url = reverse("admin:booking_location_calendar_book", args=[clinic.location.pk])
    terms = {"service": clinic.service.pk, "resource": adams.pk, "start": start}
    form = client.get(book_url, terms)
    assert form.status_code == 200 and "Mon Jan" in form.content.decode() and "09:00–09:30 EST" in form.content.decode()
    body = {**terms, "customer_name": "Erin Walsh", "customer_email": "erin@example.com", "customer_phone": "555-0100",
            "notes": "first visit", "action": "book", "next": calendar_url}
    done = client.post(book_url, body, follow=True)
    booked = b.Appointment.objects.get(customer_name="Erin Walsh")
    assert (booked.status, booked.source, booked.start.isoformat()) == ("BK", "api", datetime.fromisoformat(start).astimezone(booked.start.tzinfo).isoformat())
    assert list(booked.resource_links.values_list("resource_id", flat=True)) == [adams.pk]
    assert booked.customer_phone == "555-0100" and booked.notes == "first visit"
    assert "Booked: Erin Walsh" in done.content.decode()
    # The same start again (another desk had the page open): refused, nothing more written.
    again = client.post(book_url, {**body, "customer_name": "Late Comer"}, follow=True)
    assert "is no longer free" in again.content.decode()
    assert not b.Appointment.objects.filter(customer_name="Late Comer").exists()
    assert b.Appointment.objects.filter(start=booked.start, resource_links__resource=adams).count() == 1
    # And the calendar no longer lists it.
    html = client.get(calendar_url, {"week": MONDAY_DATE.isoformat(), "service": clinic.service.pk}).content.decode()
    assert (str(adams.pk), start) not in lane_starts(html)


def test_hold_from_the_calendar_then_confirm(client, world):
    clinic = world["clinic"]
    adams = clinic.resources[0]
    client.force_login(world["frontdesk"])
    start = datetime.combine(MONDAY_DATE, time(11), NY).isoformat()
    client.post(reverse("admin:booking_location_calendar_book", args=[clinic.location.pk]), {
        "service": clinic.service.pk, "resource": adams.pk, "start": start, "customer_name": "Hal Hold", "action": "hold",
    })
    held = b.Appointment.objects.get(customer_name="Hal Hold")
    assert held.status == "IN" and held.expires_at is not None
    url = reverse("admin:booking_location_calendar_appointment", args=[clinic.location.pk, held.pk])
    client.post(url, {"action": "confirm"})
    held.refresh_from_db()
    assert held.status == "BK" and held.expires_at is None


def test_reschedule_to_a_listed_start_and_cancel(client, world):
    clinic = world["clinic"]
    adams = clinic.resources[0]
    appointment = book_appointment(clinic, adams, datetime.combine(MONDAY_DATE, time(9), NY), name="Ivy Move")
    client.force_login(world["frontdesk"])
    url = reverse("admin:booking_location_calendar_appointment", args=[clinic.location.pk, appointment.pk])
    page = client.get(url).content.decode()
    offered = re.findall(r'name="start" value="([^"]+)"', page)
    target = datetime.combine(MONDAY_DATE, time(15), NY).isoformat()
    assert target in offered and datetime.combine(MONDAY_DATE, time(9), NY).isoformat() not in offered
    moved = client.post(url, {"action": "reschedule", "start": target}, follow=True)
    appointment.refresh_from_db()
    assert appointment.start == datetime.fromisoformat(target) and "Moved: Ivy Move" in moved.content.decode()
    # A start another booking took meanwhile: refused, the appointment stays.
    taker = book_appointment(clinic, adams, datetime.combine(MONDAY_DATE, time(16), NY), name="Quick Taker")
    refused = client.post(url, {"action": "reschedule", "start": taker.start.astimezone(NY).isoformat()}, follow=True)
    appointment.refresh_from_db()
    assert appointment.start == datetime.fromisoformat(target) and "Not changed" in refused.content.decode()
    client.post(url, {"action": "cancel"})
    appointment.refresh_from_db()
    assert appointment.status == "CN" and appointment.cancelled_at is not None


# --------------------------------------------------------------------------------------------
# Roles and tenants
# --------------------------------------------------------------------------------------------


def test_viewer_sees_the_calendar_without_booking_controls_and_is_refused(client, world):
    clinic = world["clinic"]
    adams = clinic.resources[0]
    appointment = book_appointment(clinic, adams, datetime.combine(MONDAY_DATE, time(9), NY))
    client.force_login(world["viewer"])
    html = client.get(reverse("admin:booking_location_calendar", args=[clinic.location.pk]),
                      {"week": MONDAY_DATE.isoformat(), "service": clinic.service.pk}).content.decode()
    assert lane_starts(html), "a viewer still sees the bookable starts"
    assert 'class="starts-form"' not in html and 'name="start"' not in html and "Move or cancel" not in html
    assert "calendar/book/" not in html
    start = datetime.combine(MONDAY_DATE, time(11), NY).isoformat()
    book = reverse("admin:booking_location_calendar_book", args=[clinic.location.pk])
    terms = {"service": clinic.service.pk, "resource": adams.pk, "start": start}
    assert client.get(book, terms).status_code == 403
    assert client.post(book, {**terms, "customer_name": "X", "action": "book"}).status_code == 403
    manage = reverse("admin:booking_location_calendar_appointment", args=[clinic.location.pk, appointment.pk])
    assert client.post(manage, {"action": "cancel"}).status_code == 403
    appointment.refresh_from_db()
    assert appointment.status == "BK" and not b.Appointment.objects.filter(customer_name="X").exists()


def test_staff_of_another_organization_get_nothing_by_url(client, world):
    clinic = world["clinic"]
    adams = clinic.resources[0]
    appointment = book_appointment(clinic, adams, datetime.combine(MONDAY_DATE, time(9), NY), name="Secret Patient")
    client.force_login(world["outsider"])
    start = datetime.combine(MONDAY_DATE, time(11), NY).isoformat()
    terms = {"service": clinic.service.pk, "resource": adams.pk, "start": start}
    for url, params in (
        (reverse("admin:booking_location_calendar", args=[clinic.location.pk]), {"service": clinic.service.pk}),
        (reverse("admin:booking_resource_calendar", args=[adams.pk]), {}),
        (reverse("admin:booking_location_calendar_book", args=[clinic.location.pk]), terms),
        (reverse("admin:booking_location_calendar_appointment", args=[clinic.location.pk, appointment.pk]), {}),
        (reverse("admin:booking_resource_explain_day", args=[adams.pk]),
         {"service": clinic.service.pk, "location": clinic.location.pk, "date": MONDAY_DATE.isoformat()}),
    ):
        response = client.get(url, params)
        assert response.status_code == 404 and "Secret Patient" not in response.content.decode()
    response = client.post(reverse("admin:booking_location_calendar_book", args=[clinic.location.pk]),
                           {**terms, "customer_name": "Intruder", "action": "book"})
    assert response.status_code == 404 and not b.Appointment.objects.filter(customer_name="Intruder").exists()
    # Their own location with our service or resource named in the query: 404 too.
    own = world["other"].location
    response = client.get(reverse("admin:booking_location_calendar_book", args=[own.pk]), terms)
    assert response.status_code == 404
