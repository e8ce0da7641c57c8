"""Settings come from the environment with safe defaults: each case imports ``config.settings``
in a fresh interpreter with exactly the given variables (and no ``.env`` file)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

READ = """
import json, config.settings as s
print(json.dumps({
    "DEBUG": s.DEBUG, "ALLOWED_HOSTS": s.ALLOWED_HOSTS, "CACHES": s.CACHES, "Q_CLUSTER": s.Q_CLUSTER,
    "DATABASES": s.DATABASES, "SESSION_COOKIE_SECURE": s.SESSION_COOKIE_SECURE, "SITE_URL": s.SITE_URL,
    "WEBHOOK_ALLOW_PRIVATE_URLS": s.WEBHOOK_ALLOW_PRIVATE_URLS,
}, default=str))
"""


def settings_with(**variables) -> dict:
    env = {"PATH": os.environ.get("PATH", ""), "ENV_FILE": str(ROOT / "var" / "no-such.env"), **variables}
    done = subprocess.run([sys.executable, "-c", READ], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def defaults() -> dict:
    return settings_with()


def test_debug_is_off_unless_set(defaults):
    assert defaults["DEBUG"] is False
    assert settings_with(DEBUG="true")["DEBUG"] is True
    assert settings_with(DEBUG="false")["DEBUG"] is False


def test_allowed_hosts_default_to_localhost(defaults):
    assert defaults["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1"]
    assert settings_with(ALLOWED_HOSTS="scheduling.example.com,api.example.com")["ALLOWED_HOSTS"] == [
        "scheduling.example.com", "api.example.com"]


def test_the_cache_is_in_process_without_redis_and_django_redis_with_it(defaults):
    assert defaults["CACHES"]["default"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"
    cache = settings_with(REDIS_URL="redis://cache.internal:6379/3")["CACHES"]["default"]
    assert cache["BACKEND"] == "django_redis.cache.RedisCache"
    assert cache["LOCATION"] == "redis://cache.internal:6379/3" and cache["KEY_PREFIX"] == "sched"
    assert settings_with(REDIS_URL="redis://r:6379/0", CACHE_KEY_PREFIX="east")["CACHES"]["default"]["KEY_PREFIX"] == "east"


def test_django_q_uses_the_orm_broker_by_default(defaults):
    cluster = defaults["Q_CLUSTER"]
    assert cluster["orm"] == "default" and "redis" not in cluster
    assert (cluster["name"], cluster["workers"], cluster["timeout"], cluster["retry"]) == ("scheduling", 2, 300, 360)
    redis = settings_with(Q_BROKER="redis", REDIS_URL="redis://q.internal:6379/1")["Q_CLUSTER"]
    assert redis["redis"] == "redis://q.internal:6379/1" and "orm" not in redis


def test_the_redis_broker_without_redis_url_refuses_to_start():
    env = {"PATH": os.environ.get("PATH", ""), "ENV_FILE": str(ROOT / "var" / "no-such.env"), "Q_BROKER": "redis"}
    done = subprocess.run([sys.executable, "-c", READ], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "Q_BROKER=redis needs REDIS_URL" in done.stderr


def test_the_database_defaults_to_a_sqlite_file(defaults):
    database = defaults["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert database["NAME"] == str(ROOT / "var" / "db.sqlite3")
    postgres = settings_with(DATABASE_URL="postgres://app:secret@db.internal:5432/scheduling")["DATABASES"]["default"]
    assert (postgres["ENGINE"], postgres["HOST"], postgres["NAME"], postgres["CONN_MAX_AGE"]) == (
        "django.db.backends.postgresql", "db.internal", "scheduling", 60)
    tuned = settings_with(DATABASE_URL="postgres://app:secret@db.internal:5432/scheduling", CONN_MAX_AGE="0")
    assert tuned["DATABASES"]["default"]["CONN_MAX_AGE"] == 0


def test_site_url_and_secure_cookies(defaults):
    assert defaults["SITE_URL"] == "http://127.0.0.1:8000" and defaults["SESSION_COOKIE_SECURE"] is False
    assert defaults["WEBHOOK_ALLOW_PRIVATE_URLS"] is False
    https = settings_with(SITE_URL="https://scheduling.example.com/")
    assert https["SITE_URL"] == "https://scheduling.example.com" and https["SESSION_COOKIE_SECURE"] is True


def test_an_env_file_is_read_and_the_environment_wins_over_it(tmp_path):
    env_file = tmp_path / "test.env"
    env_file.write_text("DEBUG=true\nALLOWED_HOSTS=from-file.example\n")
    read = settings_with(ENV_FILE=str(env_file))
    assert read["DEBUG"] is True and read["ALLOWED_HOSTS"] == ["from-file.example"]
    assert settings_with(ENV_FILE=str(env_file), DEBUG="false")["DEBUG"] is False


def _variables_read() -> set[str]:
    settings_py = (ROOT / "config" / "settings.py").read_text() + (ROOT / "config" / "local.py").read_text()
    gunicorn_py = (ROOT / "config" / "gunicorn.conf.py").read_text()
    names = set(re.findall(r'env\.\w+\(\s*"([A-Z][A-Z0-9_]+)"', settings_py))
    names |= set(re.findall(r'os\.environ\.get\(\s*"([A-Z][A-Z0-9_]+)"', settings_py + gunicorn_py))
    names |= set(re.findall(r"os\.environ\.get\(\s*'([A-Z][A-Z0-9_]+)'", gunicorn_py))
    return names


def test_the_readme_documents_every_variable_the_settings_read():
    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}
    read = _variables_read()
    assert {"DATABASE_URL", "Q_TIMEOUT", "GUNICORN_WORKERS", "ENV_FILE"} <= read  # the parsing finds them
    assert read - documented == set()


IMPORT_ONLY = """
import json, config.settings as s
print(json.dumps({"SECRET_KEY": s.SECRET_KEY, "GENERATED": s.SECRET_KEY_GENERATED}))
"""

CHECKS = """
import django, json
django.setup()
from django.core.checks import run_checks
print(json.dumps([m.id for m in run_checks(include_deployment_checks=False)]))
"""


def _run(code: str, **variables) -> dict | list:
    env = {"PATH": os.environ.get("PATH", ""), "ENV_FILE": str(ROOT / "var" / "no-such.env"), **variables}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_settings_creates_no_folder_and_writes_no_file(tmp_path):
    var = tmp_path / "var"
    top_level = set(os.listdir(ROOT))
    first = _run(IMPORT_ONLY, VAR_DIR=str(var))
    second = _run(IMPORT_ONLY, VAR_DIR=str(var))
    assert not var.exists() and list(tmp_path.iterdir()) == []
    assert set(os.listdir(ROOT)) - top_level == set()
    # Without a generated secret on disk yet, each process makes one up for itself.
    assert first["GENERATED"] and first["SECRET_KEY"] and first["SECRET_KEY"] != second["SECRET_KEY"]


def test_the_run_command_makes_var_and_the_secret_every_process_then_reads(tmp_path):
    var = tmp_path / "var"
    env = {"VAR_DIR": str(var)}
    _run("from config.local import local_state_ensure; local_state_ensure(); print('{}')", **env)
    secret = var / "secret_key"
    assert (var / "static").is_dir() and secret.stat().st_mode & 0o777 == 0o600
    read = [_run(IMPORT_ONLY, **env) for _ in range(2)]
    assert read[0] == read[1] == {"SECRET_KEY": secret.read_text().strip(), "GENERATED": True}
    # A set SECRET_KEY wins, and the run command then writes no secret.
    other = tmp_path / "other"
    _run("from config.local import local_state_ensure; local_state_ensure(); print('{}')", VAR_DIR=str(other),
         SECRET_KEY="from-the-environment")
    assert (other / "static").is_dir() and not (other / "secret_key").exists()
    assert _run(IMPORT_ONLY, SECRET_KEY="from-the-environment", **env) == {
        "SECRET_KEY": "from-the-environment", "GENERATED": False}


def test_a_deployment_on_a_generated_secret_is_warned(tmp_path):
    base = {"DJANGO_SETTINGS_MODULE": "config.settings", "VAR_DIR": str(tmp_path / "var")}
    assert "config.W001" in _run(CHECKS, **base)
    assert "config.W001" not in _run(CHECKS, **base, SECRET_KEY="a-real-secret-set-by-the-deployment")
    assert "config.W001" not in _run(CHECKS, **base, DEBUG="true")


def test_allowed_outbound_networks_must_be_networks(settings):
    from config.checks import outbound_networks_check

    settings.OUTBOUND_ALLOWED_NETWORKS = ["10.20.0.0/16", "192.168.1.5", "fd00::/8"]
    assert outbound_networks_check() == []
    settings.OUTBOUND_ALLOWED_NETWORKS = ["10.20.0.0/16", "intranet"]
    [error] = outbound_networks_check()
    assert error.id == "config.E001" and "'intranet'" in error.msg


@pytest.mark.parametrize("chunk_days,concurrency,errors", [
    (31, 20, []), (1, 1, []), (7, 8, []),
    (0, 20, ["CALENDLY_CHUNK_DAYS"]), (32, 20, ["CALENDLY_CHUNK_DAYS"]), (31, 0, ["CALENDLY_CONCURRENCY"]),
])
def test_calendly_settings_out_of_range_are_system_check_errors(settings, chunk_days, concurrency, errors):
    from config.checks import calendly_settings_check

    settings.CALENDLY_CHUNK_DAYS, settings.CALENDLY_CONCURRENCY = chunk_days, concurrency
    found = calendly_settings_check()
    assert [e.msg.split()[0] for e in found] == errors
    assert all(e.id == "config.E002" for e in found)
