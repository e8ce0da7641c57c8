"""Large ``ResourceIds`` sets through the product's own gunicorn: 150 ids in the comma form reach
the application and get its JSON answer; what the application refuses is refused in the ``/v3/``
shape. Only a request line past gunicorn's hard maximum gets gunicorn's own 414."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest

from booking.api.availability import MAX_RESOURCE_IDS
from tests.servers import servers_running

ROOT = Path(__file__).resolve().parents[2]

SEED = """
import json
from tests.booking.conftest import clinic_make
clinic = clinic_make("Big Clinic")
for n in range(150):
    clinic.add_resource(f"Provider {n}")
print(json.dumps({"api_key": clinic.tenant.api_key, "params": clinic.params(),
                  "resources": [str(r.pk) for r in clinic.resources]}))
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("long-lines")
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_SETTINGS_MODULE", "REDIS_URL")}
    env.update(DATABASE_URL=f"sqlite:///{tmp}/db.sqlite3", DJANGO_SETTINGS_MODULE="config.settings",
               V3_RATE_LIMIT="1000/min")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    made = subprocess.run([sys.executable, "manage.py", "shell", "-c", SEED], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True)
    seed = json.loads(made.stdout.strip().splitlines()[-1])
    with servers_running(["gunicorn"], env=env) as ports:
        yield ports["gunicorn"], seed


def _get(port: int, target: str, api_key: str) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", target, headers={"x-api-key": api_key})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, response.getheader("Content-Type") or "", body


def test_150_comma_separated_ids_reach_the_application(site):
    port, seed = site
    ids = seed["resources"]
    assert len(ids) == 152  # the clinic's two providers and the 150 added
    target = "/v3/availability?" + urlencode(seed["params"]) + "&ResourceIds=" + ",".join(ids[:150])
    assert len(target) > 4094  # past gunicorn's default request-line limit
    status, content_type, body = _get(port, target, seed["api_key"])
    assert status == 200, body[:300]
    assert content_type.startswith("application/json")
    json.loads(body)


def test_100_repeated_ids_reach_the_application(site):
    port, seed = site
    target = "/v3/availability?" + urlencode([*seed["params"].items(), *(("ResourceIds", i) for i in seed["resources"][:100])])
    assert len(target) > 4094
    status, content_type, body = _get(port, target, seed["api_key"])
    assert status == 200 and content_type.startswith("application/json"), body[:300]


def test_more_ids_than_the_application_takes_is_a_v3_error(site):
    port, seed = site
    ids = seed["resources"][:2] * (MAX_RESOURCE_IDS // 2 + 1)
    target = "/v3/availability?" + urlencode(seed["params"]) + "&ResourceIds=" + ",".join(ids)
    assert len(target) < 8190
    status, content_type, body = _get(port, target, seed["api_key"])
    assert status == 400 and content_type.startswith("application/json")
    error = json.loads(body)
    assert error["name"] == "BadRequestError"
    assert error["errors"][0] == {"field": "ResourceIds", "message": f"At most {MAX_RESOURCE_IDS} resources."}


def test_a_request_line_past_gunicorns_maximum_is_gunicorns_414(site):
    # 8190 bytes is the most gunicorn accepts; the README tells clients to stay within it.
    port, seed = site
    status, _, _ = _get(port, "/v3/availability?ResourceIds=" + "x" * 8200, seed["api_key"])
    assert status == 414
