"""The bulk upsert into the appointment cache, without HTTP: a fixed number of queries whatever
the size, and the rules for providers, locations and visit types."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext

from booking.models import Appointment, AppointmentResource, Resource, Service
from emr.adapters.base import EmrAppointment
from emr.models import VisitType
from emr.services.appointments import BATCH, SYNCED_FIELDS, FetchScope, appointments_store
from emr.services.connections import emr_connection_create
from tenants.crypto import encrypt_text
from tenants.models import Delivery, Event, WebhookEndpoint
from tenants.webhooks.services import event_body_serialize
from tests.conftest import make_tenant

START = datetime(2025, 6, 2, 13, tzinfo=UTC)
SCOPE = FetchScope(search_by="date_range", start=START - timedelta(days=1), end=START + timedelta(days=30))


def appointments(n: int, *, providers: int = 5, prefix: str = "A") -> list[EmrAppointment]:
    return [
        EmrAppointment(
            ehr_id=f"{prefix}{i}",
            start=START + timedelta(minutes=20 * i),
            end=START + timedelta(minutes=20 * i + 20),
            status="booked",
            occupies_time=True,
            visit_type_code=("FU", "NP", "OV")[i % 3],
            visit_type_display=("Follow-Up", "New Patient", "Office Visit")[i % 3],
            patient_mrn=f"M{i % 50}",
            patient_name=f"Patient {i % 50}",
            provider_ehr_id=f"P{i % providers}",
            provider_name=f"Doctor {i % providers}",
            secondary_provider_ehr_id=f"P{(i + 1) % providers}" if i % 4 == 0 else None,
            location_ehr_id=f"L{i % 2}",
            location_name=f"Site {i % 2}",
        )
        for i in range(n)
    ]


def queries_for(tenant, items) -> int:
    with CaptureQueriesContext(connection) as captured:
        appointments_store(connection=tenant.emr_connection, scope=SCOPE, fetched=items)
    return len(captured)


def test_query_count_does_not_grow_with_the_number_of_appointments(db):
    small, large = make_tenant("Small"), make_tenant("Large")
    created_small = queries_for(small, appointments(10))
    created_large = queries_for(large, appointments(600))
    # Only bulk_create batches grow (500 rows, or what SQLite's 999-parameter limit allows);
    # nothing is written or read per appointment.
    fields = [f for f in Appointment._meta.concrete_fields]
    batch = min(500, connection.ops.bulk_batch_size(fields, appointments(1)) or 500)
    link_batch = min(500, connection.ops.bulk_batch_size(AppointmentResource._meta.concrete_fields, appointments(1)) or 500)
    # The appointment.created events of the new appointments are bulk-inserted too.
    event_batch = min(500, connection.ops.bulk_batch_size(Event._meta.concrete_fields, [None]) or 500)
    grown = created_large - created_small
    assert grown <= (600 // batch + 1) + (750 // link_batch + 1) + (600 // event_batch + 1), (created_small, created_large, batch)
    assert created_large < 600 / 10
    assert Appointment.objects.filter(organization=large.organization).count() == 600
    again_small = queries_for(small, appointments(10))
    again_large = queries_for(large, appointments(600))
    assert again_large == again_small  # nothing changed: read, compare, done


def statements(n: int, fields) -> int:
    """The statements a bulk write of ``n`` rows takes: ``BATCH`` rows each, or fewer where the
    database limits the parameters of one statement (SQLite)."""
    size = min(BATCH, max(connection.ops.bulk_batch_size(list(fields), [None] * n), 1))
    return -(-n // size)


def event_statements(n: int) -> int:
    """Inserting ``n`` events and their ``n`` deliveries (one endpoint)."""
    return statements(n, Event._meta.concrete_fields) + statements(n, Delivery._meta.concrete_fields)


def with_endpoint(name: str):
    tenant = make_tenant(name)
    WebhookEndpoint.objects.create(organization=tenant.organization, url="https://hooks.example/emr", secret_encrypted=encrypt_text("whsec_x"))
    return tenant


def assert_events_are_their_own_bytes(events, appointment_ids):
    """One event per appointment, each with its own id and stored body: the exact compact JSON
    that is signed and POSTed, naming its appointment."""
    assert sorted(e.payload["data"]["id"] for e in events) == sorted(str(pk) for pk in appointment_ids)
    assert len({e.id for e in events}) == len({e.body for e in events}) == len(events)
    for event in events:
        assert json.loads(event.body) == event.payload and event.payload["id"] == event.id
        assert event.body == event_body_serialize(json.loads(event.body))


def test_changed_appointments_are_written_and_announced_in_a_fixed_number_of_queries(db):
    small, large = with_endpoint("Small"), with_endpoint("Large")
    appointments_store(connection=small.emr_connection, scope=SCOPE, fetched=appointments(10))
    appointments_store(connection=large.emr_connection, scope=SCOPE, fetched=appointments(300))
    rescheduled = lambda items: [replace(a, start=a.start + timedelta(hours=1), end=a.end + timedelta(hours=1)) for a in items]  # noqa: E731

    small_queries = queries_for(small, rescheduled(appointments(10)))
    large_queries = queries_for(large, rescheduled(appointments(300)))

    events = list(Event.objects.filter(organization=large.organization, type="appointment.updated"))
    assert len(events) == 300 and Delivery.objects.filter(event__in=events).count() == 300
    assert_events_are_their_own_bytes(events, Appointment.objects.filter(organization=large.organization).values_list("pk", flat=True))
    update_fields = [Appointment._meta.pk] * 2 + [Appointment._meta.get_field(f) for f in (*SYNCED_FIELDS, "updated_at")]
    # Only the bulk statements' batches grow (none at all where a statement takes 500 rows).
    allowance = (statements(300, update_fields) - statements(10, update_fields)) + (event_statements(300) - event_statements(10))
    assert large_queries - small_queries <= allowance, (small_queries, large_queries, allowance)
    assert large_queries < 300 / 10


def test_vanished_appointments_are_cancelled_and_announced_in_a_fixed_number_of_queries(db):
    small, large = with_endpoint("Small"), with_endpoint("Large")
    appointments_store(connection=small.emr_connection, scope=SCOPE, fetched=appointments(10))
    appointments_store(connection=large.emr_connection, scope=SCOPE, fetched=appointments(300))

    small_queries = queries_for(small, [])  # the EMR answers nothing: every one of them is gone
    large_queries = queries_for(large, [])

    assert set(Appointment.objects.filter(organization=large.organization).values_list("status", flat=True)) == {Appointment.Status.CANCELLED}
    events = list(Event.objects.filter(organization=large.organization, type="appointment.cancelled"))
    assert len(events) == 300 and Delivery.objects.filter(event__in=events).count() == 300
    assert_events_are_their_own_bytes(events, Appointment.objects.filter(organization=large.organization).values_list("pk", flat=True))
    assert {e.payload["data"]["status"] for e in events} == {"cancelled"}
    assert large_queries - small_queries <= event_statements(300) - event_statements(10), (small_queries, large_queries)
    assert large_queries < 300 / 10


def test_different_changes_in_one_fetch_are_all_written(db):
    """Rows changed in different fields are updated together: each gets its own new values and
    keeps the rest."""
    tenant = make_tenant("Clinic")
    items = appointments(6)
    appointments_store(connection=tenant.emr_connection, scope=SCOPE, fetched=items)
    moved = replace(items[0], start=items[0].start + timedelta(hours=2), end=items[0].end + timedelta(hours=2))
    cancelled = replace(items[1], status="cancelled", occupies_time=False)
    reassigned = replace(items[2], provider_ehr_id="P4", provider_name="Doctor 4")
    renamed = replace(items[3], patient_name="Renamed Patient", reason="Second opinion")
    result = appointments_store(connection=tenant.emr_connection, scope=SCOPE, fetched=[moved, cancelled, reassigned, renamed, *items[4:]])
    assert (result.updated, result.unchanged) == (4, 2)

    rows = {a.ehr_appointment_id: a for a in Appointment.objects.filter(emr_connection=tenant.emr_connection).select_related("primary_provider")}
    assert (rows["A0"].start, rows["A0"].end, rows["A0"].status, rows["A0"].reason) == (moved.start, moved.end, Appointment.Status.BOOKED, items[0].reason)
    assert (rows["A1"].status, rows["A1"].ehr_status, rows["A1"].start) == (Appointment.Status.CANCELLED, "cancelled", items[1].start)
    assert rows["A1"].cancelled_at is not None and rows["A0"].cancelled_at is None
    assert rows["A2"].primary_provider.ehr_id == "P4" and rows["A2"].patient_name == items[2].patient_name
    assert set(AppointmentResource.objects.filter(appointment=rows["A2"]).values_list("resource__ehr_id", flat=True)) == {"P4"}
    assert (rows["A3"].patient_name, rows["A3"].reason, rows["A3"].start) == ("Renamed Patient", "Second opinion", items[3].start)
    assert rows["A3"].primary_provider.ehr_id == "P3"


def test_change_events_go_to_the_endpoints_that_want_their_type(db):
    tenant = with_endpoint("Clinic")
    everything = WebhookEndpoint.objects.get(organization=tenant.organization)
    cancellations = WebhookEndpoint.objects.create(
        organization=tenant.organization, url="https://hooks.example/cancelled", secret_encrypted=encrypt_text("whsec_y"),
        event_types=["appointment.cancelled"],
    )
    WebhookEndpoint.objects.create(organization=tenant.organization, url="https://hooks.example/off", secret_encrypted=encrypt_text("whsec_z"), is_active=False)
    other = with_endpoint("Other")
    items = appointments(6)
    appointments_store(connection=tenant.emr_connection, scope=SCOPE, fetched=items)
    appointments_store(connection=other.emr_connection, scope=SCOPE, fetched=items)
    # Two rescheduled, two gone, two unchanged.
    answer = [replace(a, start=a.start + timedelta(hours=1), end=a.end + timedelta(hours=1)) for a in items[:2]] + items[4:]
    appointments_store(connection=tenant.emr_connection, scope=SCOPE, fetched=answer)

    sent = {(d.endpoint_id, d.event.type, d.event.payload["data"]["ehr_appointment_id"]) for d in Delivery.objects.select_related("event")}
    other_endpoint = WebhookEndpoint.objects.get(organization=other.organization)
    # The first fetch saw every appointment for the first time: appointment.created each.
    created = {(endpoint.pk, "appointment.created", f"A{n}") for endpoint in (everything, other_endpoint) for n in range(6)}
    assert sent == created | {
        (everything.pk, "appointment.updated", "A0"), (everything.pk, "appointment.updated", "A1"),
        (everything.pk, "appointment.cancelled", "A2"), (everything.pk, "appointment.cancelled", "A3"),
        (cancellations.pk, "appointment.cancelled", "A2"), (cancellations.pk, "appointment.cancelled", "A3"),
    }
    assert set(Delivery.objects.filter(endpoint=other_endpoint).values_list("organization", flat=True)) == {other.organization.pk}
    assert set(Delivery.objects.exclude(endpoint=other_endpoint).values_list("organization", flat=True)) == {tenant.organization.pk}
    assert all(d.status == Delivery.Status.PENDING and d.next_attempt_at == d.event.created_at for d in Delivery.objects.select_related("event"))


def active_ids(connection) -> set[str]:
    return set(
        Appointment.objects.filter(emr_connection=connection).exclude(status=Appointment.Status.CANCELLED).values_list("ehr_appointment_id", flat=True)
    )


def test_a_fetch_never_cancels_another_connections_appointments(db):
    """Two EMR connections of one organization, appointments at the same times: what the EMR of
    the second answers (here: nothing) says nothing about the first's appointments."""
    tenant = make_tenant("Two EMRs")
    first = tenant.emr_connection
    second = emr_connection_create(organization=tenant.organization, vendor="fhir", name="Second EMR").connection
    appointments_store(connection=first, scope=SCOPE, fetched=appointments(8))
    appointments_store(connection=second, scope=SCOPE, fetched=appointments(8, prefix="B"))

    for scope in (SCOPE, FetchScope(search_by="provider", start=SCOPE.start, end=SCOPE.end, provider_ids=("P0", "P1")),
                  FetchScope(search_by="mrn", mrn="M1")):
        appointments_store(connection=second, scope=scope, fetched=[])
    assert active_ids(first) == {f"A{i}" for i in range(8)}
    assert active_ids(second) == set()


