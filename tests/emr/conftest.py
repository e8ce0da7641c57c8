"""Fixtures for the EMR tests: the sandbox EMR on pytest-django's live server, a fault-injecting
FHIR server on a loopback port, connections wired to either, and a way to run queued django-q2
tasks through django-q2's own worker code in this process."""

from __future__ import annotations

from datetime import date, timedelta
from multiprocessing import Value

import pytest

from emr.adapters.fhir import token_cache_clear
from emr.models import EmrConnection
from emr.sandbox import PREFIX
from emr.services.connections import emr_connection_create, emr_connection_credentials, emr_connection_keypair_ensure
from tests.conftest import Tenant, make_tenant
from tests.emr.calendly_fixtures import calendly  # noqa: F401  (the fake Calendly fixture)
from tests.emr.fake_fhir import FakeFhirServer

SANDBOX_ZONE = "America/New_York"


@pytest.fixture(autouse=True)
def _fresh_adapter_state():
    """Access tokens and rate-limit buckets live in process memory: start every test clean."""
    from emr import ratelimit

    token_cache_clear()
    ratelimit._local_state.clear()
    yield
    token_cache_clear()


def performers(appointment: dict, code: str) -> set[str]:
    """The Practitioner ids of a sandbox appointment's participants typed ``code`` (``PPRF``
    primary performer, ``SPRF`` secondary performer)."""
    return {
        p["actor"]["reference"].split("/", 1)[1]
        for p in appointment["participant"]
        if p["actor"]["reference"].startswith("Practitioner/")
        and any(c.get("code") == code for t in p.get("type") or [] for c in t.get("coding") or [])
    }


def practitioners(appointment: dict) -> set[str]:
    """Every Practitioner taking part in a sandbox appointment, whatever their role."""
    return {p["actor"]["reference"].split("/", 1)[1] for p in appointment["participant"] if p["actor"]["reference"].startswith("Practitioner/")}


def day_with_secondary_only(ds, *, first: date, providers: set[str] | None = None) -> tuple[date, dict]:
    """The first weekday from ``first`` on with an active (booked or pending) appointment whose
    secondary performer is one of ``providers`` (any provider when None) while its primary is
    none of them: the case a provider search must still find. Sandbox data is deterministic, so
    the tests that use this exercise it on whatever day they run."""
    day = first
    while day <= ds.last_day:
        if day.weekday() < 5:
            for appointment in ds.appointments(first=day, last=day):
                secondary, primary = performers(appointment, "SPRF"), performers(appointment, "PPRF")
                wanted = providers if providers is not None else secondary
                if appointment["status"] in ("booked", "pending") and secondary & wanted and not primary & wanted:
                    return day, appointment
        day += timedelta(days=1)
    raise AssertionError(f"no appointment with one of {providers} as the only matching performer after {first}")


def point_at(connection: EmrConnection, base_url: str) -> EmrConnection:
    EmrConnection.objects.filter(pk=connection.pk).update(base_url=base_url)
    connection.base_url = base_url
    return connection


@pytest.fixture
def sandbox_url(live_server) -> str:
    return f"{live_server.url}/{PREFIX}"


def make_sandbox_tenant(name: str, sandbox_url: str) -> Tenant:
    tenant = make_tenant(name, timezone_name=SANDBOX_ZONE)
    point_at(tenant.emr_connection, sandbox_url)
    return tenant


@pytest.fixture
def sandbox_tenant(sandbox_url) -> Tenant:
    """A tenant whose (default, sandbox) connection talks to the sandbox EMR over HTTP."""
    return make_sandbox_tenant("Sandbox Clinic", sandbox_url)


@pytest.fixture
def fake_fhir():
    fake = FakeFhirServer().start()
    yield fake
    fake.stop()


def connect_fake(tenant: Tenant, fake: FakeFhirServer, *, vendor: str = "fhir", client_id: str = "test-client") -> EmrConnection:
    """Point a new connection of the tenant at the fake server, with a registered key pair."""
    issued = emr_connection_create(
        organization=tenant.organization,
        vendor=vendor,
        name=f"Fake {vendor}",
        base_url=fake.url,
        timezone_name=SANDBOX_ZONE,
        credentials={"auth": "smart_backend", "client_id": client_id, "scope": "system/*.read"},
    )
    fake.register(client_id, emr_connection_keypair_ensure(connection=issued.connection))
    issued.connection.issued_access_token = issued.access_token
    assert emr_connection_credentials(connection=issued.connection)["client_id"] == client_id
    return issued.connection


def run_queued_tasks(limit: int = 50) -> list[dict]:
    """Take every queued task from the broker and run it through django-q2's worker and monitor
    (what ``qcluster`` runs), in this process; returns the finished task packages."""
    from django_q.brokers import get_broker
    from django_q.monitor import monitor
    from django_q.queues import Queue
    from django_q.signing import SignedPackage
    from django_q.worker import worker

    broker = get_broker()
    done = []
    while len(done) < limit:
        batch = broker.dequeue()
        if not batch:
            break
        for ack_id, payload in batch:
            task = SignedPackage.loads(payload)
            task["ack_id"] = ack_id
            task["sync"] = True  # keeps the test's database connection open
            tasks, results = Queue(), Queue()
            tasks.put(task)
            tasks.put("STOP")
            worker(tasks, results, Value("f", -1))
            finished = results.get()
            done.append(dict(finished))
            results.put(finished)
            results.put("STOP")
            monitor(results, broker)
    return done
