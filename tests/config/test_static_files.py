"""Static files (the admin's CSS and JavaScript, Swagger UI's assets) are served by whitenoise,
with DEBUG off: by the WSGI app in-process, and by the product's own servers as real processes."""

from __future__ import annotations

import http.client
import os
from pathlib import Path

import django.contrib.admin
import pytest
from django.conf import settings
from whitenoise.middleware import WhiteNoiseFileResponse

from tests.servers import servers_running

ROOT = Path(__file__).resolve().parents[2]
ADMIN_CSS = Path(django.contrib.admin.__file__).parent / "static" / "admin" / "css" / "base.css"


def test_the_admin_css_is_a_whitenoise_response_with_debug_off(client):
    assert settings.DEBUG is False
    response = client.get("/static/admin/css/base.css")
    assert response.status_code == 200
    assert isinstance(response, WhiteNoiseFileResponse)
    assert response["Content-Type"].startswith("text/css")
    assert b"".join(response.streaming_content) == ADMIN_CSS.read_bytes()


def test_swagger_ui_assets_are_served(client):
    response = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css")
    assert response.status_code == 200 and isinstance(response, WhiteNoiseFileResponse)


def test_an_unknown_static_file_is_404(client):
    assert client.get("/static/admin/css/no-such-file.css").status_code == 404


SERVERS = ["runserver", "gunicorn"]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("static")
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_SETTINGS_MODULE")}
    env.update(DATABASE_URL=f"sqlite:///{tmp}/db.sqlite3", DJANGO_SETTINGS_MODULE="config.settings")
    with servers_running(SERVERS, env=env) as ports:
        yield ports


@pytest.mark.parametrize("server", SERVERS)
def test_the_servers_serve_the_admin_css_with_debug_off(servers, server):
    conn = http.client.HTTPConnection("127.0.0.1", servers[server], timeout=10)
    conn.request("GET", "/static/admin/css/base.css")
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 200
    assert response.getheader("Content-Type").startswith("text/css")
    assert body == ADMIN_CSS.read_bytes()
