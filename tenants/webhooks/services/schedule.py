"""The periodic django-q2 schedule that sends due retries and takes over stalled deliveries."""

from __future__ import annotations

SWEEP_SCHEDULE_NAME = "webhooks: send due and stalled deliveries"
SWEEP_FUNC = "tenants.webhooks.tasks.deliveries_sweep"


def webhook_schedule_ensure(*, using: str = "default") -> None:
    """The every-minute django-q2 schedule that sends due retries and takes over stalled
    deliveries; created once, kept as is afterwards (idempotent)."""
    from django_q.models import Schedule

    schedule, created = Schedule.objects.using(using).get_or_create(
        name=SWEEP_SCHEDULE_NAME,
        defaults={"func": SWEEP_FUNC, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1},
    )
    if not created and (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) != (
        SWEEP_FUNC,
        Schedule.MINUTES,
        1,
        -1,
    ):
        schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats = SWEEP_FUNC, Schedule.MINUTES, 1, -1
        schedule.save(using=using)