def test_a_provider_fetch_cancels_only_that_providers_vanished_appointments(db):
    """The scope of a provider fetch is the appointments where one of its providers is the
    primary or the secondary performer; the other providers' appointments in those days are not
    in the answer (they were not asked for) and stay as they are."""
    tenant = make_tenant("Clinic")
    items = appointments(20, providers=5)  # Ai: primary P(i % 5), secondary P(i % 5 + 1) when i % 4 == 0
    appointments_store(connection=tenant.emr_connection, scope=SCOPE, fetched=items)
    ones = {a.ehr_id for a in items if "P1" in (a.provider_ehr_id, a.secondary_provider_ehr_id)}
    assert {"A0", "A1", "A6"} <= ones and "A2" not in ones  # A0: P1 is its secondary
    kept = next(a for a in items if a.provider_ehr_id == "P1")
    scope = FetchScope(search_by="provider", start=SCOPE.start, end=SCOPE.end, provider_ids=("P1",))

    result = appointments_store(connection=tenant.emr_connection, scope=scope, fetched=[kept])
    assert result.cancelled_missing == len(ones) - 1
    assert active_ids(tenant.emr_connection) == {a.ehr_id for a in items} - ones | {kept.ehr_id}


def test_providers_locations_and_visit_types_are_created_once_and_linked(db):
    tenant = make_tenant("Clinic")
    result = appointments_store(connection=tenant.emr_connection, scope=SCOPE, fetched=appointments(12, providers=3))
    assert (result.created, result.providers_created, result.locations_created, result.visit_types_created) == (12, 3, 2, 3)
    doctor = Resource.objects.get(organization=tenant.organization, ehr_id="P0")
    assert (doctor.name, doctor.type, doctor.emr_connection_id) == ("Doctor 0", "provider", tenant.emr_connection.pk)
    first = Appointment.objects.get(ehr_appointment_id="A0")
    assert first.primary_provider.ehr_id == "P0" and first.secondary_provider.ehr_id == "P1"
    assert set(AppointmentResource.objects.filter(appointment=first).values_list("resource__ehr_id", flat=True)) == {"P0", "P1"}
    assert first.service.visit_type == "FU" and first.appointment_type == "FU"
    assert VisitType.objects.get(emr_connection=tenant.emr_connection, code="FU").service == first.service
    assert Service.objects.filter(organization=tenant.organization, visit_type="FU").count() == 1


