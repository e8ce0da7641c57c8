"""The demo organization, built from every app: its booking data (``booking/demo.py``), logins,
API credentials and a sandbox EMR connection (``demo_ensure``); then the EMR data it shows, the
sandbox's providers, locations and schedules and the coming week's appointments, fetched through
the real adapter over HTTP (``demo_sync``).

Secrets are normally shown once; for the demo they are also written to
``var/demo_credentials.json`` (git-ignored, mode 600) so every start can print them again.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from booking.demo import demo_data_ensure
from emr.models import EmrConnection, Job, Vendor
from emr.services.connections import emr_connection_create, sandbox_base_url
from emr.services.live_fetch import FetchRequest, job_run
from tenants.credentials import secret_new
from tenants.models import Membership, Organization
from tenants.services import api_client_create, organization_create

DEMO_SLUG = "harbor-family-health"
DEMO_NAME = "Harbor Family Health"
CREDENTIALS_FILE = settings.VAR_DIR / "demo_credentials.json"


@dataclass
class DemoCredentials:
    organization_id: str
    admin_username: str
    admin_password: str
    staff_username: str  # the front desk
    staff_password: str
    manager_username: str  # the clinic's administrator
    manager_password: str
    viewer_username: str
    viewer_password: str
    api_key: str
    client_id: str
    client_secret: str
    access_token: str


def _load() -> dict:
    try:
        return json.loads(CREDENTIALS_FILE.read_text())
    except (OSError, ValueError):
        return {}


def _save(creds: DemoCredentials) -> None:
    CREDENTIALS_FILE.write_text(json.dumps(asdict(creds), indent=2))
    CREDENTIALS_FILE.chmod(0o600)


def _user(username: str, password: str, *, superuser: bool):
    User = get_user_model()
    user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@harbor.example"})
    user.is_staff = True
    user.is_superuser = superuser
    user.set_password(password)
    user.save()
    return user


@transaction.atomic
def demo_ensure() -> DemoCredentials:
    """The demo organization, its data, an API client, a sandbox EMR connection, a superuser and one
    staff user of each role (admin, front desk, viewer); idempotent."""
    saved = _load()
    org = Organization.objects.filter(slug=DEMO_SLUG).first()
    if org is None:
        org = organization_create(name=DEMO_NAME, timezone_name="America/New_York", slug=DEMO_SLUG)
        saved = {}  # a new database: old credentials are meaningless
    demo_data_ensure(organization=org)

    if not (saved.get("api_key") and saved.get("organization_id") == str(org.pk)):
        issued = api_client_create(organization=org, name="Demo API client")
        saved.update(api_key=issued.api_key, client_id=issued.api_client.client_id, client_secret=issued.client_secret)
    connection = EmrConnection.objects.filter(organization=org, vendor=Vendor.SANDBOX).first()
    if connection is None:
        issued_conn = emr_connection_create(organization=org, vendor=Vendor.SANDBOX, name="Sandbox EMR")
        connection, saved["access_token"] = issued_conn.connection, issued_conn.access_token
    elif not saved.get("access_token"):
        token = secret_new("tok")
        EmrConnection.objects.filter(pk=connection.pk).update(access_token_lookup=token.lookup, access_token_hash=token.hash)
        saved["access_token"] = token.value
    if connection.base_url != sandbox_base_url():  # SITE_URL changed
        EmrConnection.objects.filter(pk=connection.pk).update(base_url=sandbox_base_url())

    creds = DemoCredentials(
        organization_id=str(org.pk),
        admin_username="admin",
        admin_password=saved.get("admin_password") or secrets.token_urlsafe(9),
        staff_username="frontdesk",
        staff_password=saved.get("staff_password") or secrets.token_urlsafe(9),
        manager_username="manager",
        manager_password=saved.get("manager_password") or secrets.token_urlsafe(9),
        viewer_username="viewer",
        viewer_password=saved.get("viewer_password") or secrets.token_urlsafe(9),
        api_key=saved["api_key"],
        client_id=saved["client_id"],
        client_secret=saved["client_secret"],
        access_token=saved["access_token"],
    )
    _user(creds.admin_username, creds.admin_password, superuser=True)
    for username, password, role in (
        (creds.staff_username, creds.staff_password, Membership.Role.FRONTDESK),
        (creds.manager_username, creds.manager_password, Membership.Role.ADMIN),
        (creds.viewer_username, creds.viewer_password, Membership.Role.VIEWER),
    ):
        staff = _user(username, password, superuser=False)
        Membership.objects.update_or_create(user=staff, organization=org, defaults={"role": role})
    _save(creds)
    return creds


@dataclass(frozen=True)
class DemoSync:
    connection: EmrConnection
    sync_job: Job
    fetch_job: Job


def demo_sync(*, organization: Organization, run_now: bool = False, days: int = 7) -> DemoSync | None:
    """Sync providers and locations from the organization's sandbox connection and fetch the
    appointments of the next ``days`` days (today included, at most 7).

    Two jobs are created (a provider sync, then a date-range live fetch) and run in that order:
    queued as one django-q2 task by default, so a worker runs them once the web server (which
    serves the sandbox at ``SITE_URL``) is up; ``run_now=True`` runs them in this process and
    needs the sandbox reachable now. Returns None when the organization has no active sandbox
    connection."""
    connection = (
        EmrConnection.objects.filter(organization=organization, vendor=Vendor.SANDBOX, is_active=True)
        .order_by("created_at")
        .first()
    )
    if connection is None:
        return None
    today = timezone.now().astimezone(ZoneInfo(connection.timezone)).date()
    request = FetchRequest(search_by="date_range", start_date=today, end_date=today + timedelta(days=max(1, min(days, 7)) - 1))
    with transaction.atomic():
        sync_job = Job.objects.create(
            organization=organization, emr_connection=connection, kind=Job.Kind.PROVIDERS_SYNC, params={}
        )
        fetch_job = Job.objects.create(
            organization=organization,
            emr_connection=connection,
            kind=Job.Kind.APPOINTMENTS_FETCH,
            params=request.params(),
        )
        if not run_now:
            ids = [sync_job.pk, fetch_job.pk]

            def push():
                from django_q.tasks import async_task

                task_id = async_task("emr.tasks.jobs_run_task", ids, task_name=f"demo sync {organization.slug}")
                Job.objects.filter(pk__in=ids).update(task_id=str(task_id or "")[:64])

            transaction.on_commit(push)
    if run_now:
        job_run(job_id=sync_job.pk)
        job_run(job_id=fetch_job.pk)
        sync_job.refresh_from_db()
        fetch_job.refresh_from_db()
    return DemoSync(connection=connection, sync_job=sync_job, fetch_job=fetch_job)


def calendly_demo_sync(*, organization: Organization, run_now: bool = False) -> Job:
    """Connect the organization to the sandbox Calendly (once; again when ``SITE_URL`` moved) and
    sync its users and event types, so the provider directory answers with the organization's own
    providers. Queued for the worker by default (the sandbox is served by the web server)."""
    from emr.models import CalendlyConnection
    from emr.services.calendly import calendly_connect_sandbox, calendly_sync_start, sandbox_calendly_base_url

    connection = CalendlyConnection.objects.filter(organization=organization).first()
    if connection is None or connection.base_url != sandbox_calendly_base_url():
        connection = calendly_connect_sandbox(organization=organization)
    if not run_now:
        return calendly_sync_start(connection=connection)
    job = Job.objects.create(organization=organization, calendly_connection=connection, kind=Job.Kind.CALENDLY_SYNC, params={})
    return job_run(job_id=job.pk)
