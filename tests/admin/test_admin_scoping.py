"""Staff see, open and pick only their own organization's objects; superusers see all."""

from __future__ import annotations

import pytest
from django.urls import reverse

from booking.models import Location, ResourceService, Shift

CHANGELISTS = [
    "booking_location", "booking_service", "booking_resource", "booking_resourceservice", "booking_shift",
    "booking_allocation", "booking_block", "booking_recurringblock", "booking_appointment",
    "booking_externalcalendar", "tenants_apiclient", "tenants_event", "tenants_organization", "emr_emrconnection",
]


@pytest.fixture
def staff_client(client, admin_world):
    client.force_login(admin_world.staff)
    return client


@pytest.mark.parametrize("name", CHANGELISTS)
def test_every_changelist_opens_for_staff_and_hides_the_other_tenant(staff_client, admin_world, name):
    response = staff_client.get(reverse(f"admin:{name}_changelist"))
    assert response.status_code == 200
    content = response.content.decode()
    for text in ("Beta Harbour Rd", "Dr Beta Brown", "Beta Checkup", "Beta Clinic"):
        assert text not in content


def test_changelists_list_own_objects(staff_client, admin_world):
    content = staff_client.get(reverse("admin:booking_resource_changelist")).content.decode()
    assert "Dr Alpha Adams" in content and "Dr Beta Brown" not in content


@pytest.mark.parametrize("obj,name", [("b_location", "booking_location"), ("b_resource", "booking_resource"), ("b_service", "booking_service")])
def test_other_tenants_objects_cannot_be_opened(staff_client, admin_world, obj, name):
    target = getattr(admin_world, obj)
    response = staff_client.get(reverse(f"admin:{name}_change", args=[target.pk]), follow=True)
    assert "doesn’t exist" in response.content.decode() or "doesn't exist" in response.content.decode()
    assert target.name not in response.content.decode()
    assert staff_client.post(reverse(f"admin:{name}_delete", args=[target.pk]), {"post": "yes"}).status_code in (302, 404)
    assert type(target).objects.filter(pk=target.pk).exists()


def test_other_organization_cannot_be_opened(staff_client, admin_world):
    response = staff_client.get(reverse("admin:tenants_organization_change", args=[admin_world.b.organization.pk]), follow=True)
    assert "Beta Clinic" not in response.content.decode()


def test_foreign_key_choices_offer_only_own_objects(staff_client, admin_world):
    # The shift inline on the resource form renders a plain <select> of locations.
    content = staff_client.get(reverse("admin:booking_resource_change", args=[admin_world.a_resource.pk])).content.decode()
    assert "Alpha Main St" in content and "Beta Harbour Rd" not in content


@pytest.mark.parametrize("field,own,other", [("resource", "Dr Alpha Adams", "Dr Beta Brown"), ("service", "Alpha Checkup", "Beta Checkup"),
                                             ("location", "Alpha Main St", "Beta Harbour Rd")])
def test_autocomplete_offers_only_own_objects(staff_client, admin_world, field, own, other):
    response = staff_client.get(
        "/admin/autocomplete/", {"app_label": "booking", "model_name": "resourceservice", "field_name": field, "term": ""}
    )
    assert response.status_code == 200
    texts = [item["text"] for item in response.json()["results"]]
    assert own in texts and other not in texts


def test_list_filters_offer_only_own_objects(staff_client, admin_world):
    from tests import factories as f

    # Django hides a related filter with a single choice; give tenant A two of each.
    f.ServiceFactory(organization=admin_world.a.organization, name="Alpha Second Service")
    f.LocationFactory(organization=admin_world.a.organization, name="Alpha Second Site")
    content = staff_client.get(reverse("admin:booking_resourceservice_changelist")).content.decode()
    assert "Alpha Checkup" in content and "Beta Checkup" not in content
    assert "Alpha Main St" in content and "Beta Harbour Rd" not in content


def test_picking_another_tenants_object_by_tampering_is_refused(staff_client, admin_world):
    response = staff_client.post(
        reverse("admin:booking_resourceservice_add"),
        {"resource": admin_world.a_resource.pk, "service": admin_world.b_service.pk, "location": admin_world.a_location.pk},
    )
    assert response.status_code == 200  # the form comes back with an error
    assert "Select a valid choice" in response.content.decode()
    assert ResourceService.objects.count() == 0


