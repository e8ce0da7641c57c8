"""The admin writes booking objects through the same services as ``/v3/``: a delete the API
refuses with 409 (a location, service or resource with upcoming appointments) is refused by the
admin too, with a message, and every row stays; saves invalidate cached availability."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from booking.models import Appointment, AppointmentResource, Location, Resource, ResourceService, Service
from tenants.models import Organization
from tests import factories as f
from tests.admin.forms import submit


@pytest.fixture
def staff(client, admin_world):
    client.force_login(admin_world.staff)
    return client


@pytest.fixture
def booked(admin_world):
    """Alpha's location, service and resource with one upcoming booked appointment."""
    org = admin_world.a.organization
    ResourceService.objects.create(organization=org, resource=admin_world.a_resource, service=admin_world.a_service,
                                   location=admin_world.a_location)
    start = timezone.now() + timedelta(days=2)
    appointment = Appointment.objects.create(
        organization=org, start=start, end=start + timedelta(minutes=30), service=admin_world.a_service,
        location=admin_world.a_location, customer_name="Avery Johnson",
    )
    AppointmentResource.objects.create(appointment=appointment, resource=admin_world.a_resource)
    return appointment


KINDS = [("location", Location, "a_location"), ("service", Service, "a_service"), ("resource", Resource, "a_resource")]


def _version(world) -> int:
    return Organization.objects.get(pk=world.a.organization.pk).availability_version


@pytest.mark.parametrize("name,model,attr", KINDS, ids=[k[0] for k in KINDS])
def test_deleting_an_object_with_upcoming_appointments_is_refused_with_a_message(staff, admin_world, booked, name, model, attr):
    obj = getattr(admin_world, attr)
    api_answer = admin_world.a.v3().delete(f"/v3/{name}s/{obj.pk}")
    assert api_answer.status_code == 409
    response = staff.post(reverse(f"admin:booking_{name}_delete", args=[obj.pk]), {"post": "yes"}, follow=True)
    assert response.status_code == 200
    text = [str(m) for m in response.context["messages"]]
    assert any("Not deleted" in t and "1 upcoming appointment" in t for t in text), text
    assert model.objects.filter(pk=obj.pk).exists()
    booked.refresh_from_db()
    assert (booked.location_id, booked.service_id) == (admin_world.a_location.pk, admin_world.a_service.pk)
    assert list(booked.resource_links.values_list("resource_id", flat=True)) == [admin_world.a_resource.pk]


@pytest.mark.parametrize("name,model,attr", KINDS, ids=[k[0] for k in KINDS])
def test_bulk_delete_is_all_or_nothing(staff, admin_world, booked, name, model, attr):
    obj = getattr(admin_world, attr)
    free = {"location": lambda: f.LocationFactory(organization=admin_world.a.organization, name="Spare room site"),
            "service": lambda: f.ServiceFactory(organization=admin_world.a.organization, name="Spare service"),
            "resource": lambda: f.ResourceFactory(organization=admin_world.a.organization, name="Spare resource")}[name]()
    response = staff.post(reverse(f"admin:booking_{name}_changelist"),
                          {"action": "delete_selected", "_selected_action": [obj.pk, free.pk], "post": "yes"}, follow=True)
    text = [str(m) for m in response.context["messages"]]
    assert any("Nothing was deleted" in t for t in text), text
    assert not any("Successfully deleted" in t for t in text)
    assert set(model.objects.filter(pk__in=[obj.pk, free.pk]).values_list("pk", flat=True)) == {obj.pk, free.pk}
    booked.refresh_from_db()
    assert booked.location_id == admin_world.a_location.pk


def test_deleting_without_upcoming_appointments_goes_through_and_invalidates(staff, admin_world, booked):
    booked.status = Appointment.Status.CANCELLED
    booked.save()
    before = _version(admin_world)
    response = staff.post(reverse("admin:booking_location_delete", args=[admin_world.a_location.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Location.objects.filter(pk=admin_world.a_location.pk).exists()
    assert _version(admin_world) > before


def test_past_appointments_do_not_hold_a_delete(staff, admin_world, booked):
    booked.start, booked.end = timezone.now() - timedelta(days=3), timezone.now() - timedelta(days=3) + timedelta(minutes=30)
    booked.save()
    staff.post(reverse("admin:booking_service_delete", args=[admin_world.a_service.pk]), {"post": "yes"})
    assert not Service.objects.filter(pk=admin_world.a_service.pk).exists()


def test_a_save_invalidates_cached_availability(staff, admin_world):
    before = _version(admin_world)
    response = submit(staff, reverse("admin:booking_service_change", args=[admin_world.a_service.pk]), duration="45")
    assert response.status_code == 302
    assert Service.objects.get(pk=admin_world.a_service.pk).duration == 45
    assert _version(admin_world) > before


def test_changing_an_appointments_contact_details_emits_an_event(staff, admin_world, booked):
    from tenants.models import Event

    url = reverse("admin:booking_appointment_change", args=[booked.pk])
    response = submit(staff, url, customer_name="Avery J. Johnson", notes="Prefers mornings")
    assert response.status_code == 302
    booked.refresh_from_db()
    assert (booked.customer_name, booked.notes) == ("Avery J. Johnson", "Prefers mornings")
    event = Event.objects.filter(organization=admin_world.a.organization, type="appointment.updated").get()
    assert '"Avery J. Johnson"' in json.dumps(event.payload) and '"Prefers mornings"' in json.dumps(event.payload)
    # Saving again without a change emits nothing more.
    assert submit(staff, url).status_code == 302
    assert Event.objects.filter(organization=admin_world.a.organization, type="appointment.updated").count() == 1


def _rows(world) -> dict:
    org = world.a.organization
    return {model.__name__: sorted(map(str, model.objects.filter(organization=org).values_list("pk", flat=True)))
            for model in (Location, Service, Resource, ResourceService, Appointment)} | {
        "AppointmentResource": sorted(AppointmentResource.objects.filter(appointment__organization=org)
                                      .values_list("appointment_id", "resource_id"))}


@pytest.mark.parametrize("name,model,attr", KINDS, ids=[k[0] for k in KINDS])
@pytest.mark.parametrize("how", ["single", "bulk"])
def test_a_refused_delete_keeps_every_row_it_would_have_touched(staff, admin_world, booked, name, model, attr, how):
    obj = getattr(admin_world, attr)
    before = _rows(admin_world)
    if how == "single":
        staff.post(reverse(f"admin:booking_{name}_delete", args=[obj.pk]), {"post": "yes"}, follow=True)
    else:
        staff.post(reverse(f"admin:booking_{name}_changelist"),
                   {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"}, follow=True)
    assert _rows(admin_world) == before
    booked.refresh_from_db()
    assert (booked.location_id, booked.service_id, booked.status) == (
        admin_world.a_location.pk, admin_world.a_service.pk, Appointment.Status.BOOKED)
