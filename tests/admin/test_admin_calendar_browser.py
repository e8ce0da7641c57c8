"""The calendars and the explainer's day view in a real browser, on the demo clinic and its own
logins (``admin.md`` "Calendars", "Explainer", "Roles"; issue 12 "Tests"): the front desk sees the
week at local times, books a listed start (gone from ``GET /v3/availability`` too), moves and
cancels it; the explainer names and links the object behind every reason; a viewer finds no
booking controls; another organization's staff get nothing by URL; nothing scrolls sideways at
1366 × 768. Saves the calendar and explainer screenshots for the README."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import NoReverseMatch, reverse
from rest_framework.test import APIClient

from booking.models import Appointment, Location, Resource, Service
from emr.services import demo
from tenants.models import Membership
from tests.admin.conftest import PASSWORD
from tests.browser import admin_login, browser_page
from tests.conftest import make_tenant

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"
WIDTH, HEIGHT = 1366, 768
BOSTON = ZoneInfo("America/New_York")


@pytest.fixture
def clinic(db, tmp_path, monkeypatch):
    """The demo clinic with the logins ``manage.py demo`` prints, and a front desk of another clinic."""
    monkeypatch.setattr(demo, "CREDENTIALS_FILE", tmp_path / "demo_credentials.json")
    creds = demo.demo_ensure()
    other = make_tenant("Elsewhere Medical", "America/Chicago")
    outsider = get_user_model().objects.create_user("elsewhere_desk", password=PASSWORD, is_staff=True)
    Membership.objects.create(user=outsider, organization=other.organization, role=Membership.Role.FRONTDESK)
    org_id = creds.organization_id
    return {
        "creds": creds,
        "back_bay": Location.objects.get(organization_id=org_id, timezone="America/New_York"),
        "patel": Resource.objects.get(organization_id=org_id, name="Dr. Maya Patel"),
        "follow_up": Service.objects.get(organization_id=org_id, name="Follow-up visit"),
    }


def login(page, base: str, username: str, password: str) -> None:
    admin_login(page, base, username, password, viewport=(WIDTH, HEIGHT))


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def first_demo_day(location) -> date:
    """The local date of the location's first upcoming demo appointment."""
    first = Appointment.objects.filter(location=location, status="BK").order_by("start").first()
    assert first is not None, "the demo books visits on the coming weekdays"
    return first.start.astimezone(ZoneInfo(location.timezone)).date()


def first_demo_week(location) -> date:
    """The Monday of that appointment's week."""
    return monday_of(first_demo_day(location))


def next_week() -> date:
    """The next Monday: a whole week ahead, in which the demo books visits (its next ten days)."""
    return monday_of(date.today()) + timedelta(days=7)


def local_range(appointment, zone: ZoneInfo) -> str:
    start, end = appointment.start.astimezone(zone), appointment.end.astimezone(zone)
    return f"{start:%H:%M}–{end:%H:%M} {start.tzname()}"


def v3_starts(clinic, day: date) -> set[tuple[str, str]]:
    """(resource id, start) of every Follow-up start at Back Bay that day, asked with the clinic's key."""
    api = APIClient(HTTP_X_API_KEY=clinic["creds"].api_key)
    answer = api.get("/v3/availability", {
        "LocationId": str(clinic["back_bay"].pk), "ServiceId": str(clinic["follow_up"].pk),
        "startDate": day.isoformat(), "endDate": day.isoformat(), "timezone": "America/New_York", "roundRobin": "NONE",
    })
    assert answer.status_code == 200, answer.content[:500]
    return {(rid, t["start_time"]) for t in answer.json()["availableTimes"] for rid in t["ResourceIds"]}


def calendar_url(clinic, **query) -> str:
    url = reverse("admin:booking_location_calendar", args=[clinic["back_bay"].pk])
    return url + "?" + "&".join(f"{k}={v}" for k, v in query.items())


