"""Live fetches and syncs as jobs: queue them, run them in a django-q2 worker, record the outcome
and emit the events (``appointment.live_fetch_completed``, ``access_token.login_required``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from emr.adapters import ADAPTER_VENDORS, vendor_has_adapter
from emr.adapters.base import AdapterError, EmrAdapter, EmrAppointment, EmrAuthError
from emr.models import EmrConnection, Job
from emr.representation import appointment_v1_representation, visit_type_descriptions
from emr.services.appointments import FetchScope, StoreResult, appointments_store
from emr.services.connections import (
    connection_adapter,
    emr_connection_healthy,
    emr_connection_login_required,
    vendor_label,
)
from tenants.errors import InvalidInput
from tenants.events import event_emit

logger = logging.getLogger(__name__)

LIVE_FETCH_EVENT = "appointment.live_fetch_completed"
MIDNIGHT = time(0, 0)


def unsupported_vendor_message(vendor: str) -> str:
    supported = ", ".join(vendor_label(v) for v in ADAPTER_VENDORS)
    return f"Live fetch for appointments is not supported for {vendor_label(vendor)}. Currently supported: {supported}."


@dataclass(frozen=True)
class FetchRequest:
    """A validated ``POST /v1/appointments/fetch`` body (also a job's ``params``)."""

    search_by: str = "date_range"
    start_date: date | None = None
    end_date: date | None = None
    mrn: str = ""
    provider_ids: tuple[str, ...] = ()

    def params(self) -> dict:
        if self.search_by == "mrn":
            return {"search_by": "mrn", "mrn": self.mrn}
        params = {"search_by": self.search_by, "start_date": self.start_date.isoformat(), "end_date": self.end_date.isoformat()}
        if self.search_by == "provider":
            params["provider_ids"] = list(self.provider_ids)
        return params

    @classmethod
    def from_params(cls, params: dict) -> FetchRequest:
        search_by = params.get("search_by") or "date_range"
        if search_by == "mrn":
            return cls(search_by="mrn", mrn=str(params["mrn"]))
        return cls(
            search_by=search_by,
            start_date=date.fromisoformat(params["start_date"]),
            end_date=date.fromisoformat(params["end_date"]),
            provider_ids=tuple(params.get("provider_ids") or ()),
        )

    def scope(self, *, zone: ZoneInfo) -> FetchScope:
        if self.search_by == "mrn":
            return FetchScope(search_by="mrn", mrn=self.mrn)
        return FetchScope(
            search_by=self.search_by,
            start=datetime.combine(self.start_date, MIDNIGHT, tzinfo=zone),
            end=datetime.combine(self.end_date + timedelta(days=1), MIDNIGHT, tzinfo=zone),
            provider_ids=self.provider_ids,
        )


def appointments_fetch_remote(*, connection: EmrConnection, request: FetchRequest, adapter: EmrAdapter | None = None):
    """Ask the EMR (no database writes, no transaction held open): ``(scope, fetched, stats)``.
    Raises ``AdapterError``."""
    scope = request.scope(zone=ZoneInfo(connection.timezone))
    own = adapter is None
    adapter = adapter or connection_adapter(connection=connection)
    try:
        if scope.search_by == "mrn":
            fetched = adapter.appointments_by_mrn(mrn=scope.mrn)
        elif scope.search_by == "provider":
            fetched = adapter.appointments_by_provider(provider_ehr_ids=scope.provider_ids, start=scope.start, end=scope.end)
        else:
            fetched = adapter.appointments_by_date_range(start=scope.start, end=scope.end)
    finally:
        if own:
            adapter.close()
    return scope, fetched, adapter.stats


def appointments_pull(
    *, connection: EmrConnection, request: FetchRequest, adapter: EmrAdapter | None = None, job_id: str | None = None
):
    """Fetch the request's appointments from the EMR and store them in the cache (no job, and no
    ``live_fetch_completed`` event; the change events of the store are ``job_id``'s):
    ``(StoreResult, fetched, stats)``. Raises ``AdapterError``. The live availability fetch uses
    this too."""
    scope, fetched, stats = appointments_fetch_remote(connection=connection, request=request, adapter=adapter)
    result = appointments_store(connection=connection, scope=scope, fetched=fetched, job_id=job_id)
    return result, fetched, stats


# --- the job lifecycle -----------------------------------------------------------------------


def job_enqueue(*, job: Job) -> None:
    """Queue the job's task once the current transaction commits (so a worker always finds the
    job row)."""

    def push():
        from django_q.tasks import async_task

        task_id = async_task("emr.tasks.job_run_task", job.pk, task_name=f"{job.kind} {job.pk}")
        Job.objects.filter(pk=job.pk).update(task_id=str(task_id or "")[:64])

    transaction.on_commit(push)


def live_fetch_start(*, connection: EmrConnection, request: FetchRequest) -> Job:
    """A queued live-fetch job; ``InvalidInput`` (nothing written) for a vendor without an adapter."""
    if not vendor_has_adapter(connection.vendor):
        raise InvalidInput(message=unsupported_vendor_message(connection.vendor))
    with transaction.atomic():
        job = Job.objects.create(
            organization_id=connection.organization_id,
            emr_connection=connection,
            kind=Job.Kind.APPOINTMENTS_FETCH,
            params=request.params(),
        )
        job_enqueue(job=job)
    return job


def providers_sync_start(*, connection: EmrConnection) -> Job:
    with transaction.atomic():
        job = Job.objects.create(
            organization_id=connection.organization_id,
            emr_connection=connection,
            kind=Job.Kind.PROVIDERS_SYNC,
            params={},
        )
        job_enqueue(job=job)
    return job


def job_retry(*, job: Job) -> bool:
    """Queue a failed job again (same id: its events accumulate). False when it isn't failed or
    no runner is registered for its kind."""
    if job.kind not in RUNNERS:
        return False
    with transaction.atomic():
        updated = Job.objects.filter(pk=job.pk, status=Job.Status.FAILED).update(
            status=Job.Status.QUEUED, error="", started_at=None, finished_at=None
        )
        if updated:
            job_enqueue(job=job)
    return bool(updated)


def _job_finish(job: Job, *, status: str, counts: dict | None = None, error: str = "") -> None:
    job.status, job.finished_at, job.error = status, timezone.now(), error[:5000]
    if counts is not None:
        job.counts = counts
    job.save(update_fields=["status", "finished_at", "error", "counts", "updated_at"])


def job_run(*, job_id: str) -> Job | None:
    """Run one job (the django-q2 task body). Never raises for EMR failures: they fail the job,
    which shows the reason; a second delivery of a finished job does nothing."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            logger.warning("job %s does not exist", job_id)
            return None
        if job.status in (Job.Status.SUCCEEDED, Job.Status.FAILED):
            return job
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.RUNNING, attempts=F("attempts") + 1, started_at=timezone.now(), finished_at=None, error=""
        )
    job.refresh_from_db()
    runner = RUNNERS.get(job.kind)
    if runner is None:
        _job_finish(job, status=Job.Status.FAILED, error=f"No runner for jobs of kind {job.kind}.")
        return job
    try:
        runner(job)
    except Exception as exc:  # a bug, not an EMR failure: fail the job visibly, keep the worker alive
        logger.exception("job %s crashed", job.pk)
        _job_fail(job, f"Internal error while running the job ({type(exc).__name__}).")
    return job


def _job_fail(job: Job, error: str, *, auth: bool = False) -> None:
    connection = job.emr_connection
    with transaction.atomic():
        _job_finish(job, status=Job.Status.FAILED, error=error)
        if job.kind == Job.Kind.APPOINTMENTS_FETCH:
            request = _request_of(job)
            event_emit(
                organization_id=job.organization_id,
                type=LIVE_FETCH_EVENT,
                data=live_fetch_payload(request=request, error=error),
                job_id=job.pk,
                access_token_reference_id=connection.access_token_reference_id if connection else None,
            )
    if auth and connection is not None:
        emr_connection_login_required(connection=connection, error=error)


def _request_of(job: Job) -> FetchRequest | None:
    try:
        return FetchRequest.from_params(job.params or {})
    except (KeyError, ValueError, TypeError):
        return None


def live_fetch_payload(
    *,
    request: FetchRequest | None,
    error: str | None = None,
    result: StoreResult | None = None,
    fetched: list[EmrAppointment] | None = None,
    connection: EmrConnection | None = None,
) -> dict:
    """``data`` of ``appointment.live_fetch_completed`` in seed 003's shapes (date range vs MRN;
    the provider mode reads like the date range with ``search_by`` and ``provider_ids``)."""
    data: dict = {"success": error is None}
    items: list[dict] = []
    if result is not None and connection is not None:
        descriptions = visit_type_descriptions(connection=connection)
        by_ehr_id = {a.ehr_id: a for a in fetched or []}
        mrn_mode = request is not None and request.search_by == "mrn"
        for appointment in result.appointments:
            item = appointment_v1_representation(
                appointment,
                connection=connection,
                descriptions=descriptions,
                resources=result.resources,
                locations=result.locations,
                millis=mrn_mode,
            )
            if mrn_mode:
                source = by_ehr_id.get(appointment.ehr_appointment_id)
                item["provider_first_name"] = source.provider_first_name if source else None
                item["provider_last_name"] = source.provider_last_name if source else None
            items.append(item)
    if request is not None and request.search_by == "mrn":
        data.update(search_by="mrn", mrn=request.mrn)
    elif request is not None:
        if request.search_by == "provider":
            data.update(search_by="provider", provider_ids=list(request.provider_ids))
    data["appointment_count"] = len(items)
    if request is not None and request.search_by != "mrn":
        data.update(start_date=request.start_date.isoformat(), end_date=request.end_date.isoformat())
    if error is not None:
        data["error"] = error
    data["appointments"] = items
    return data


def _run_appointments_fetch(job: Job) -> None:
    connection = job.emr_connection
    if connection is None or not connection.is_active:
        _job_fail(job, "The EMR connection of this job is inactive or was deleted.")
        return
    if not vendor_has_adapter(connection.vendor):
        _job_fail(job, unsupported_vendor_message(connection.vendor))
        return
    request = _request_of(job)
    if request is None:
        _job_fail(job, "The job's parameters are not a valid fetch request.")
        return
    try:
        scope, fetched, stats = appointments_fetch_remote(connection=connection, request=request)
    except AdapterError as exc:
        _job_fail(job, str(exc), auth=isinstance(exc, EmrAuthError))
        return
    with transaction.atomic():
        result = appointments_store(connection=connection, scope=scope, fetched=fetched, job_id=job.pk)
        counts = {
            **result.counts(),
            "requests": stats.requests,
            "pages": stats.pages,
            "tokens_minted": stats.tokens_minted,
            "retries_429": stats.retries_429,
            "retries_401": stats.retries_401,
        }
        _job_finish(job, status=Job.Status.SUCCEEDED, counts=counts)
        event_emit(
            organization_id=job.organization_id,
            type=LIVE_FETCH_EVENT,
            data=live_fetch_payload(request=request, result=result, fetched=fetched, connection=connection),
            job_id=job.pk,
            access_token_reference_id=connection.access_token_reference_id,
        )
    emr_connection_healthy(connection=connection)


def _run_providers_sync(job: Job) -> None:
    from emr.services.providers import providers_sync

    connection = job.emr_connection
    if connection is None or not connection.is_active:
        _job_fail(job, "The EMR connection of this job is inactive or was deleted.")
        return
    if not vendor_has_adapter(connection.vendor):
        _job_fail(job, f"There is no adapter to sync providers from {vendor_label(connection.vendor)}.")
        return
    try:
        counts = providers_sync(connection=connection)
    except AdapterError as exc:
        _job_fail(job, str(exc), auth=isinstance(exc, EmrAuthError))
        return
    _job_finish(job, status=Job.Status.SUCCEEDED, counts=counts)
    emr_connection_healthy(connection=connection)


RUNNERS: dict[str, Callable[[Job], None]] = {
    Job.Kind.APPOINTMENTS_FETCH: _run_appointments_fetch,
    Job.Kind.PROVIDERS_SYNC: _run_providers_sync,
}


def job_runner_register(kind: str, runner: Callable[[Job], None]) -> None:
    """Let another kind of job (e.g. the live availability fetch) run through ``job_run`` and the
    admin's retry: ``runner(job)`` does the work and finishes the job (``job_finish``)."""
    RUNNERS[kind] = runner


def job_finish(*, job: Job, status: str, counts: dict | None = None, error: str = "") -> None:
    _job_finish(job, status=status, counts=counts, error=error)


__all__ = [
    "FetchRequest",
    "appointments_fetch_remote",
    "appointments_pull",
    "job_finish",
    "job_runner_register",
    "job_retry",
    "job_run",
    "live_fetch_start",
    "providers_sync_start",
    "unsupported_vendor_message",
]
