"""The admin in a real browser: a clinic's staff member logs in and sees only their clinic."""

from __future__ import annotations

import pytest

from booking.models import ResourceService
from tests.admin.conftest import PASSWORD
from tests.browser import admin_login, browser_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def login(page, base: str, username: str) -> None:
    admin_login(page, base, username, PASSWORD)


def test_staff_browse_only_their_clinic_and_pick_only_its_objects(live_server, admin_world):
    base = live_server.url
    with browser_page() as page:
        login(page, base, "alpha_staff")
        assert "Scheduling admin" in page.title()

        page.goto(f"{base}/admin/booking/resource/")
        rows = page.locator("#result_list tbody tr").all_inner_texts()
        assert any("Dr Alpha Adams" in row for row in rows)
        assert not any("Dr Beta Brown" in row for row in rows)
        # Static files come through whitenoise with DEBUG off: the admin is styled.
        assert page.evaluate("getComputedStyle(document.querySelector('#header')).display") == "flex"

        page.goto(f"{base}/admin/booking/resource/{admin_world.b_resource.pk}/change/")
        assert "doesn’t exist" in page.content() and "Dr Beta Brown" not in page.content()

        # Add a service link through the autocomplete widgets: only Alpha's objects are offered.
        page.goto(f"{base}/admin/booking/resourceservice/add/")
        page.click('[aria-labelledby="select2-id_service-container"]')
        page.wait_for_selector(".select2-results__option:not(.loading-results)")
        offered = page.locator(".select2-results__option").all_inner_texts()
        assert "Alpha Checkup" in offered and "Beta Checkup" not in offered
        page.click(".select2-results__option >> text=Alpha Checkup")
        for field, text in (("resource", "Dr Alpha Adams"), ("location", "Alpha Main St")):
            page.click(f'[aria-labelledby="select2-id_{field}-container"]')
            page.wait_for_selector(".select2-results__option:not(.loading-results)")
            page.click(f".select2-results__option >> text={text}")
        page.click("input[name=_save]")
        page.wait_for_selector(".messagelist .success")

    link = ResourceService.objects.get()
    assert (link.resource, link.service, link.location, link.organization_id) == (
        admin_world.a_resource, admin_world.a_service, admin_world.a_location, admin_world.a.organization.pk)


def test_superuser_sees_both_clinics(live_server, admin_world):
    base = live_server.url
    with browser_page() as page:
        login(page, base, "root")
        page.goto(f"{base}/admin/booking/resource/")
        text = page.locator("#result_list").inner_text()
        assert "Dr Alpha Adams" in text and "Dr Beta Brown" in text
