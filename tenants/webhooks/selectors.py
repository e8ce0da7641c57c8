"""Reads: an organization's endpoints, a delivery's next retry, the monitoring overview.

A job's events are read by ``emr.selectors.job_events_list`` (jobs are the EMR's)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from tenants.errors import NotFound
from tenants.models import Delivery, DeliveryAttempt, Organization, WebhookEndpoint


def webhook_endpoint_list(*, organization: Organization) -> list[WebhookEndpoint]:
    return list(WebhookEndpoint.objects.filter(organization=organization, deleted_at__isnull=True).order_by("created_at", "id"))


def webhook_endpoint_get(*, organization: Organization, endpoint_id: str) -> WebhookEndpoint:
    """The organization's live endpoint; ``NotFound`` for unknown, deleted or another tenant's ids."""
    endpoint = (
        WebhookEndpoint.objects.filter(organization=organization, pk=str(endpoint_id)[:40], deleted_at__isnull=True).first()
        if isinstance(endpoint_id, str)
        else None
    )
    if endpoint is None:
        raise NotFound("Webhook not found.")
    return endpoint


def delivery_retry_at(*, delivery_id: int) -> datetime | None:
    """When a waiting delivery is due next; None when it is in flight, finished or gone."""
    return (
        Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING)
        .values_list("next_attempt_at", flat=True)
        .first()
    )


# --- monitoring ---------------------------------------------------------------------------------


JobsSource = Callable[..., QuerySet]
_jobs_source: JobsSource | None = None


def monitoring_jobs_register(source: JobsSource) -> None:
    """Name the background jobs the overview counts: ``source(since=, now=, organization_ids=)``
    returns a queryset of a model with a ``status`` field and a ``Status`` choices class. The
    EMR app registers its jobs (``emr/apps.py``): this app cannot import them."""
    global _jobs_source
    _jobs_source = source


def _scoped(queryset, organization_ids: list | None, path: str = "organization_id"):
    return queryset if organization_ids is None else queryset.filter(**{f"{path}__in": organization_ids})


def monitoring_overview(*, organization_ids: list | None, now: datetime | None = None, hours: int = 24) -> dict:
    """Jobs and deliveries of the last ``hours`` by status, attempt totals and the endpoints that
    are failing. ``organization_ids`` None means every organization (superusers).

    Jobs are counted by the source an upper app registered (``monitoring_jobs_register``); with
    none registered the overview has no jobs."""
    now = now or timezone.now()
    since = now - timedelta(hours=hours)

    def by_status(queryset, choices) -> list[dict]:
        counts = dict(queryset.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
        return [{"status": value, "label": label, "count": counts.get(value, 0)} for value, label in choices]

    jobs = _jobs_source(since=since, now=now, organization_ids=organization_ids) if _jobs_source else None
    deliveries = _scoped(Delivery.objects.filter(created_at__gte=since, created_at__lt=now), organization_ids)
    attempts = _scoped(
        DeliveryAttempt.objects.filter(started_at__gte=since, started_at__lt=now), organization_ids, "delivery__organization_id"
    )
    attempt_totals = attempts.aggregate(
        total=Count("pk"),
        failed=Count("pk", filter=~Q(outcome=DeliveryAttempt.Outcome.SUCCEEDED)),
    )

    failing = []
    endpoints = _scoped(WebhookEndpoint.objects.filter(deleted_at__isnull=True), organization_ids).select_related("organization")
    stats = {
        row["delivery__endpoint_id"]: row
        for row in attempts.values("delivery__endpoint_id").annotate(
            failed=Count("pk", filter=~Q(outcome=DeliveryAttempt.Outcome.SUCCEEDED)),
            succeeded=Count("pk", filter=Q(outcome=DeliveryAttempt.Outcome.SUCCEEDED)),
            last=Max("started_at"),
        )
    }
    failed_deliveries = dict(
        deliveries.filter(status=Delivery.Status.FAILED).values_list("endpoint_id").annotate(n=Count("pk")).values_list("endpoint_id", "n")
    )
    for endpoint in endpoints:
        stat = stats.get(endpoint.pk, {})
        last_attempt = (
            DeliveryAttempt.objects.filter(delivery__endpoint=endpoint).order_by("-started_at", "-id").first()
            if stat or not endpoint.is_active
            else None
        )
        last_failed = last_attempt is not None and last_attempt.outcome != DeliveryAttempt.Outcome.SUCCEEDED
        if not endpoint.is_active or failed_deliveries.get(endpoint.pk) or last_failed:
            failing.append(
                {
                    "endpoint": endpoint,
                    "failed_attempts": stat.get("failed", 0),
                    "succeeded_attempts": stat.get("succeeded", 0),
                    "failed_deliveries": failed_deliveries.get(endpoint.pk, 0),
                    "last_attempt": last_attempt,
                }
            )
    failing.sort(key=lambda row: (row["endpoint"].is_active, -row["failed_attempts"], row["endpoint"].url))
    return {
        "since": since,
        "now": now,
        "hours": hours,
        "jobs": by_status(jobs, jobs.model.Status.choices) if jobs is not None else [],
        "jobs_total": jobs.count() if jobs is not None else 0,
        "deliveries": by_status(deliveries, Delivery.Status.choices),
        "deliveries_total": deliveries.count(),
        "attempts_total": attempt_totals["total"],
        "attempts_failed": attempt_totals["failed"],
        "failing_endpoints": failing,
    }
