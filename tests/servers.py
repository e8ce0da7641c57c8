"""The product's own web servers as real processes, for tests of what only a real server shows
(header names on the wire, static files, several gunicorn workers)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# name -> the command line (after the interpreter) serving on a port
COMMANDS = {
    "runserver": lambda port: ["manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
    "gunicorn": lambda port: ["-m", "gunicorn", "-c", "config/gunicorn.conf.py", "--workers", "1",
                              "--bind", f"127.0.0.1:{port}", "config.wsgi"],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def servers_running(names: list[str], *, env: dict, timeout: float = 30) -> Iterator[dict[str, int]]:
    """Start each named server on a free port with ``env``; yields name -> port once every one
    accepts connections, and stops them afterwards."""
    ports, processes = {}, []
    try:
        for name in names:
            ports[name] = free_port()
            processes.append(subprocess.Popen([sys.executable, *COMMANDS[name](ports[name])], cwd=ROOT, env=env,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + timeout
        for name, port in ports.items():
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"{name} did not start")
                    time.sleep(0.1)
        yield ports
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
