"""Reads for the ``/v1/`` family: everything starts from the caller's EMR connection.

A connection sees its organization's rows that came from it, plus rows of the organization that
came from no EMR at all (providers entered by hand, the organization's own locations); it never
sees another organization's rows, nor rows another connection of the same organization brought in.

Appointments are the exception to "plus rows from no EMR": ``GET /v1/appointments`` lists the
connection's cache of its EMR, only the rows that connection's fetches stored. Bookings made
through ``/v3/`` are not in the EMR (nothing is written back to it) and are read through ``/v3/``;
so ``object_metadata.source`` in ``/v1/`` answers is always ``emr``, kept for the shape clients of
Cobalt's API expect.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime

from django.db.models import Prefetch, Q, QuerySet

from booking.models import Appointment, Location, Resource, Shift, VisitTypeRule
from booking.selectors import resource_first_location_zone
from emr.models import EmrConnection, Job, VisitType
from tenants.errors import NotFound
from tenants.models import Event, Organization

JOB_ID_PATTERN = re.compile(r"^job_[A-Za-z0-9]{1,36}$")


def ehr_rows(*, model: type[Location] | type[Resource], connection: EmrConnection, ehr_ids) -> dict:
    """EHR id → the row this connection uses for it: its own, else the organization's row from no
    EMR (which a sync then adopts). Other connections' rows with the same EHR id are not its
    business: each connection has its own namespace of EHR ids."""
    ehr_ids = list(ehr_ids)
    found: dict = {}
    for start in range(0, len(ehr_ids), 500):
        rows = model.objects.filter(organization_id=connection.organization_id, ehr_id__in=ehr_ids[start : start + 500]).filter(
            Q(emr_connection=connection) | Q(emr_connection__isnull=True)
        )
        for row in rows:
            if row.ehr_id not in found or row.emr_connection_id == connection.pk:
                found[row.ehr_id] = row
    return found


def providers_visible(*, connection: EmrConnection) -> QuerySet[Resource]:
    return (
        Resource.objects.filter(organization_id=connection.organization_id)
        .filter(Q(emr_connection=connection) | Q(emr_connection__isnull=True, type=Resource.Type.PROVIDER))
        .select_related("organization")
        .annotate(first_location_zone=resource_first_location_zone())
        .prefetch_related(
            Prefetch(
                "shifts",
                queryset=Shift.objects.select_related("location").prefetch_related(
                    Prefetch("visit_type_rules", queryset=VisitTypeRule.objects.order_by("start_time", "id"))
                ).order_by("day_of_week", "start_time", "id"),
            )
        )
        .order_by("name", "id")
    )


def provider_get(*, connection: EmrConnection, pk=None, ehr_id: str | None = None) -> Resource:
    qs = providers_visible(connection=connection)
    if ehr_id is not None:
        provider = qs.filter(ehr_id=ehr_id).first()
    else:
        try:
            provider = qs.filter(pk=uuid.UUID(str(pk))).first()
        except ValueError:
            provider = None
    if provider is None:
        raise NotFound("Provider not found.")
    return provider


def locations_visible(*, connection: EmrConnection) -> QuerySet[Location]:
    return (
        Location.objects.filter(organization_id=connection.organization_id)
        .filter(Q(emr_connection=connection) | Q(emr_connection__isnull=True))
        .order_by("name", "id")
    )


def location_get(*, connection: EmrConnection, pk) -> Location:
    try:
        location = locations_visible(connection=connection).filter(pk=uuid.UUID(str(pk))).first()
    except ValueError:
        location = None
    if location is None:
        raise NotFound("Location not found.")
    return location


def location_by_facility_id(*, connection: EmrConnection, facility_id: str) -> Location | None:
    """A shift's ``facility_id``: the location's EHR id, or our id for locations without one."""
    qs = locations_visible(connection=connection)
    location = qs.filter(ehr_id=facility_id).first()
    if location is None:
        try:
            location = qs.filter(pk=uuid.UUID(facility_id), ehr_id__isnull=True).first()
        except ValueError:
            location = None
    return location


def appointments_cached(
    *,
    connection: EmrConnection,
    start: datetime,
    end: datetime,
    patient_mrn: str | None = None,
    patient_name: str | None = None,
    provider_ehr_id: str | None = None,
    status: str | None = None,
) -> QuerySet[Appointment]:
    """The connection's cached EMR appointments starting in ``[start, end)`` (never ``/v3/``
    bookings, nor another connection's rows: see the module docstring)."""
    qs = Appointment.objects.filter(
        organization_id=connection.organization_id, emr_connection=connection, start__gte=start, start__lt=end
    )
    if patient_mrn:
        qs = qs.filter(patient_mrn=patient_mrn)
    if patient_name:
        qs = qs.filter(patient_name__icontains=patient_name)
    if provider_ehr_id:
        qs = qs.filter(Q(primary_provider__ehr_id=provider_ehr_id) | Q(secondary_provider__ehr_id=provider_ehr_id))
    if status:
        qs = qs.filter(ehr_status__iexact=status)
    return qs.select_related("primary_provider", "secondary_provider", "location").order_by("start", "id")


def visit_types_of(*, connection: EmrConnection) -> QuerySet[VisitType]:
    return VisitType.objects.filter(emr_connection=connection).order_by("code")


def appointment_statuses_seen(*, connection: EmrConnection) -> list[str]:
    return sorted(
        set(
            Appointment.objects.filter(emr_connection=connection)
            .exclude(ehr_status="")
            .values_list("ehr_status", flat=True)
            .distinct()
        )
    )


def job_events_list(*, organization: Organization, emr_connection, job_id: str) -> list[dict]:
    """The payloads a job produced, oldest first, exactly as they are (or would be) POSTed.

    Scoped to the organization and to the caller's EMR connection: a job started through one
    access token is not visible through another (its events carry that connection's
    ``access_token_reference_id``). 404 when the caller cannot see such a job.
    """
    reference_id = getattr(emr_connection, "access_token_reference_id", None)
    job = Job.objects.filter(organization=organization, pk=job_id).only("pk", "emr_connection_id").first()
    if job is not None and job.emr_connection_id is not None and emr_connection is not None:
        if job.emr_connection_id != emr_connection.pk:
            raise NotFound("Job not found.")
    events = Event.objects.filter(organization=organization, job_id=job_id).filter(
        Q(access_token_reference_id__isnull=True) | Q(access_token_reference_id=reference_id)
    )
    rows = list(events.order_by("created_at", "id").values_list("body", "payload"))
    if job is None and not rows:
        raise NotFound("Job not found.")
    return [json.loads(body) if body else payload for body, payload in rows]


def jobs_started_between(*, since: datetime, now: datetime, organization_ids: list | None) -> QuerySet[Job]:
    """The jobs the admin's monitoring overview counts (registered in ``emr/apps.py``)."""
    jobs = Job.objects.filter(created_at__gte=since, created_at__lt=now)
    return jobs if organization_ids is None else jobs.filter(organization_id__in=organization_ids)
