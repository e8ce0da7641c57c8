"""The live availability fetch (``POST /v1/availability/fetch``, seed 000) as a job.

The job fetches the providers' appointments for the request's dates from the EMR through the same
adapter call as the appointment live fetch (``appointments_fetch_remote``, search by provider),
writes them into the appointment cache (``appointments_store``: a following
``GET /v1/availability`` reflects them), computes the windows with the request's options through
``emr.availability.availability_compute`` (the GET's own code) and emits
``availability.live_fetch_completed`` with them inline in ``data.availability`` (they are not
stored). A failed fetch emits the same type with ``data.success: false`` and ``error``; the job
shows the reason in the admin, where it can be retried.
"""

from __future__ import annotations

import logging

from django.db import transaction

from emr.adapters import ADAPTER_VENDORS, vendor_has_adapter
from emr.adapters.base import AdapterError, EmrAuthError
from emr.availability import AvailabilityRequest, availability_compute
from emr.models import EmrConnection, Job
from emr.services.appointments import appointments_store
from emr.services.connections import emr_connection_healthy, emr_connection_login_required, vendor_label
from emr.services.live_fetch import (
    FetchRequest,
    appointments_fetch_remote,
    job_enqueue,
    job_finish,
    job_runner_register,
)
from tenants.events import event_emit

logger = logging.getLogger(__name__)

AVAILABILITY_EVENT = "availability.live_fetch_completed"


def availability_unsupported_message(vendor: str) -> str:
    supported = ", ".join(vendor_label(v) for v in ADAPTER_VENDORS)
    return f"Live fetch for availability is not supported for {vendor_label(vendor)}. Currently supported: {supported}."


def availability_fetch_start(*, connection: EmrConnection, request: AvailabilityRequest) -> Job:
    with transaction.atomic():
        job = Job.objects.create(
            organization_id=connection.organization_id,
            emr_connection=connection,
            kind=Job.Kind.AVAILABILITY_FETCH,
            params=request.params(),
        )
        job_enqueue(job=job)
    return job


def availability_fetch_payload(*, request: AvailabilityRequest | None, windows: list[dict] | None = None, error: str | None = None, appointment_count: int | None = None) -> dict:
    """``data`` of ``availability.live_fetch_completed``."""
    data: dict = {"success": error is None}
    if request is not None:
        data.update(
            start_date=request.first.isoformat(),
            end_date=request.last.isoformat(),
            provider_ids=list(request.provider_ids or ()),
            calculation_method=request.options.method,
        )
    if appointment_count is not None:
        data["appointment_count"] = appointment_count
    if error is not None:
        data["error"] = error
    data["availability"] = windows or []
    return data


def _fail(job: Job, request: AvailabilityRequest | None, error: str, *, auth: bool = False) -> None:
    connection = job.emr_connection
    with transaction.atomic():
        job_finish(job=job, status=Job.Status.FAILED, error=error)
        event_emit(
            organization_id=job.organization_id,
            type=AVAILABILITY_EVENT,
            data=availability_fetch_payload(request=request, error=error),
            job_id=job.pk,
            access_token_reference_id=connection.access_token_reference_id if connection else None,
        )
    if auth and connection is not None:
        emr_connection_login_required(connection=connection, error=error)


def _request_of(job: Job) -> AvailabilityRequest | None:
    try:
        return AvailabilityRequest.from_params(job.params or {})
    except (KeyError, ValueError, TypeError):
        return None


def _run(job: Job, request: AvailabilityRequest) -> None:
    connection = job.emr_connection
    fetch = FetchRequest(search_by="provider", start_date=request.first, end_date=request.last, provider_ids=request.provider_ids or ())
    try:
        scope, fetched, stats = appointments_fetch_remote(connection=connection, request=fetch)
    except AdapterError as exc:
        _fail(job, request, str(exc), auth=isinstance(exc, EmrAuthError))
        return
    with transaction.atomic():
        result = appointments_store(connection=connection, scope=scope, fetched=fetched, job_id=job.pk)
        windows = availability_compute(connection=connection, request=request)
        counts = {**result.counts(), "windows": len(windows), "requests": stats.requests, "pages": stats.pages}
        job_finish(job=job, status=Job.Status.SUCCEEDED, counts=counts)
        event_emit(
            organization_id=job.organization_id,
            type=AVAILABILITY_EVENT,
            data=availability_fetch_payload(request=request, windows=windows, appointment_count=len(result.appointments)),
            job_id=job.pk,
            access_token_reference_id=connection.access_token_reference_id,
        )
    emr_connection_healthy(connection=connection)


def run_availability_fetch(job: Job) -> None:
    """The job's runner (``job_run`` calls it; the admin's retry queues it again)."""
    connection = job.emr_connection
    request = _request_of(job)
    if connection is None or not connection.is_active:
        _fail(job, request, "The EMR connection of this job is inactive or was deleted.")
        return
    if not vendor_has_adapter(connection.vendor):
        _fail(job, request, availability_unsupported_message(connection.vendor))
        return
    if request is None:
        _fail(job, None, "The job's parameters are not a valid availability request.")
        return
    try:
        _run(job, request)
    except Exception as exc:  # a bug, not an EMR failure: the client still hears that it failed
        logger.exception("availability fetch %s crashed", job.pk)
        _fail(job, request, f"Internal error while running the job ({type(exc).__name__}).")


job_runner_register(Job.Kind.AVAILABILITY_FETCH, run_availability_fetch)
