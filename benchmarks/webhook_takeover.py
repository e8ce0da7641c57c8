"""Takeover after a crash (issue 13, item 7): how long a delivery stranded by ``kill -9`` of the
whole cluster waits before it is delivered, with a backlog of delivery tasks queued in front of the
every-minute sweep.

1. ``manage.py qcluster`` (``Q_WORKERS``, default 2) starts; the receiver on 127.0.0.1 holds every
   request open, so the first deliveries stay "sending".
2. ``BENCH_BACKLOG`` (default 114) events are emitted one transaction each, so one delivery task
   each is queued behind them (django-q2 ORM broker).
3. The whole cluster is killed (SIGKILL to its process group) while those requests are in flight.
4. A new cluster starts at once; the receiver now answers every request, the backlog's after
   ``BENCH_BACKLOG_DELAY`` seconds (default 1.5, so the backlog outlasts the lease as in the probe).

It prints the seconds from the kill until every stranded delivery succeeded, beside the lease in
force (``WEBHOOK_LEASE_SECONDS``, default 60 as in production): the target is the lease plus one
minute at most, whatever the backlog. Every wait is bounded. Database: a fresh SQLite file, or
``BENCH_DATABASE_URL`` (its own organizations, deleted afterwards).

    python benchmarks/webhook_takeover.py
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
TMP = Path(tempfile.mkdtemp(prefix="bench-takeover-"))
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{TMP / 'bench.sqlite3'}"
BACKLOG = int(os.environ.get("BENCH_BACKLOG", "114"))
BACKLOG_DELAY = float(os.environ.get("BENCH_BACKLOG_DELAY", "1.5"))
WORKERS = int(os.environ.get("Q_WORKERS", "2"))
LEASE = int(os.environ.get("WEBHOOK_LEASE_SECONDS", "60"))

os.environ.update(
    DJANGO_SETTINGS_MODULE="config.settings",
    DATABASE_URL=DATABASE_URL,
    WEBHOOK_ALLOW_PRIVATE_URLS="true",
    WEBHOOK_LEASE_SECONDS=str(LEASE),
    Q_BROKER="orm",
    Q_WORKERS=str(WORKERS),
    LOG_LEVEL="WARNING",
)
os.environ.pop("REDIS_URL", None)
# The benchmark and its clusters sign and read the broker's tasks with the same key.
os.environ.setdefault("SECRET_KEY", "benchmark-only-" + "x" * 50)
sys.path.insert(0, str(BASE_DIR))

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_q.models import OrmQ  # noqa: E402

from tenants.events import event_emit  # noqa: E402
from tenants.models import Delivery  # noqa: E402
from tenants.services import organization_create  # noqa: E402
from tenants.webhooks.services import webhook_endpoint_create  # noqa: E402


class Receiver(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.holding = threading.Event()  # set: hold every request until released
        self.released = threading.Event()
        self.lock = threading.Lock()
        self.held = 0
        self.answered: set[str] = set()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Receiver

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        server = self.server
        if server.holding.is_set():
            with server.lock:
                server.held += 1
            server.released.wait(timeout=600)  # the client is killed long before
            return
        if self.path == "/busy":
            time.sleep(BACKLOG_DELAY)
        with server.lock:
            server.answered.add(self.headers.get("webhook-id", ""))
        try:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"ok")
        except OSError:
            pass


def cluster_start(log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, str(BASE_DIR / "manage.py"), "qcluster"],
            cwd=BASE_DIR, env={**os.environ, "LOG_LEVEL": "INFO"}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    atexit.register(cluster_kill, process)
    deadline = time.monotonic() + 60
    while b"running" not in log.read_bytes():
        if time.monotonic() > deadline or process.poll() is not None:
            raise SystemExit(f"qcluster did not start; see {log}")
        time.sleep(0.05)
    return process


def cluster_kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def wait_for(condition, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what} after {timeout:g} s")
        time.sleep(0.1)


def main() -> None:
    call_command("migrate", verbosity=0, interactive=False)
    OrmQ.objects.all().delete()
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{receiver.server_address[1]}"
    crashed = organization_create(name="Takeover benchmark: crashed")
    busy = organization_create(name="Takeover benchmark: backlog")
    webhook_endpoint_create(organization=crashed, url=f"{base}/crashed")
    webhook_endpoint_create(organization=busy, url=f"{base}/busy")
    engine = "PostgreSQL" if DATABASE_URL.startswith("postgres") else "SQLite"
    print(f"takeover after kill -9 of the cluster: {WORKERS} workers, lease {LEASE} s, {engine}, ORM broker")
    try:
        receiver.holding.set()
        cluster = cluster_start(TMP / "qcluster-1.log")
        # One delivery in flight per worker: the whole cluster busy, as in the probe.
        for n in range(WORKERS):
            event_emit(organization=crashed, type="appointment.created", data={"n": n})
        wait_for(lambda: receiver.held >= WORKERS, timeout=60, what="the requests in flight")
        for n in range(BACKLOG):
            event_emit(organization=busy, type="appointment.created", data={"n": n})
        queued = OrmQ.objects.count()
        cluster_kill(cluster)
        killed = time.monotonic()
        killed_at = timezone.now()
        leases = dict(
            Delivery.objects.filter(organization=crashed, status=Delivery.Status.SENDING).values_list(
                "pk", "lease_expires_at"
            )
        )
        stranded = list(leases)
        print(f"killed with {len(stranded)} deliveries sending and {queued} delivery tasks queued")
        if not stranded:
            raise SystemExit("no delivery was in flight at the kill")

        receiver.holding.clear()
        receiver.released.set()
        cluster = cluster_start(TMP / "qcluster-2.log")
        wait_for(
            lambda: Delivery.objects.filter(pk__in=stranded, status=Delivery.Status.SUCCEEDED).count() == len(stranded),
            timeout=LEASE + 180,
            what="the stranded deliveries",
        )
        delay = time.monotonic() - killed
        after_lease = (timezone.now() - max(leases.values())).total_seconds()
        lease_left = (max(leases.values()) - killed_at).total_seconds()
        backlog_left = Delivery.objects.filter(organization=busy).exclude(status=Delivery.Status.SUCCEEDED).count()
        cluster_kill(cluster)
        print(f"backlog deliveries not yet delivered at that moment: {backlog_left} of {BACKLOG}")
        # The lease runs from each claim, a little before the kill.
        print(
            f"takeover {WORKERS} workers {engine}: {delay:.1f} s from the kill to every stranded delivery "
            f"delivered; {after_lease:.1f} s after the last stranded lease ran out (lease {LEASE} s, "
            f"{lease_left:.1f} s of it left at the kill; target: within the lease plus 60 s)"
        )
    finally:
        receiver.released.set()
        receiver.shutdown()
        if DATABASE_URL.startswith("postgres"):
            crashed.delete()
            busy.delete()


if __name__ == "__main__":
    main()
