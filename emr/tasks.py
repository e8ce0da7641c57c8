"""django-q2 task entry points (``async_task("emr.tasks.…", …)``): thin wrappers over services."""

from __future__ import annotations

from emr.services.live_fetch import job_run


def job_run_task(job_id: str) -> str | None:
    job = job_run(job_id=job_id)
    return job.status if job is not None else None


def jobs_run_task(job_ids: list[str]) -> list[str | None]:
    """Run several jobs one after the other (the demo: sync providers, then fetch)."""
    return [job_run_task(job_id) for job_id in job_ids]


def calendly_sync_all_task() -> list[str]:
    """Every ``CALENDLY_SYNC_MINUTES`` (schedule made by migration ``0004_calendly``): queue a
    Calendly sync job per active connection."""
    from emr.services.calendly import calendly_sync_all

    return calendly_sync_all()