def test_a_visit_type_reuses_the_organizations_service_with_that_code(db):
    tenant = make_tenant("Clinic")
    existing = Service.objects.create(organization=tenant.organization, name="Follow-up (ours)", duration=25, visit_type="FU")
    appointments_store(connection=tenant.emr_connection, scope=SCOPE, fetched=appointments(3))
    assert Appointment.objects.get(ehr_appointment_id="A0").service == existing
    assert Service.objects.filter(organization=tenant.organization, visit_type="FU").count() == 1


def test_another_connections_provider_is_never_linked(db):
    tenant = make_tenant("Clinic")
    other = emr_connection_create(organization=tenant.organization, vendor="fhir", name="Other EMR").connection
    theirs = Resource.objects.create(organization=tenant.organization, name="Theirs", type="provider", ehr_id="P0", emr_connection=other)
    appointments_store(connection=tenant.emr_connection, scope=SCOPE, fetched=appointments(5, providers=2))
    ours = Resource.objects.get(emr_connection=tenant.emr_connection, ehr_id="P0")
    assert ours.pk != theirs.pk
    mine = Appointment.objects.filter(emr_connection=tenant.emr_connection)
    assert mine.filter(primary_provider=ours).exists()
    assert not mine.filter(primary_provider=theirs).exists() and not mine.filter(secondary_provider=theirs).exists()
    assert not AppointmentResource.objects.filter(resource=theirs).exists()
    assert mine.filter(primary_provider__ehr_id="P1").exists()