def test_staff_creations_land_in_their_organization(staff_client, admin_world):
    response = staff_client.post(
        reverse("admin:booking_location_add"),
        {"name": "Alpha Annex", "timezone": "UTC", "weekly_availability": "[]", "hold_expiration_minutes": 10,
         "address": "", "status": "active"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Location.objects.get(name="Alpha Annex").organization_id == admin_world.a.organization.pk


def test_admin_writes_invalidate_availability(staff_client, admin_world):
    org = admin_world.a.organization
    org.refresh_from_db()
    before = org.availability_version
    staff_client.post(
        reverse("admin:booking_shift_add"),
        {"resource": admin_world.a_resource.pk, "day_of_week": 1, "start_time": "09:00", "end_time": "17:00",
         "recur_every_weeks": 1, "visit_type_rules-TOTAL_FORMS": 0, "visit_type_rules-INITIAL_FORMS": 0},
    )
    assert Shift.objects.filter(resource=admin_world.a_resource).count() == 1
    org.refresh_from_db()
    assert org.availability_version > before


def test_viewer_can_look_but_not_change(client, admin_world):
    client.force_login(admin_world.viewer)
    assert client.get(reverse("admin:booking_location_changelist")).status_code == 200
    assert client.get(reverse("admin:booking_location_add")).status_code == 403
    response = client.post(reverse("admin:booking_location_change", args=[admin_world.a_location.pk]),
                           {"name": "Hacked", "timezone": "UTC"})
    assert response.status_code == 403
    admin_world.a_location.refresh_from_db()
    assert admin_world.a_location.name == "Alpha Main St"


def test_staff_without_membership_sees_nothing(client, admin_world):
    client.force_login(admin_world.outsider)
    assert client.get(reverse("admin:booking_location_changelist")).status_code == 403
    assert "Alpha" not in client.get(reverse("admin:index")).content.decode()


def test_superuser_sees_every_organization(client, admin_world):
    client.force_login(admin_world.superuser)
    content = client.get(reverse("admin:booking_resource_changelist")).content.decode()
    assert "Dr Alpha Adams" in content and "Dr Beta Brown" in content


def test_memberships_are_managed_by_superusers_only(staff_client):
    assert staff_client.get(reverse("admin:tenants_membership_changelist")).status_code == 403


def test_timestamps_are_read_only(staff_client, admin_world):
    content = staff_client.get(reverse("admin:booking_location_change", args=[admin_world.a_location.pk])).content.decode()
    assert 'name="created_at"' not in content and "Created at" in content


class TestAppointmentAdmin:
    """Scheduling fields change only through the booking services."""

    @pytest.fixture
    def appointment(self, admin_world):
        from datetime import timedelta

        from django.utils import timezone

        from booking.models import Appointment, AppointmentResource

        start = timezone.now() + timedelta(days=2)
        appointment = Appointment.objects.create(
            organization=admin_world.a.organization, start=start, end=start + timedelta(minutes=30),
            service=admin_world.a_service, location=admin_world.a_location, customer_name="Avery Johnson",
        )
        AppointmentResource.objects.create(appointment=appointment, resource=admin_world.a_resource)
        return appointment

    def test_times_and_status_cannot_be_edited_but_notes_can(self, staff_client, appointment):
        url = reverse("admin:booking_appointment_change", args=[appointment.pk])
        content = staff_client.get(url).content.decode()
        assert 'name="notes"' in content and 'name="start_0"' not in content and 'name="status"' not in content
        staff_client.post(url, {"customer_name": "Avery J.", "notes": "Prefers mornings", "status": "CN",
                                "customer_email": "", "customer_phone": "", "patient_name": "", "patient_mrn": "", "reason": "",
                                "resource_links-TOTAL_FORMS": 1, "resource_links-INITIAL_FORMS": 1})
        appointment.refresh_from_db()
        assert (appointment.notes, appointment.customer_name, appointment.status) == ("Prefers mornings", "Avery J.", "BK")

    def test_no_adding_or_deleting(self, staff_client, appointment):
        assert staff_client.get(reverse("admin:booking_appointment_add")).status_code == 403
        staff_client.post(reverse("admin:booking_appointment_delete", args=[appointment.pk]), {"post": "yes"})
        assert type(appointment).objects.filter(pk=appointment.pk).exists()

    def test_cancel_action_goes_through_the_booking_service(self, staff_client, admin_world, appointment):
        from tenants.models import Event

        org = admin_world.a.organization
        org.refresh_from_db()
        version = org.availability_version
        response = staff_client.post(
            reverse("admin:booking_appointment_changelist"),
            {"action": "cancel_appointments", "_selected_action": [appointment.pk]},
            follow=True,
        )
        assert "Cancelled 1 appointment(s)." in response.content.decode()
        appointment.refresh_from_db()
        assert appointment.status == "CN" and appointment.cancelled_at is not None
        assert Event.objects.filter(organization=org, type="appointment.cancelled").count() == 1
        org.refresh_from_db()
        assert org.availability_version > version
