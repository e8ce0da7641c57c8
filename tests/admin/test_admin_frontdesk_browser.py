"""The front desk's admin in a real browser at 1366 × 768: a block typed 13:00–17:00 blocks
13:00–17:00 local; no list or form runs past the right edge; screenshots for the README."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.urls import NoReverseMatch, reverse

from booking.demo import demo_data_ensure
from booking.models import Block, Location, Resource, Service, Shift
from booking.selectors import resource_zone_get
from tenants.models import Membership
from tests.admin.conftest import PASSWORD
from tests.browser import admin_login, browser_page
from tests.conftest import make_tenant

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"
WIDTH, HEIGHT = 1366, 768
BOSTON = ZoneInfo("America/New_York")


@pytest.fixture
def clinic(db):
    tenant = make_tenant("Harbor Family Health", "America/New_York")
    demo_data_ensure(organization=tenant.organization)
    User = get_user_model()
    desk = User.objects.create_user("desk", password=PASSWORD, is_staff=True)
    Membership.objects.create(user=desk, organization=tenant.organization, role=Membership.Role.FRONTDESK)
    User.objects.create_user("root", password=PASSWORD, is_staff=True, is_superuser=True)
    return tenant


def login(page, base: str, username: str) -> None:
    admin_login(page, base, username, PASSWORD, viewport=(WIDTH, HEIGHT))


def _grid(windows, service) -> list[str]:
    """The local starts a service's grid offers in those wall-clock windows: every interval from
    each window's start while the visit and its padding still end inside it (v3-api.md, rules 7-8)."""
    step = timedelta(minutes=service.booking_interval or service.duration)
    need = timedelta(minutes=service.duration + service.padding)
    found = []
    for start, end in windows:
        at = datetime.combine(date.min, start)
        while at + need <= datetime.combine(date.min, end):
            found.append(at.strftime("%H:%M"))
            at += step
    return found


def _shift_windows(resource, day: date) -> list:
    """The resource's shifts on that date's weekday (0 = Sunday), in wall-clock time."""
    weekday = (day.weekday() + 1) % 7
    return sorted(Shift.objects.filter(resource=resource, day_of_week=weekday).values_list("start_time", "end_time"))


def test_a_block_typed_13_to_17_blocks_13_to_17_local(live_server, clinic):
    patel = Resource.objects.get(organization=clinic.organization, name="Dr. Maya Patel")
    follow_up = Service.objects.get(organization=clinic.organization, name="Follow-up visit")
    back_bay = Location.objects.get(organization=clinic.organization, timezone="America/New_York")
    # Her shifts (08:00-12:00, 13:00-17:00) are read in her zone: her first location's, Boston's.
    assert resource_zone_get(resource=patel) == "America/New_York"

    def starts(day: date) -> list[str]:
        query = {
            "startDate": day.isoformat(), "endDate": day.isoformat(), "LocationId": str(back_bay.pk),
            "ServiceId": str(follow_up.pk), "ResourceIds": [str(patel.pk)], "timezone": "America/New_York",
        }
        answer = clinic.v3().get("/v3/availability", query)
        assert answer.status_code == 200, answer.content[:500]
        return [slot["start_time"][11:16] for slot in answer.json()["availableTimes"]]

    # The first weekday from a week ahead on which her whole day is open: no demo appointment,
    # leave, closure or meeting takes any of her starts, so the block is the only thing that can.
    day = date.today() + timedelta(days=7)
    while True:
        windows = _shift_windows(patel, day)
        if windows and starts(day) == _grid(windows, follow_up):
            break
        day += timedelta(days=1)
        assert day < date.today() + timedelta(days=70), "no open day for Dr. Patel in the demo"
    morning = [(s, e) for s, e in windows if e <= time(12)]
    afternoon = [(s, e) for s, e in windows if s >= time(13)]
    assert morning and afternoon and [s for s, _ in afternoon] == [time(13)]
    assert "13:00" in starts(day) and "16:30" in starts(day)  # her afternoon, before the block
    base = live_server.url
    with browser_page() as page:
        login(page, base, "desk")
        page.goto(f"{base}/admin/booking/block/add/")
        page.click('[aria-labelledby="select2-id_resource-container"]')
        page.wait_for_selector(".select2-results__option:not(.loading-results)")
        page.click(".select2-results__option >> text=Dr. Maya Patel")
        page.fill("#id_start_0", day.isoformat())
        page.fill("#id_start_1", "13:00")
        page.fill("#id_end_0", day.isoformat())
        page.fill("#id_end_1", "17:00")
        page.fill("#id_reason", "Afternoon off")
        page.click("input[name=_save]")
        page.wait_for_selector(".messagelist .success")
        message = page.locator(".messagelist .success").inner_text()
        assert "13:00–17:00" in message and ("EST" in message or "EDT" in message)
        assert "13:00–17:00" in page.locator("#result_list").inner_text()

    block = Block.objects.get(reason="Afternoon off")
    assert block.start == datetime(day.year, day.month, day.day, 13, tzinfo=BOSTON).astimezone(UTC)
    assert block.end == datetime(day.year, day.month, day.day, 17, tzinfo=BOSTON).astimezone(UTC)
    after = starts(day)
    assert after == _grid(morning, follow_up) and "08:00" in after  # her morning is still open
    assert [s for s in after if s >= "12:00"] == []  # the afternoon (13:00–17:00 Boston) is blocked


def _pages(organization_id) -> list[str]:
    """Every registered model's changelist, add form and the change form of one of its objects."""
    urls = []
    for model, _model_admin in sorted(admin.site._registry.items(), key=lambda pair: pair[0]._meta.label):
        opts = model._meta
        for view in ("changelist", "add"):
            try:
                urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}"))
            except NoReverseMatch:
                pass
        obj = model._default_manager.order_by("pk").first()
        if obj is not None:
            try:
                urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)]))
            except NoReverseMatch:
                pass
    return urls


@pytest.mark.parametrize("username", ["root", "desk"])
def test_no_admin_page_scrolls_sideways_at_1366(live_server, clinic, username):
    base = live_server.url
    too_wide = []
    with browser_page() as page:
        login(page, base, username)
        for url in ["/admin/", *_pages(clinic.organization.pk)]:
            response = page.goto(f"{base}{url}")
            if response.status in (403, 404):
                continue
            assert response.status == 200, (url, response.status)
            width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            if width[0] > width[1]:
                too_wide.append((url, width))
    assert too_wide == []


def test_screenshots_of_the_dashboard_and_the_appointment_list(live_server, clinic):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    base = live_server.url
    with browser_page() as page:
        login(page, base, "desk")
        page.goto(f"{base}/admin/")
        assert page.locator(".dashboard-location").count() == 2
        page.screenshot(path=str(SCREENSHOTS / "dashboard.png"))
        page.goto(f"{base}/admin/booking/appointment/")
        first = page.locator("#result_list tbody tr").first.inner_text()
        assert "EST" in first or "EDT" in first or "MST" in first or "MDT" in first
        page.screenshot(path=str(SCREENSHOTS / "appointments.png"))
    for name in ("dashboard.png", "appointments.png"):
        assert (SCREENSHOTS / name).stat().st_size > 10_000
