"""The EMR API's ``client_id``/``client_secret``/``access_token`` headers arrive through the
product's own servers: ``manage.py runserver`` and gunicorn with ``config/gunicorn.conf.py``.

Both servers run as real processes on a throwaway SQLite file; requests are raw HTTP so the header
names go over the wire exactly as written.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import servers_running

ROOT = Path(__file__).resolve().parents[2]


def _get(port: int, headers: list[tuple[str, str]]) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("GET", "/v1/providers")
    for name, value in headers:
        conn.putheader(name, value)
    conn.endheaders()
    response = conn.getresponse()
    body = json.loads(response.read() or b"{}")
    conn.close()
    return response.status, body


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("headers")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp}/db.sqlite3", "DJANGO_SETTINGS_MODULE": "config.settings"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    made = subprocess.run([sys.executable, "manage.py", "create_organization", "--name", "Headers Clinic"],
                          cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    creds = json.loads(made.stdout.strip().splitlines()[-1])
    with servers_running(SERVERS, env=env) as servers:
        yield servers, creds


SERVERS = ["runserver", "gunicorn"]


@pytest.mark.parametrize("server", SERVERS)
def test_underscore_headers_authenticate(site, server):
    servers, creds = site
    status, body = _get(servers[server], [("client_id", creds["client_id"]), ("client_secret", creds["client_secret"]),
                                          ("access_token", creds["access_token"])])
    assert status == 200, body
    assert body["success"] is True and "providers" in body


@pytest.mark.parametrize("server", SERVERS)
def test_hyphenated_headers_authenticate(site, server):
    servers, creds = site
    status, body = _get(servers[server], [("client-id", creds["client_id"]), ("client-secret", creds["client_secret"]),
                                          ("access-token", creds["access_token"])])
    assert status == 200 and body["success"] is True


@pytest.mark.parametrize("server", SERVERS)
def test_both_spellings_with_different_values_do_not_authenticate(site, server):
    servers, creds = site
    status, body = _get(servers[server], [("client_id", creds["client_id"]), ("client-id", "cli_someone_else"),
                                          ("client_secret", creds["client_secret"]), ("access_token", creds["access_token"])])
    assert status == 401 and body["success"] is False


@pytest.mark.parametrize("server", SERVERS)
def test_missing_credentials_are_401_in_the_v1_shape(site, server):
    servers, _ = site
    status, body = _get(servers[server], [])
    assert status == 401 and body["success"] is False and body["message"]
