"""The appointment cache: EMR appointments upserted in bulk into ``booking.Appointment``.

Keyed by (connection, ``ehr_appointment_id``). One fetch is a handful of queries whatever its size:
the providers, locations and visit types it names are resolved (and created when new) with one
query each, existing rows are read in chunks, and new and changed rows are written with
``bulk_create``/``bulk_update``; the ``appointment.created``/``appointment.updated``/
``appointment.cancelled`` events of the new and changed rows are inserted in bulk too, with their webhook deliveries (``events_emit``).
Appointments of the fetched scope that the EMR no longer returns are marked cancelled. Each EMR
appointment occupies its primary and secondary provider (``AppointmentResource`` rows), so it
blocks ``/v3/`` availability like any booking.

The cancel scope (``_scope_queryset``): the rows of *this* EMR connection only (another
connection of the organization has its own EMR and its own rows), still active, and

* ``date_range``: starting in the fetched days (midnight to midnight in the connection's zone);
* ``provider``: those of them where one of the fetched providers is the primary or the secondary
  provider, which is what the EMR's ``practitioner`` search returns (any participant);
* ``mrn``: every appointment of that patient, past and future. Decided so because an MRN search
  asks the EMR for the patient's whole history with no date bound, so an appointment missing
  from the answer is gone from the EMR (deleted, entered in error, moved to a merged patient)
  however old it is. The consequence to know: an EMR that silently bounds MRN searches by date
  (the sandbox serves 30 days back) makes older cached appointments of the patient cancelled.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from booking.models import Appointment, AppointmentResource, Location, Resource, Service
from booking.services.invalidation import availability_invalidate
from emr.adapters.base import EmrAppointment
from emr.models import EmrConnection, VisitStatus, VisitType
from emr.selectors import ehr_rows
from tenants.events import NewEvent, events_emit

CHUNK = 1000
BATCH = 500
DEFAULT_VISIT_MINUTES = 15
# Fields an EMR fetch owns on a cached appointment.
SYNCED_FIELDS = (
    "status",
    "start",
    "end",
    "service",
    "location",
    "patient_mrn",
    "patient_name",
    "reason",
    "ehr_status",
    "appointment_type",
    "primary_provider",
    "secondary_provider",
    "ehr_location_name",
    "ehr_created_at",
    "ehr_created_by",
    "ehr_locked",
    "cancelled_at",
)
VANISHED_STATUS = "cancelled"
_ATTNAMES = {name: Appointment._meta.get_field(name).attname for name in SYNCED_FIELDS}


@dataclass(frozen=True)
class FetchScope:
    """What a fetch asked the EMR for; appointments of this scope missing from the answer are
    cancelled."""

    search_by: str  # date_range | mrn | provider
    start: datetime | None = None
    end: datetime | None = None  # exclusive
    mrn: str = ""
    provider_ids: tuple[str, ...] = ()


@dataclass
class StoreResult:
    appointments: list[Appointment] = field(default_factory=list)  # in the order the EMR gave them
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    cancelled_missing: int = 0
    providers_created: int = 0
    locations_created: int = 0
    visit_types_created: int = 0
    resources: dict = field(default_factory=dict)  # pk -> Resource, for rendering without queries
    locations: dict = field(default_factory=dict)  # pk -> Location

    def counts(self) -> dict:
        return {
            "fetched": len(self.appointments),
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "cancelled_missing": self.cancelled_missing,
            "providers_created": self.providers_created,
            "locations_created": self.locations_created,
            "visit_types_created": self.visit_types_created,
        }


def _chunks(items: Sequence, size: int = CHUNK) -> Iterable[Sequence]:
    for index in range(0, len(items), size):
        yield items[index : index + size]


# --- references ------------------------------------------------------------------------------


# model -> (the name of an unnamed one, the StoreResult counter, fields of its own)
_REFERENCES = {
    Resource: ("Provider", "providers_created", {"type": Resource.Type.PROVIDER}),
    Location: ("Location", "locations_created", {}),
}


def ehr_references_resolve(
    *, model: type[Resource] | type[Location], connection: EmrConnection, names: dict[str, str],
    result: StoreResult | None = None,
) -> dict:
    """EHR id → this connection's provider resource or location (``ehr_rows``), creating the ones
    not seen before, named ``names[ehr_id]`` (else "Provider <id>" / "Location <id>")."""
    if not names:
        return {}
    unnamed, counter, own_fields = _REFERENCES[model]
    existing = ehr_rows(model=model, connection=connection, ehr_ids=names)
    missing = [ehr_id for ehr_id in names if ehr_id not in existing]
    if missing:
        model.objects.bulk_create(
            [
                model(
                    organization_id=connection.organization_id,
                    name=(names[ehr_id] or f"{unnamed} {ehr_id}")[:200],
                    ehr_id=ehr_id,
                    timezone=connection.timezone,
                    emr_connection=connection,
                    **own_fields,
                )
                for ehr_id in missing
            ],
            batch_size=BATCH,
            ignore_conflicts=True,
        )
        existing = ehr_rows(model=model, connection=connection, ehr_ids=names)
        if result is not None:
            setattr(result, counter, getattr(result, counter) + len(missing))
    return existing


def visit_types_resolve(
    *, connection: EmrConnection, seen: dict[str, tuple[str, int]], result: StoreResult | None = None
) -> dict[str, VisitType]:
    """Visit-type code → the connection's ``VisitType`` (and its ``Service``), creating new ones.

    ``seen`` maps code → (description, typical minutes)."""
    if not seen:
        return {}
    org_id = connection.organization_id
    existing = {vt.code: vt for vt in VisitType.objects.filter(emr_connection=connection, code__in=list(seen))}
    missing = [code for code in seen if code not in existing]
    if missing:
        services = {}
        for service in Service.objects.filter(organization_id=org_id, visit_type__in=missing).order_by("created_at"):
            services.setdefault(service.visit_type, service)
        new_services = [
            Service(
                organization_id=org_id,
                name=(seen[code][0] or code)[:200],
                duration=max(1, seen[code][1] or DEFAULT_VISIT_MINUTES),
                visit_type=code,
            )
            for code in missing
            if code not in services
        ]
        Service.objects.bulk_create(new_services)
        services.update({s.visit_type: s for s in new_services})
        VisitType.objects.bulk_create(
            [
                VisitType(
                    organization_id=org_id,
                    emr_connection=connection,
                    code=code,
                    description=seen[code][0][:255],
                    service=services.get(code),
                )
                for code in missing
            ],
            ignore_conflicts=True,
        )
        existing = {vt.code: vt for vt in VisitType.objects.filter(emr_connection=connection, code__in=list(seen))}
        if result is not None:
            result.visit_types_created += len(missing)
    stale = [vt for code, vt in existing.items() if seen[code][0] and vt.description != seen[code][0][:255]]
    for vt in stale:
        vt.description = seen[vt.code][0][:255]
    if stale:
        VisitType.objects.bulk_update(stale, ["description"])
    return existing


def visit_statuses_resolve(*, connection: EmrConnection, codes: Iterable[str]) -> None:
    """Record the statuses the EMR's appointments carry (``VisitStatus``), described with FHIR's
    names where they are FHIR's; existing rows (and their edited descriptions) are kept."""
    from emr.representation import FHIR_APPOINTMENT_STATUSES

    known = dict(FHIR_APPOINTMENT_STATUSES)
    codes = {code for code in codes if code}
    if not codes:
        return
    existing = set(VisitStatus.objects.filter(emr_connection=connection, code__in=list(codes)).values_list("code", flat=True))
    VisitStatus.objects.bulk_create(
        [
            VisitStatus(organization_id=connection.organization_id, emr_connection=connection, code=code, description=known.get(code, ""))
            for code in sorted(codes - existing)
        ],
        ignore_conflicts=True,
    )


