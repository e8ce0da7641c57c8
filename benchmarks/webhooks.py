"""Webhook delivery throughput: events delivered per second to a local receiver.

Two paths, each with 1 and 2 worker processes:

- ``qcluster``: the production path. The events are emitted together, as a live fetch emits the
  changes it saw; on commit one draining task per worker is enqueued and ``manage.py qcluster``
  (Q_WORKERS = 1 or 2) sends them, each worker a batch of attempts at a time, concurrently.
- ``sweep``: ``manage.py webhooks_deliver`` processes claiming due deliveries straight from the
  database (what the every-minute schedule does), without the task queue.

The clock runs from the commit of the events (``qcluster``; emitting them is timed apart) or the
start of the processes (``sweep``) to the receiver having seen all of them (each ``webhook-id``
once). Database: a fresh SQLite file by default, or ``BENCH_DATABASE_URL`` (e.g.
``postgres://postgres@127.0.0.1:5432/sched_webhooks``). ``BENCH_EVENTS`` (default 300) events per
run, ``BENCH_RUNS`` (default 1) runs of each figure: the median is printed with the spread.

    python benchmarks/webhooks.py
"""

from __future__ import annotations

import atexit
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
TMP = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{TMP / 'bench.sqlite3'}"
EVENTS = int(os.environ.get("BENCH_EVENTS", "300"))
RUNS = max(1, int(os.environ.get("BENCH_RUNS", "1")))

os.environ.update(
    DJANGO_SETTINGS_MODULE="config.settings",
    DATABASE_URL=DATABASE_URL,
    WEBHOOK_ALLOW_PRIVATE_URLS="true",
    Q_BROKER="orm",
    LOG_LEVEL="WARNING",
)
# The benchmark and the cluster it starts must sign the broker's tasks with the same key; without
# SECRET_KEY each would fall back to the checkout's generated one, which a fresh checkout lacks.
os.environ.setdefault("SECRET_KEY", "benchmark-only-" + "x" * 50)
os.environ.pop("REDIS_URL", None)
sys.path.insert(0, str(BASE_DIR))

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402
from django_q.models import OrmQ  # noqa: E402

from tenants.events import NewEvent, events_emit  # noqa: E402
from tenants.models import Delivery  # noqa: E402
from tenants.services import organization_create  # noqa: E402
from tenants.webhooks.services import webhook_endpoint_create  # noqa: E402


class Counter:
    def __init__(self):
        self.ids: set[str] = set()
        self.requests = 0
        self.lock = threading.Condition()

    def add(self, event_id: str) -> None:
        with self.lock:
            self.requests += 1
            self.ids.add(event_id)
            self.lock.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.ids) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(left)
        return True


counter = Counter()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        counter.add(self.headers.get("webhook-id", ""))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"ok")


class Receiver(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a listen backlog like a real server's (Python's default is 5)


def start_receiver() -> ThreadingHTTPServer:
    server = Receiver(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def manage(*args: str, workers: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "Q_WORKERS": str(workers), "LOG_LEVEL": "INFO"}
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, str(BASE_DIR / "manage.py"), *args],
            cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    atexit.register(stop, process)  # also when the benchmark is interrupted
    return process


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def emit_batch(organization, count: int) -> tuple[float, float]:
    """Emit ``count`` events in one transaction; returns (when it committed, seconds emitting)."""
    started = time.monotonic()
    committed = []
    with transaction.atomic():
        # Registered first, so it runs first on commit: before the enqueueing of the deliveries.
        transaction.on_commit(lambda: committed.append(time.monotonic()))
        events_emit(
            organization=organization,
            events=[NewEvent("appointment.updated", {"appointment": {"id": f"a{n}"}}) for n in range(count)],
        )
    return committed[0], committed[0] - started


def run_qcluster(organization, workers: int, run: int) -> float:
    log = TMP / f"qcluster-{workers}-{run}.log"  # one per run: the start is seen in this run's log
    cluster = manage("qcluster", workers=workers, log=log)
    try:
        deadline = time.monotonic() + 30
        while b"running" not in log.read_bytes():
            if time.monotonic() > deadline:
                raise SystemExit(f"qcluster did not start; see {log}")
            time.sleep(0.05)
        before = len(counter.ids)
        started, emitting = emit_batch(organization, EVENTS)  # on commit: one draining task per worker
        emit_seconds.append(emitting)
        if not counter.wait_for(before + EVENTS, timeout=600):
            raise SystemExit(f"only {len(counter.ids) - before} of {EVENTS} delivered; see {log}")
        return time.monotonic() - started
    finally:
        stop(cluster)


def run_sweep(organization, workers: int, run: int) -> float:
    emit_batch(organization, EVENTS)
    OrmQ.objects.all().delete()  # leave these to the sweep workers, not a task queue
    before = len(counter.ids)
    started = time.monotonic()
    processes = [manage("webhooks_deliver", workers=1, log=TMP / f"sweep-{workers}-{run}-{n}.log") for n in range(workers)]
    for process in processes:
        process.wait(timeout=600)
    if not counter.wait_for(before + EVENTS, timeout=10):
        raise SystemExit(f"only {len(counter.ids) - before} of {EVENTS} delivered")
    return time.monotonic() - started


emit_seconds: list[float] = []


def spread(rates: list[float]) -> str:
    return f"{statistics.median(rates):.0f} events/s" + (
        f" (median of {len(rates)} runs, {min(rates):.0f}-{max(rates):.0f})" if len(rates) > 1 else ""
    )


def main() -> None:
    call_command("migrate", verbosity=0, interactive=False)
    server = start_receiver()
    organization = organization_create(name="Webhook benchmark")
    webhook_endpoint_create(organization=organization, url=f"http://127.0.0.1:{server.server_address[1]}/hook")
    OrmQ.objects.all().delete()
    engine = "PostgreSQL" if DATABASE_URL.startswith("postgres") else "SQLite"
    print(f"webhook delivery to a local receiver: {EVENTS} events per run, {engine}, django-q2 ORM broker")
    print(f"load average: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    print(f"{'path':<10} {'workers':>7} {'seconds':>8} {'events/s':>9}")
    summary = []
    try:
        for path, run in (("qcluster", run_qcluster), ("sweep", run_sweep)):
            for workers in (1, 2):
                rates = []
                for number in range(RUNS):
                    seconds = run(organization, workers, number)
                    rates.append(EVENTS / seconds)
                    print(f"{path:<10} {workers:>7} {seconds:>8.2f} {EVENTS / seconds:>9.1f}", flush=True)
                # The production path is the figure; the sweep path is printed beside it.
                label = "webhooks" if path == "qcluster" else "sweep"
                summary.append(f"{label} {workers} workers {engine}: {spread(rates)}")
        print(f"emitting {EVENTS} events (not in the qcluster clock): median {statistics.median(emit_seconds):.2f} s")
        print(f"load average: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
        print("\n".join(summary))
        failed = Delivery.objects.filter(organization=organization).exclude(status=Delivery.Status.SUCCEEDED).count()
        print(f"deliveries not succeeded: {failed}; duplicate requests: {counter.requests - len(counter.ids)}")
    finally:
        server.shutdown()
        if DATABASE_URL.startswith("postgres"):
            organization.delete()


if __name__ == "__main__":
    main()