def test_frontdesk_sees_the_week_in_local_time_books_moves_and_cancels(live_server, clinic):
    creds, back_bay, patel, follow_up = clinic["creds"], clinic["back_bay"], clinic["patel"], clinic["follow_up"]
    week = next_week()
    in_week = Appointment.objects.filter(
        location=back_bay, status="BK", start__gte=datetime.combine(week, datetime.min.time(), BOSTON),
        start__lt=datetime.combine(week + timedelta(days=7), datetime.min.time(), BOSTON),
    )
    assert in_week.exists()
    base = live_server.url
    with browser_page() as page:
        login(page, base, creds.staff_username, creds.staff_password)
        page.goto(base + calendar_url(clinic, week=week.isoformat(), service=follow_up.pk))
        zone_line = page.locator(".cal-zone").inner_text()
        assert "America/New_York" in zone_line and "EST" in zone_line and "Follow-up visit" in zone_line
        # Every demo appointment of the week is on the page at its Boston wall-clock time.
        for summary in page.locator("details.cal-agenda summary").all():
            summary.click()
        for appointment in in_week:
            row = page.locator(f'tr.agenda-row[data-appointment="{appointment.pk}"]')
            text = row.inner_text()
            assert local_range(appointment, BOSTON) in text and appointment.customer_name in text, text
            bar = page.locator(f'.cal-track a.item.appointment[data-appointment="{appointment.pk}"]')
            assert bar.count() >= 1 and local_range(appointment, BOSTON) in bar.first.get_attribute("title")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(SCREENSHOTS / "calendar.png"))

        # Book the first start the calendar lists for Dr. Patel on a day she has one.
        marks = page.locator(f'.cal-row.lane[data-resource="{patel.pk}"] button.start')
        assert marks.count() > 0
        mark = marks.first
        start = mark.get_attribute("value")
        start_day = datetime.fromisoformat(start).astimezone(BOSTON).date()
        assert (str(patel.pk), start) in v3_starts(clinic, start_day)
        mark.click()
        page.wait_for_selector("#book-form")
        label = datetime.fromisoformat(start).astimezone(BOSTON)
        assert f"{label:%H:%M}" in page.locator("#booking-summary").inner_text()
        page.fill("#id_customer_name", "Olivia Bennett")
        page.fill("#id_customer_email", "olivia@patients.example")
        page.click("#book-submit")
        page.wait_for_selector(".messagelist .success")
        assert "Booked: Olivia Bennett" in page.locator(".messagelist").inner_text()
        booked = Appointment.objects.get(customer_name="Olivia Bennett")
        assert booked.start == datetime.fromisoformat(start) and booked.status == "BK"
        # It appears on her lane; its start is listed neither on the calendar nor by /v3/.
        bar = page.locator(f'.cal-row.lane[data-resource="{patel.pk}"] a.item.appointment[data-appointment="{booked.pk}"]')
        assert bar.count() == 1 and "Olivia Bennett" in bar.inner_text()
        assert page.locator(f'.cal-row.lane[data-resource="{patel.pk}"] button.start[value="{start}"]').count() == 0
        assert (str(patel.pk), start) not in v3_starts(clinic, start_day)

        # Move it to the last start listed that day, then cancel it.
        summary = page.locator(f'section.cal-day[data-date="{start_day.isoformat()}"] details.cal-agenda summary')
        if page.locator(f'tr.agenda-row[data-appointment="{booked.pk}"]').is_hidden():
            summary.click()
        page.locator(f'tr.agenda-row[data-appointment="{booked.pk}"] a.manage-link').click()
        page.wait_for_selector("#reschedule-form")
        assert "Olivia Bennett" in page.locator("#appointment-summary").inner_text()
        targets = page.locator(f'#reschedule-form tr[data-date="{start_day.isoformat()}"] button.start-button')
        target = targets.last.get_attribute("value")
        assert target != start
        targets.last.click()
        page.wait_for_selector(".messagelist .success")
        assert "Moved: Olivia Bennett" in page.locator(".messagelist").inner_text()
        booked.refresh_from_db()
        assert booked.start == datetime.fromisoformat(target)
        assert (str(patel.pk), start) in v3_starts(clinic, start_day)  # the first start is free again
        assert (str(patel.pk), target) not in v3_starts(clinic, start_day)

        url = reverse("admin:booking_location_calendar_appointment", args=[back_bay.pk, booked.pk])
        page.goto(base + url)
        page.click("#cancel-submit")
        page.wait_for_selector(".messagelist .success")
        assert "Cancelled: Olivia Bennett" in page.locator(".messagelist").inner_text()
        booked.refresh_from_db()
        assert booked.status == "CN"
        assert (str(patel.pk), target) in v3_starts(clinic, start_day)


