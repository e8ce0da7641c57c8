"""The schemathesis command line, from the project's own virtualenv, against the product served by
gunicorn: the requirements must leave ``requests`` (and the ``urllib3`` under it) working."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import servers_running

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "schemathesis"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("schemathesis")
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_SETTINGS_MODULE", "REDIS_URL")}
    env.update(DATABASE_URL=f"sqlite:///{tmp}/db.sqlite3", DJANGO_SETTINGS_MODULE="config.settings")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    made = subprocess.run([sys.executable, "manage.py", "create_organization", "--name", "Fuzzed Clinic"],
                          cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    creds = json.loads(made.stdout.strip().splitlines()[-1])
    with servers_running(["gunicorn"], env=env) as ports:
        yield ports["gunicorn"], creds, tmp


def test_the_urllib3_under_requests_is_urllib3_itself():
    # urllib3-future installs itself as the `urllib3` package; requests then breaks on every call.
    from importlib import metadata

    import urllib3

    installed = {dist.metadata["Name"].lower() for dist in metadata.distributions()}
    assert "urllib3-future" not in installed
    assert urllib3.__version__ == metadata.version("urllib3")


def test_schemathesis_cli_runs_against_the_live_server(site):
    port, creds, tmp = site
    assert CLI.exists(), f"{CLI} is missing: schemathesis is in requirements.txt"
    report = tmp / "report"
    command = [
        str(CLI), "run", f"http://127.0.0.1:{port}/api/schema/",
        "--url", f"http://127.0.0.1:{port}",
        "--header", f"x-api-key: {creds['api_key']}",
        "--include-path-regex", r"^/v3/(locations|services|resources)$",
        "--checks", "not_a_server_error",
        "--phases", "examples,fuzzing",
        "--max-examples", "5",
        "--workers", "1",
        "--request-timeout", "10",
        "--report", "junit", "--report-dir", str(report),
    ]
    result = subprocess.run(command, check=False, cwd=tmp, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert "TrafficPolice" not in output, output
    assert result.returncode == 0, output
    junit = next(report.glob("*.xml")).read_text()
    assert 'errors="0"' in junit and 'failures="0"' in junit, junit
    # the operations of the three paths were really exercised (one test case each in the report)
    exercised = set(re.findall(r'<testcase name="([^"]+)"', junit))
    assert exercised == {f"{method} /v3/{path}" for method in ("GET", "POST") for path in ("locations", "services", "resources")}