def test_same_ehr_ids_in_two_organizations_stay_apart(db):
    a, b = make_tenant("A"), make_tenant("B")
    appointments_store(connection=a.emr_connection, scope=SCOPE, fetched=appointments(4))
    appointments_store(connection=b.emr_connection, scope=SCOPE, fetched=appointments(4))
    for tenant in (a, b):
        rows = Appointment.objects.filter(organization=tenant.organization)
        assert rows.count() == 4
        assert set(rows.values_list("primary_provider__organization", flat=True)) == {tenant.organization.pk}
        assert set(rows.values_list("location__organization", flat=True)) == {tenant.organization.pk}


def test_duplicate_ids_in_one_answer_are_stored_once(db):
    tenant = make_tenant("Clinic")
    items = appointments(3)
    result = appointments_store(connection=tenant.emr_connection, scope=SCOPE, fetched=items + items[:2])
    assert result.created == 3 and Appointment.objects.count() == 3


def test_concurrent_fetches_of_one_connection_do_not_collide(requires_postgres, transactional_db):
    """Two workers storing the same EMR answer at once: the second waits for the first and finds
    its rows, so neither fails on the unique key and nothing is duplicated."""
    import threading

    from django.db import connections

    tenant = make_tenant("Race")
    # Providers, locations and visit types exist already, so nothing else makes the two wait.
    appointments_store(connection=tenant.emr_connection, scope=FetchScope(search_by="mrn", mrn="none"), fetched=appointments(5, prefix="W"))
    items = appointments(300)
    barrier = threading.Barrier(2)
    outcomes: list = []

    def worker():
        try:
            barrier.wait(timeout=10)
            result = appointments_store(connection=tenant.emr_connection, scope=SCOPE, fetched=items)
            outcomes.append((result.created, result.unchanged))
        except Exception as exc:  # noqa: BLE001 - the assertion below reports it
            outcomes.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes, key=str) == [(0, 300), (300, 0)], outcomes
    assert Appointment.objects.filter(emr_connection=tenant.emr_connection).count() == 305
    assert Resource.objects.filter(organization=tenant.organization).count() == 5
