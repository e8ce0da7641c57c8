"""The staff dashboard on the admin index (admin.md, "Dashboard"): one organization's day at a
glance. It reads appointments, blocks' calendars, jobs, deliveries and connections, so it lives in
the app that can see all of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Max, Q
from django.utils import timezone

from booking.models import Appointment, ExternalCalendar, Location
from emr.models import CalendlyConnection, EmrConnection, Job
from tenants.localtime import local_day_bounds, local_range_text, local_text, local_today
from tenants.models import Delivery, Organization

LIVE = (Appointment.Status.BOOKED, Appointment.Status.RESERVED, Appointment.Status.HOLD)
STUCK_AFTER = timedelta(minutes=15)  # a job queued or running this long has lost its worker
RECENT = timedelta(days=7)  # failures older than this no longer ask for attention
NEXT_SHOWN = 3


@dataclass
class LocationDay:
    location: Location
    today: int
    tomorrow: int
    next: list[dict] = field(default_factory=list)  # {"appointment", "when", "who", "service"}


@dataclass
class Dashboard:
    organization: Organization
    now: datetime
    locations: list[LocationDay]
    jobs_failed: int
    jobs_stuck: int
    deliveries_failed: int
    deliveries_retrying: int
    deliveries_stuck: int
    connections: list[dict]
    calendars_failing: list[ExternalCalendar]
    calendly: dict

    @property
    def needs_attention(self) -> int:
        return self.jobs_failed + self.jobs_stuck + self.deliveries_failed + self.deliveries_retrying + self.deliveries_stuck


def _appointments_by_location(organization: Organization, now: datetime) -> list[LocationDay]:
    rows = []
    for location in Location.objects.filter(organization=organization).order_by("name"):
        zone = location.timezone
        today = local_today(zone)
        start, end = local_day_bounds(today, zone, 2)
        middle, _ = local_day_bounds(today + timedelta(days=1), zone)
        live = Appointment.objects.filter(organization=organization, location=location, status__in=LIVE)
        counts = live.filter(start__gte=start, start__lt=end).aggregate(
            today=Count("pk", filter=Q(start__lt=middle)), tomorrow=Count("pk", filter=Q(start__gte=middle))
        )
        upcoming = (
            live.filter(end__gt=now, start__lt=end)
            .select_related("service")
            .prefetch_related("resource_links__resource")
            .order_by("start")[:NEXT_SHOWN]
        )
        day = LocationDay(location=location, today=counts["today"], tomorrow=counts["tomorrow"])
        for appointment in upcoming:
            day.next.append({
                "appointment": appointment,
                "when": local_range_text(appointment.start, appointment.end, zone),
                "who": appointment.patient_name or appointment.customer_name or "—",
                "service": appointment.service.name if appointment.service_id else "",
                "with": ", ".join(link.resource.name for link in appointment.resource_links.all()),
            })
        rows.append(day)
    return rows


def _connections(organization: Organization) -> list[dict]:
    connections = EmrConnection.objects.filter(organization=organization).order_by("name")
    last_fetch = dict(
        Job.objects.filter(organization=organization, status=Job.Status.SUCCEEDED, kind=Job.Kind.APPOINTMENTS_FETCH)
        .values_list("emr_connection_id")
        .annotate(last=Max("finished_at"))
        .values_list("emr_connection_id", "last")
    )
    last_failure = {}
    for job in Job.objects.filter(organization=organization, status=Job.Status.FAILED).order_by("emr_connection_id", "-created_at"):
        last_failure.setdefault(job.emr_connection_id, job)
    out = []
    for connection in connections:
        fetched = last_fetch.get(connection.pk)
        failure = last_failure.get(connection.pk)
        if fetched and failure and failure.created_at < fetched:
            failure = None  # fixed since
        if connection.login_required_at:
            health = "needs a new login"
        elif failure is not None:
            health = "failing"
        elif not connection.is_active:
            health = "inactive"
        else:
            health = "ok"
        out.append({
            "connection": connection,
            "health": health,
            "last_fetch": local_text(fetched, organization.timezone) if fetched else "never",
            "error": (connection.last_error or (failure.error if failure else ""))[:160],
        })
    return out


def _calendly(organization: Organization) -> dict:
    connection = CalendlyConnection.objects.filter(organization=organization).first()
    if connection is None:
        return {"configured": False}
    synced = connection.last_synced_at
    return {
        "configured": True,
        "last_sync": local_text(synced, organization.timezone) if synced else "never",
        "error": connection.last_error[:160],
    }


def staff_dashboard(*, organization: Organization, now: datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    jobs = Job.objects.filter(organization=organization)
    deliveries = Delivery.objects.filter(organization=organization)
    return Dashboard(
        organization=organization,
        now=now,
        locations=_appointments_by_location(organization, now),
        jobs_failed=jobs.filter(status=Job.Status.FAILED, created_at__gte=now - RECENT).count(),
        jobs_stuck=jobs.filter(
            Q(status=Job.Status.QUEUED, created_at__lt=now - STUCK_AFTER)
            | Q(status=Job.Status.RUNNING, started_at__lt=now - STUCK_AFTER)
        ).count(),
        deliveries_failed=deliveries.filter(status=Delivery.Status.FAILED, created_at__gte=now - RECENT).count(),
        deliveries_retrying=deliveries.filter(status=Delivery.Status.PENDING, attempts__gt=0).count(),
        deliveries_stuck=deliveries.filter(
            Q(status=Delivery.Status.SENDING, lease_expires_at__lt=now)
            | Q(status=Delivery.Status.PENDING, next_attempt_at__lt=now - STUCK_AFTER)
        ).count(),
        connections=_connections(organization),
        calendars_failing=list(
            ExternalCalendar.objects.filter(organization=organization).exclude(last_error="").select_related("resource")
        ),
        calendly=_calendly(organization),
    )