def test_explainer_day_view_names_and_links_the_reasons(live_server, clinic):
    creds, back_bay, patel, follow_up = clinic["creds"], clinic["back_bay"], clinic["patel"], clinic["follow_up"]
    visit = Appointment.objects.filter(location=back_bay, status="BK", resource_links__resource=patel).order_by("start").first()
    assert visit is not None
    day = visit.start.astimezone(BOSTON).date()
    base = live_server.url
    with browser_page() as page:
        login(page, base, creds.staff_username, creds.staff_password)
        # From the calendar's day view, the lane's "why not?" link.
        page.goto(base + calendar_url(clinic, week=monday_of(day).isoformat(), day=day.isoformat(), service=follow_up.pk))
        page.locator(f'.cal-row.lane[data-resource="{patel.pk}"] a.explain-link').click()
        page.wait_for_selector("#day-explanation")
        heading = page.locator("#day-explanation h2").inner_text()
        assert "America/New_York" in heading and ("EST" in heading or "EDT" in heading)
        listed = set(page.locator("#day-explanation").get_attribute("data-listed").split())
        assert listed == {iso for rid, iso in v3_starts(clinic, day) if rid == str(patel.pk)} and listed

        start = visit.start.astimezone(BOSTON)
        row = page.locator(f'#day-explanation tr[data-starts~="{start.isoformat()}"]')
        assert row.get_attribute("data-state") == "not_bookable"
        reason = row.locator('li.reason[data-code="appointment"]')
        assert local_range(visit, BOSTON) in reason.inner_text() and visit.customer_name in reason.inner_text()
        link = reason.locator("a")
        assert link.get_attribute("href") == reverse("admin:booking_appointment_change", args=[visit.pk])
        night = page.locator('#day-explanation tr[data-starts~="' + datetime.combine(day, datetime.min.time(), BOSTON).isoformat() + '"]')
        assert night.locator('li.reason[data-code="outside_working_hours"] a').count() >= 1
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(SCREENSHOTS / "explainer.png"))
        link.click()
        page.wait_for_url(f"**{reverse('admin:booking_appointment_change', args=[visit.pk])}")
        assert visit.customer_name in page.content()
    for name in ("calendar.png", "explainer.png"):
        if (SCREENSHOTS / name).exists():
            assert (SCREENSHOTS / name).stat().st_size > 10_000


def test_viewer_finds_no_booking_controls(live_server, clinic):
    creds, back_bay, patel, follow_up = clinic["creds"], clinic["back_bay"], clinic["patel"], clinic["follow_up"]
    week = first_demo_week(back_bay)
    base = live_server.url
    with browser_page() as page:
        login(page, base, creds.viewer_username, creds.viewer_password)
        for query in ({"week": week.isoformat(), "service": follow_up.pk},
                      {"week": week.isoformat(), "day": first_demo_day(back_bay).isoformat(), "service": follow_up.pk}):
            page.goto(base + calendar_url(clinic, **query))
            assert page.locator("span.start").count() > 0  # the starts are shown, as information
            for controls in ("button.start", "form.starts-form", "form.starts-list", "button.start-button", "a.manage-link"):
                assert page.locator(controls).count() == 0, controls
            assert "click one to book" not in page.locator(".cal-zone").inner_text()
        start = page.locator(f'.cal-row.lane[data-resource="{patel.pk}"] span.start').first.get_attribute("data-start")
        book = reverse("admin:booking_location_calendar_book", args=[back_bay.pk])
        response = page.goto(f"{base}{book}?service={follow_up.pk}&resource={patel.pk}&start={start.replace('+', '%2B')}")
        assert response.status == 403 and page.locator("#book-form").count() == 0
        visit = Appointment.objects.filter(location=back_bay, status="BK").first()
        response = page.goto(base + reverse("admin:booking_location_calendar_appointment", args=[back_bay.pk, visit.pk]))
        assert page.locator("#cancel-submit").count() == 0 and page.locator("#reschedule-form").count() == 0