# --- the upsert ------------------------------------------------------------------------------


def _scope_queryset(*, connection: EmrConnection, scope: FetchScope):
    qs = Appointment.objects.filter(emr_connection=connection, ehr_appointment_id__isnull=False)
    if scope.search_by == "mrn":
        return qs.filter(patient_mrn=scope.mrn)
    qs = qs.filter(start__gte=scope.start, start__lt=scope.end)
    if scope.search_by == "provider":
        ids = list(scope.provider_ids)
        qs = qs.filter(Q(primary_provider__ehr_id__in=ids) | Q(secondary_provider__ehr_id__in=ids))
    return qs


def _links(appointment: Appointment) -> list[AppointmentResource]:
    ids = [rid for rid in (appointment.primary_provider_id, appointment.secondary_provider_id) if rid is not None]
    return [AppointmentResource(appointment=appointment, resource_id=rid) for rid in dict.fromkeys(ids)]


def appointments_store(
    *,
    connection: EmrConnection,
    scope: FetchScope,
    fetched: Sequence[EmrAppointment],
    emit_changes: bool = True,
    job_id: str | None = None,
) -> StoreResult:
    """Upsert ``fetched`` into the cache and cancel what vanished from ``scope``; one transaction,
    ending with ``availability_invalidate`` when anything changed. Emits ``appointment.created`` for
    appointments seen for the first time (whatever their status), ``appointment.updated`` /
    ``appointment.cancelled`` for cached appointments the fetch saw change, in bulk, as events of
    ``job_id`` (the fetch's job, so ``GET /v1/webhook-events?job_id=`` lists them)."""
    result = StoreResult()
    now = timezone.now()
    org_id = connection.organization_id
    unique = list({a.ehr_id: a for a in fetched}.values())

    with transaction.atomic():
        # One writer per connection at a time: a concurrent fetch of the same connection waits
        # here, then reads what the first one wrote instead of inserting the same rows again.
        list(EmrConnection.objects.select_for_update().filter(pk=connection.pk).only("pk"))
        provider_names: dict[str, str] = {}
        location_names: dict[str, str] = {}
        visit_types: dict[str, tuple[str, int]] = {}
        for item in unique:
            if item.provider_ehr_id:
                provider_names.setdefault(item.provider_ehr_id, item.provider_name)
            if item.secondary_provider_ehr_id:
                provider_names.setdefault(item.secondary_provider_ehr_id, item.secondary_provider_name)
            if item.location_ehr_id:
                location_names.setdefault(item.location_ehr_id, item.location_name)
            if item.visit_type_code:
                minutes = int((item.end - item.start).total_seconds() // 60)
                visit_types.setdefault(item.visit_type_code, (item.visit_type_display, minutes))
        providers = ehr_references_resolve(model=Resource, connection=connection, names=provider_names, result=result)
        visit_statuses_resolve(connection=connection, codes=(item.status[:128] for item in unique))
        locations = ehr_references_resolve(model=Location, connection=connection, names=location_names, result=result)
        types = visit_types_resolve(connection=connection, seen=visit_types, result=result)
        result.resources = {r.pk: r for r in providers.values()}
        result.locations = {loc.pk: loc for loc in locations.values()}

        existing: dict[str, Appointment] = {}
        for chunk in _chunks([a.ehr_id for a in unique]):
            for appointment in Appointment.objects.filter(emr_connection=connection, ehr_appointment_id__in=chunk):
                existing[appointment.ehr_appointment_id] = appointment

        to_create: list[Appointment] = []
        to_update: list[Appointment] = []
        changed_fields: set[str] = set()  # attnames changed on any row
        relink: list[Appointment] = []
        changed_events: list[tuple[str, Appointment]] = []
        for item in unique:
            primary = providers.get(item.provider_ehr_id) if item.provider_ehr_id else None
            secondary = providers.get(item.secondary_provider_ehr_id) if item.secondary_provider_ehr_id else None
            if secondary is not None and primary is not None and secondary.pk == primary.pk:
                secondary = None
            location = locations.get(item.location_ehr_id) if item.location_ehr_id else None
            visit_type = types.get(item.visit_type_code)
            status = Appointment.Status.BOOKED if item.occupies_time else Appointment.Status.CANCELLED
            values = {
                "status": status,
                "start": item.start,
                "end": item.end,
                "service_id": visit_type.service_id if visit_type else None,
                "location_id": location.pk if location else None,
                "patient_mrn": item.patient_mrn,
                "patient_name": item.patient_name,
                "reason": item.reason,
                "ehr_status": item.status[:128],
                "appointment_type": item.visit_type_code,
                "primary_provider_id": primary.pk if primary else None,
                "secondary_provider_id": secondary.pk if secondary else None,
                "ehr_location_name": item.location_name,
                "ehr_locked": item.locked,
            }
            current = existing.get(item.ehr_id)
            if current is None:
                appointment = Appointment(
                    organization_id=org_id,
                    source=Appointment.Source.EMR,
                    emr_connection=connection,
                    ehr_appointment_id=item.ehr_id,
                    ehr_created_at=item.created_at,
                    ehr_created_by=item.created_by,
                    cancelled_at=now if status == Appointment.Status.CANCELLED else None,
                    **values,
                )
                to_create.append(appointment)
                result.appointments.append(appointment)
                if emit_changes:
                    changed_events.append(("appointment.created", appointment))
                continue
            # What a fetch doesn't know (created_by outside MRN searches) is kept, not erased.
            if item.created_at is not None:
                values["ehr_created_at"] = item.created_at
            if item.created_by:
                values["ehr_created_by"] = item.created_by
            if status == Appointment.Status.CANCELLED:
                values["cancelled_at"] = current.cancelled_at or now
            else:
                values["cancelled_at"] = None
            diff = {k: v for k, v in values.items() if getattr(current, k) != v}
            result.appointments.append(current)
            if not diff:
                result.unchanged += 1
                continue
            providers_changed = "primary_provider_id" in diff or "secondary_provider_id" in diff
            became_cancelled = diff.get("status") == Appointment.Status.CANCELLED
            changed_fields.update(diff)
            for key, value in diff.items():
                setattr(current, key, value)
            current.updated_at = now
            to_update.append(current)
            if providers_changed:
                relink.append(current)
            if emit_changes:
                changed_events.append(("appointment.cancelled" if became_cancelled else "appointment.updated", current))

        Appointment.objects.bulk_create(to_create, batch_size=BATCH)
        if to_update:
            # Only the fields some row changed: Django builds one CASE branch per row and field,
            # so writing all of SYNCED_FIELDS when a fetch saw statuses change costs many times
            # the work (rows where such a field did not change get their current value).
            fields = [name for name in SYNCED_FIELDS if _ATTNAMES[name] in changed_fields]
            Appointment.objects.bulk_update(to_update, [*fields, "updated_at"], batch_size=BATCH)
        if relink:
            for chunk in _chunks([a.pk for a in relink]):
                AppointmentResource.objects.filter(appointment_id__in=chunk).delete()
        links = [link for appointment in [*to_create, *relink] for link in _links(appointment)]
        AppointmentResource.objects.bulk_create(links, batch_size=BATCH)
        result.created, result.updated = len(to_create), len(to_update)

        # Vanished: in the fetched scope, still active here, not in the EMR's answer.
        fetched_ids = {a.ehr_id for a in unique}
        vanished = [
            (pk, ehr_id)
            for pk, ehr_id in _scope_queryset(connection=connection, scope=scope)
            .exclude(status=Appointment.Status.CANCELLED)
            .values_list("pk", "ehr_appointment_id")
            if ehr_id not in fetched_ids
        ]
        for chunk in _chunks([pk for pk, _ in vanished]):
            Appointment.objects.filter(pk__in=chunk).update(
                status=Appointment.Status.CANCELLED, ehr_status=VANISHED_STATUS, cancelled_at=now, updated_at=now
            )
        result.cancelled_missing = len(vanished)
        if emit_changes and vanished:
            for chunk in _chunks([pk for pk, _ in vanished]):
                for appointment in Appointment.objects.filter(pk__in=chunk).select_related(
                    "primary_provider", "secondary_provider", "location"
                ):
                    changed_events.append(("appointment.cancelled", appointment))

        if to_create or to_update or vanished:
            if changed_events:
                from emr.representation import appointment_v1_representation, visit_type_descriptions

                descriptions = visit_type_descriptions(connection=connection)
                events_emit(
                    organization_id=org_id,
                    job_id=job_id,
                    events=[
                        NewEvent(
                            type=event_type,
                            access_token_reference_id=connection.access_token_reference_id,
                            data=appointment_v1_representation(
                                appointment,
                                connection=connection,
                                descriptions=descriptions,
                                resources=result.resources,
                                locations=result.locations,
                            ),
                        )
                        for event_type, appointment in changed_events
                    ],
                )
            availability_invalidate(organization_id=org_id)
    return result
