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


def process_stop(process: subprocess.Popen) -> None:
    """Ask a server process to stop; kill it when it has not stopped within ten seconds."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


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
            process_stop(process)


# --- several gunicorn workers on one database, and bursts of concurrent clients -----------------

TENANT_SETUP = """
import json
from tests.conftest import make_tenant
t = make_tenant("Burst")
print(json.dumps({"api_key": t.api_key, "client_id": t.client_id, "client_secret": t.client_secret,
                  "access_token": t.access_token}))
"""


def tenant_in_database(env: dict, *, migrate: bool) -> dict:
    """Migrate (when asked) the database ``env`` names and create a tenant there through the
    product's own code, in a separate process; answers its plain-text credentials."""
    if migrate:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    made = subprocess.run([sys.executable, "manage.py", "shell", "-c", TENANT_SETUP], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True)
    import json

    return json.loads(made.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def gunicorn_running(env: dict, *, workers: int, timeout: float = 60) -> Iterator[str]:
    """gunicorn with ``workers`` worker processes on a free port; yields its base URL once it
    answers, and stops it afterwards."""
    import httpx

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "--workers", str(workers),
         "--bind", f"127.0.0.1:{port}", "--access-logfile", "/dev/null", "config.wsgi"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.get(url + "/", timeout=2)
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    pytest.fail("gunicorn did not start: " + process.stderr.read().decode()[-2000:])
                time.sleep(0.2)
        yield url
    finally:
        process_stop(process)


def burst(url: str, path: str, headers: dict, *, requests: int, threads: int) -> list:
    """``requests`` GETs of ``path`` from ``threads`` clients, each on its own connection, all
    released at once by a barrier; answers the responses (an exception where a request failed)."""
    import threading

    import httpx

    barrier = threading.Barrier(threads)
    results: list = []
    lock = threading.Lock()
    share = [requests // threads + (1 if i < requests % threads else 0) for i in range(threads)]

    def client(count: int) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            http.get("/")  # connect before the start line
            barrier.wait()
            for _ in range(count):
                try:
                    response = http.get(path)
                except httpx.HTTPError as exc:
                    response = exc
                with lock:
                    results.append(response)

    workers = [threading.Thread(target=client, args=(n,)) for n in share]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    return results
