"""django-q2 task functions for webhook delivery; each is a thin call into ``services``."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings

from tenants.webhooks.services import (
    deliveries_due_count,
    deliveries_process_due,
    deliveries_resume_stalled,
    delivery_attempt_run_with_retries,
)

# A retry due this soon is made by the same task (the first retry comes 5 s after the first
# attempt), instead of waiting for the next sweep a minute later; meanwhile the task sends
# whatever else is due, looking again this often when nothing is.
INLINE_RETRY_WINDOW = timedelta(seconds=10)
RETRY_WAIT_POLL_SECONDS = 0.25
SWEEP_BUDGET_SECONDS = 50
SWEEP_BATCH = 25


def delivery_attempt_task(delivery_id: int) -> str:
    deliveries_resume_stalled()
    report = delivery_attempt_run_with_retries(
        delivery_id=delivery_id, retry_window=INLINE_RETRY_WINDOW, poll_seconds=RETRY_WAIT_POLL_SECONDS
    )
    return "nothing due" if report is None else f"attempt {report.attempt}: {report.status}"


def deliveries_process_task() -> int:
    deliveries_resume_stalled()
    return deliveries_process_due(budget_seconds=SWEEP_BUDGET_SECONDS)


def deliveries_sweep() -> int:
    """Every minute: send what is due (retries, first attempts that were never enqueued,
    deliveries whose worker died). A large backlog is shared with more workers."""
    from django_q.tasks import async_task

    due = deliveries_due_count()
    helpers = min(max(0, settings.Q_CLUSTER.get("workers", 1) - 1), due // SWEEP_BATCH)
    for _ in range(helpers):
        async_task("tenants.webhooks.tasks.deliveries_process_task", group="webhooks")
    return deliveries_process_due(budget_seconds=SWEEP_BUDGET_SECONDS)
