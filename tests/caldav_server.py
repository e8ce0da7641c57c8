"""A real CalDAV server for tests: Radicale (from PyPI) as its own process on a free 127.0.0.1 port,
storing its collections in a temporary folder and checking HTTP Basic passwords against an
htpasswd file, as a hosted CalDAV account does."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port, process_stop

USER = "dav-user"
PASSWORD = "s3cret"

CONFIG = """\
[server]
hosts = 127.0.0.1:{port}

[auth]
type = htpasswd
htpasswd_filename = {htpasswd}
# plain: a test account; what is tested is the client's HTTP Basic, not how the server hashes
htpasswd_encryption = plain
# answer a wrong password at once (the default waits a second)
delay = 0

[rights]
type = owner_only

[storage]
filesystem_folder = {storage}

[web]
type = none

[logging]
level = warning
"""


@dataclass
class Radicale:
    url: str  # http://127.0.0.1:PORT
    log: Path

    def calendar_new(self, *items: bytes) -> str:
        """A new calendar of ``USER`` holding ``items`` (one iCalendar object each, all its
        components sharing one UID, as CalDAV stores them), made with MKCALENDAR and PUT;
        answers the calendar's URL."""
        url = f"{self.url}/{USER}/{uuid.uuid4().hex}/"
        with httpx.Client(auth=(USER, PASSWORD), timeout=10) as http:
            made = http.request("MKCALENDAR", url)
            assert made.status_code == 201, made.text
            for index, item in enumerate(items):
                stored = http.put(f"{url}item{index}.ics", content=item, headers={"Content-Type": "text/calendar"})
                assert stored.status_code == 201, stored.text
        return url


@contextlib.contextmanager
def radicale_running(folder: Path, *, timeout: float = 30) -> Iterator[Radicale]:
    """Radicale serving from ``folder`` (config, htpasswd, storage, log) until the block ends."""
    port = free_port()
    (folder / "users").write_text(f"{USER}:{PASSWORD}\n")
    (folder / "storage").mkdir()
    config = folder / "config"
    config.write_text(CONFIG.format(port=port, htpasswd=folder / "users", storage=folder / "storage"))
    log = folder / "radicale.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "radicale", "--config", str(config)],
                                   stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                # no password: a running Radicale answers 401
                if httpx.request("PROPFIND", url + "/", timeout=2).status_code == 401:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("Radicale did not start: " + log.read_text()[-2000:])
            time.sleep(0.1)
        yield Radicale(url, log)
    finally:
        process_stop(process)
