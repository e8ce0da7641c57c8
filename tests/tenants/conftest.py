from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections

from tests.tenants.receiver import Receiver

BASE_DIR = Path(settings.BASE_DIR)


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def shared_database_url(transactional_db, tmp_path, django_db_blocker):
    """A ``DATABASE_URL`` that subprocesses (qcluster, workers) can open and that shows what this
    test commits. PostgreSQL: the test database itself (the test runs in autocommit). SQLite: the
    test database lives in memory where no other process can see it, so for this test the
    default connection is pointed at a freshly migrated file."""
    original = connections["default"]
    if original.vendor == "postgresql":
        s = original.settings_dict
        auth = quote(s["USER"] or "") + (":" + quote(s["PASSWORD"]) if s.get("PASSWORD") else "")
        yield f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
        return
    path = tmp_path / "shared.sqlite3"
    settings_dict = copy.deepcopy(original.settings_dict)
    settings_dict["NAME"] = str(path)
    replacement = original.__class__(settings_dict, alias="default")
    with django_db_blocker.unblock():
        connections["default"] = replacement
        try:
            call_command("migrate", verbosity=0, interactive=False)
            yield f"sqlite:///{path}"
        finally:
            replacement.close()
            connections["default"] = original


def subprocess_env(database_url: str, **extra: str) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "SECRET_KEY": settings.SECRET_KEY,
        "Q_BROKER": "orm",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REDIS_URL", None)
    env.update(extra)
    return env


def manage(*args: str, env: dict, log: Path) -> subprocess.Popen:
    """``manage.py`` in its own process group, so the whole tree can be stopped (or killed);
    its output goes to ``log`` (a pipe nobody reads could fill up and stall it)."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, str(BASE_DIR / "manage.py"), *args],
            cwd=BASE_DIR,
            env=env,
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_group(process: subprocess.Popen, *, kill: bool = False, timeout: float = 15) -> None:
    """Stop a ``manage`` subprocess: SIGTERM to its main process (which stops its children in
    order), or SIGKILL to the whole group at once with ``kill=True`` (a crash)."""
    import signal

    if not kill and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # whatever is left of the group
    except (ProcessLookupError, PermissionError):
        pass
    process.wait(timeout=5)


def wait_until(predicate, *, timeout: float = 15.0, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")