def test_staff_of_another_organization_get_nothing_by_url(live_server, clinic):
    back_bay, patel, follow_up = clinic["back_bay"], clinic["patel"], clinic["follow_up"]
    visit = Appointment.objects.filter(location=back_bay, status="BK").order_by("start").first()
    day = visit.start.astimezone(BOSTON).date()
    start = visit.start.astimezone(BOSTON).isoformat().replace("+", "%2B")
    urls = [
        calendar_url(clinic, week=monday_of(day).isoformat(), service=follow_up.pk),
        calendar_url(clinic, week=monday_of(day).isoformat(), day=day.isoformat(), service=follow_up.pk),
        reverse("admin:booking_resource_calendar", args=[patel.pk]) + f"?week={monday_of(day).isoformat()}",
        reverse("admin:booking_resource_explain_day", args=[patel.pk])
        + f"?service={follow_up.pk}&location={back_bay.pk}&date={day.isoformat()}",
        reverse("admin:booking_location_calendar_book", args=[back_bay.pk])
        + f"?service={follow_up.pk}&resource={patel.pk}&start={start}",
        reverse("admin:booking_location_calendar_appointment", args=[back_bay.pk, visit.pk]),
        reverse("admin:booking_location_change", args=[back_bay.pk]),
        reverse("admin:booking_appointment_change", args=[visit.pk]),
    ]
    private = (back_bay.name, patel.name, visit.customer_name, "Follow-up visit")
    base = live_server.url
    with browser_page() as page:
        login(page, base, "elsewhere_desk", PASSWORD)
        for url in urls:
            response = page.goto(base + url)
            body = page.content()
            if response.status == 302 or page.url.rstrip("/").endswith("/admin"):
                assert "doesn’t exist" in body or "not exist" in body, url  # the admin's redirect for a missing object
            else:
                assert response.status in (403, 404), (url, response.status)
            leaked = [s for s in private if s in body]
            assert leaked == [], (url, leaked)


# ---------------------------------------------------------------------------------------------
# Nothing scrolls sideways at 1366 x 768
# ---------------------------------------------------------------------------------------------


def _changelists() -> list[str]:
    urls = []
    for model in sorted(admin.site._registry, key=lambda m: m._meta.label):
        try:
            urls.append(reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"))
        except NoReverseMatch:
            pass
    return urls


@pytest.mark.parametrize("role", ["frontdesk", "superuser"])
def test_no_list_calendar_dashboard_or_explainer_scrolls_sideways_at_1366(live_server, clinic, role):
    creds, back_bay, patel, follow_up = clinic["creds"], clinic["back_bay"], clinic["patel"], clinic["follow_up"]
    week = first_demo_week(back_bay)
    day = first_demo_day(back_bay)
    denver = Location.objects.get(organization_id=creds.organization_id, timezone="America/Denver")
    pages = [
        "/admin/",
        *_changelists(),
        calendar_url(clinic, week=week.isoformat()),
        calendar_url(clinic, week=week.isoformat(), service=follow_up.pk),
        calendar_url(clinic, week=week.isoformat(), day=day.isoformat(), service=follow_up.pk),
        reverse("admin:booking_location_calendar", args=[denver.pk]) + f"?week={week.isoformat()}",
        reverse("admin:booking_resource_calendar", args=[patel.pk]) + f"?week={week.isoformat()}&service={follow_up.pk}",
        reverse("admin:booking_resource_calendar", args=[patel.pk]) + f"?week={week.isoformat()}&day={day.isoformat()}",
        reverse("admin:booking_resource_explain_day", args=[patel.pk])
        + f"?service={follow_up.pk}&location={back_bay.pk}&date={day.isoformat()}",
        reverse("admin:booking_resource_explain", args=[patel.pk]),
    ]
    username, password = (
        (creds.staff_username, creds.staff_password) if role == "frontdesk" else (creds.admin_username, creds.admin_password)
    )
    too_wide, seen = [], 0
    base = live_server.url
    with browser_page() as page:
        login(page, base, username, password)
        for url in pages:
            response = page.goto(base + url)
            if response.status == 403 and url in _changelists():
                continue  # a model this role may not open
            assert response.status == 200, (url, response.status)
            seen += 1
            width = page.evaluate("[document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]")
            if width[0] > width[1]:
                too_wide.append((url, width))
    assert seen > 10
    assert too_wide == []
