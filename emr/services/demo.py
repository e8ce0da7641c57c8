"""What the demo calls so it shows EMR data: the sandbox's providers, locations and schedules, and
the coming week's appointments, fetched through the real adapter over HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from emr.models import EmrConnection, Job, Vendor
from emr.services.live_fetch import FetchRequest, job_run
from tenants.models import Organization


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
