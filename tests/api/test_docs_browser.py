"""The API docs render in a real browser from the site's own assets (no CDN: works offline)."""

from __future__ import annotations

import pytest

from tests.browser import browser_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_swagger_ui_renders_every_api_family(live_server):
    with browser_page() as page:
        outside = []
        page.on("request", lambda request: outside.append(request.url) if not request.url.startswith(live_server.url) else None)
        page.goto(f"{live_server.url}/api/docs/")
        page.wait_for_selector(".opblock-summary-path", timeout=20000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert any(p.startswith("/v3/availability") for p in paths)
        assert any(p.startswith("/v1/appointments/fetch") for p in paths)
        assert outside == []
