"""A staff user's role is per organization: what they may change is decided by the role they hold
in the organization of the object, never by a role held somewhere else.

The table: (role in A, role in B) × object of A or B × action → allowed only where the role in the
object's organization is one of the roles admin.md gives that action: ``admin`` everything,
``frontdesk`` appointments, blocks, allocations and recurring blocks (never credentials, never
deleting locations, services or resources), ``viewer`` nothing. Read access is unaffected (a
viewer still sees the object).
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from booking.models import Allocation, Appointment, Block, Location
from emr.models import EmrConnection
from tenants.models import ApiClient, Membership
from tests import factories as f
from tests.conftest import make_tenant

ADMIN, FRONTDESK, VIEWER = Membership.Role.ADMIN, Membership.Role.FRONTDESK, Membership.Role.VIEWER
ROLE_PAIRS = [
    (ADMIN, VIEWER), (VIEWER, ADMIN), (ADMIN, ADMIN), (VIEWER, VIEWER),
    (FRONTDESK, VIEWER), (VIEWER, FRONTDESK),
]
ADMIN_ONLY, DESK = {ADMIN}, {ADMIN, FRONTDESK}
# action -> the roles (in the object's organization) that may do it
ALLOWED = {
    "open_change_form": ADMIN_ONLY, "change": ADMIN_ONLY, "delete": ADMIN_ONLY, "add": ADMIN_ONLY,
    "bulk_delete": ADMIN_ONLY, "revoke_action": ADMIN_ONLY, "inline_add": ADMIN_ONLY,
    "block_add": DESK, "block_change": DESK, "block_delete": DESK, "allocation_add": DESK,
    "appointment_cancel": DESK, "appointment_notes": DESK,
    "emr_connection_delete": ADMIN_ONLY, "emr_access_token_rotate": ADMIN_ONLY, "api_client_add": ADMIN_ONLY,
}
ACTIONS = list(ALLOWED)


@pytest.fixture
def orgs(db):
    a, b = make_tenant("Alpha Clinic"), make_tenant("Beta Clinic")
    world = {
        "A": {"tenant": a, "location": f.LocationFactory(organization=a.organization, name="Alpha Main St"),
              "resource": f.ResourceFactory(organization=a.organization, name="Dr Alpha")},
        "B": {"tenant": b, "location": f.LocationFactory(organization=b.organization, name="Beta Harbour Rd"),
              "resource": f.ResourceFactory(organization=b.organization, name="Dr Beta")},
    }
    start = timezone.now().replace(microsecond=0) + timedelta(days=3)
    for org in world.values():
        organization = org["tenant"].organization
        org["block"] = Block.objects.create(organization=organization, resource=org["resource"], start=start,
                                            end=start + timedelta(hours=2), reason="Before")
        # At a second site, so it does not hold up deleting the first (admin.md: refused then).
        second = f.LocationFactory(organization=organization, name="Second site")
        org["appointment"] = Appointment.objects.create(organization=organization, start=start, location=second,
                                                        end=start + timedelta(minutes=30), customer_name="Avery")
    return world


def _login(client, orgs, roles):
    user = get_user_model().objects.create_user(username="multi", password="x" * 12, is_staff=True)
    for org_key, role in zip("AB", roles, strict=False):
        Membership.objects.create(user=user, organization=orgs[org_key]["tenant"].organization, role=role)
    client.force_login(user)
    return client


def _attempt(client, orgs, target: str, action: str) -> bool:
    """Try ``action`` on organization ``target``'s objects; True when it took effect."""
    org = orgs[target]
    location, organization = org["location"], org["tenant"].organization
    if action == "open_change_form":
        page = client.get(reverse("admin:booking_location_change", args=[location.pk]))
        assert page.status_code == 200  # every member may look
        return 'name="name"' in page.content.decode()  # an editable form, not the read-only view
    if action == "change":
        client.post(reverse("admin:booking_location_change", args=[location.pk]),
                    {"name": "Renamed", "timezone": "UTC", "weekly_availability": "[]", "hold_expiration_minutes": 10,
                     "address": "", "status": "active", "organization": organization.pk})
        location.refresh_from_db()
        return location.name == "Renamed"
    if action == "delete":
        client.post(reverse("admin:booking_location_delete", args=[location.pk]), {"post": "yes"})
        return not Location.objects.filter(pk=location.pk).exists()
    if action == "add":
        client.post(reverse("admin:booking_location_add"),
                    {"name": "Annex", "timezone": "UTC", "weekly_availability": "[]", "hold_expiration_minutes": 10,
                     "address": "", "status": "active", "organization": organization.pk})
        return Location.objects.filter(name="Annex", organization=organization).exists()
    if action == "bulk_delete":
        client.post(reverse("admin:booking_location_changelist"),
                    {"action": "delete_selected", "_selected_action": [location.pk], "post": "yes"})
        return not Location.objects.filter(pk=location.pk).exists()
    if action == "revoke_action":
        api_client = org["tenant"].api_client
        client.post(reverse("admin:tenants_apiclient_changelist"), {"action": "revoke", "_selected_action": [api_client.pk]})
        return ApiClient.objects.get(pk=api_client.pk).revoked_at is not None
    if action == "block_add":
        client.post(reverse("admin:booking_block_add"),
                    {"resource": org["resource"].pk, "start_0": "2031-01-06", "start_1": "13:00", "end_0": "2031-01-06",
                     "end_1": "17:00", "reason": "Added", "organization": organization.pk})
        return Block.objects.filter(reason="Added", organization=organization).exists()
    if action == "block_change":
        block = org["block"]
        client.post(reverse("admin:booking_block_change", args=[block.pk]),
                    {"resource": org["resource"].pk, "start_0": "2031-01-06", "start_1": "13:00", "end_0": "2031-01-06",
                     "end_1": "17:00", "reason": "Changed", "organization": organization.pk})
        return Block.objects.get(pk=block.pk).reason == "Changed"
    if action == "block_delete":
        client.post(reverse("admin:booking_block_delete", args=[org["block"].pk]), {"post": "yes"})
        return not Block.objects.filter(pk=org["block"].pk).exists()
    if action == "allocation_add":
        client.post(reverse("admin:booking_allocation_add"),
                    {"resource": org["resource"].pk, "start_0": "2031-01-06", "start_1": "08:00", "end_0": "2031-01-06",
                     "end_1": "09:00", "organization": organization.pk})
        return Allocation.objects.filter(organization=organization).exists()
    if action == "appointment_cancel":
        appointment = org["appointment"]
        client.post(reverse("admin:booking_appointment_changelist"),
                    {"action": "cancel_appointments", "_selected_action": [appointment.pk]})
        return Appointment.objects.get(pk=appointment.pk).status == Appointment.Status.CANCELLED
    if action == "appointment_notes":
        from tests.admin.forms import form_values

        url = reverse("admin:booking_appointment_change", args=[org["appointment"].pk])
        data = form_values(client.get(url).content.decode())
        client.post(url, {**data, "notes": "Call first", "_save": "Save"})
        return Appointment.objects.get(pk=org["appointment"].pk).notes == "Call first"
    if action == "emr_connection_delete":
        connection = org["tenant"].emr_connection
        client.post(reverse("admin:emr_emrconnection_delete", args=[connection.pk]), {"post": "yes"})
        client.post(reverse("admin:emr_emrconnection_changelist"),
                    {"action": "delete_selected", "_selected_action": [connection.pk], "post": "yes"})
        return not EmrConnection.objects.filter(pk=connection.pk).exists()
    if action == "emr_access_token_rotate":
        connection = org["tenant"].emr_connection
        before = EmrConnection.objects.get(pk=connection.pk).access_token_hash
        client.post(reverse("admin:emr_emrconnection_changelist"),
                    {"action": "rotate_access_token", "_selected_action": [connection.pk]})
        return EmrConnection.objects.get(pk=connection.pk).access_token_hash != before
    if action == "api_client_add":
        before = ApiClient.objects.filter(organization=organization).count()
        client.post(reverse("admin:tenants_apiclient_add"), {"name": "Minted", "organization": organization.pk})
        return ApiClient.objects.filter(organization=organization).count() > before
    if action == "inline_add":
        resource = org["resource"]
        page = client.get(reverse("admin:booking_resource_change", args=[resource.pk]))
        return "shifts-TOTAL_FORMS" in page.content.decode() and 'name="shifts-__prefix__-day_of_week"' in page.content.decode()
    raise AssertionError(action)


TABLE = [
    (roles, target, action, roles["AB".index(target)] in ALLOWED[action])
    for roles, target, action in itertools.product(ROLE_PAIRS, "AB", ACTIONS)
]


@pytest.mark.parametrize(
    "roles,target,action,allowed",
    TABLE,
    ids=[f"{r[0]}A-{r[1]}B-{t}-{a}" for r, t, a, _ in TABLE],
)
def test_the_role_in_the_objects_organization_decides(client, orgs, roles, target, action, allowed):
    client = _login(client, orgs, roles)
    assert _attempt(client, orgs, target, action) is allowed


def test_add_form_offers_only_organizations_where_the_user_is_admin(client, orgs):
    client = _login(client, orgs, (ADMIN, VIEWER))
    content = client.get(reverse("admin:booking_location_add")).content.decode()
    assert "Alpha Clinic" in content and "Beta Clinic" not in content


def test_autocomplete_for_a_form_offers_only_writable_organizations(client, orgs):
    client = _login(client, orgs, (ADMIN, VIEWER))
    response = client.get("/admin/autocomplete/", {"app_label": "booking", "model_name": "resourceservice",
                                                   "field_name": "resource", "term": ""})
    texts = [item["text"] for item in response.json()["results"]]
    assert "Dr Alpha" in texts and "Dr Beta" not in texts


def test_a_viewer_still_sees_both_organizations(client, orgs):
    client = _login(client, orgs, (ADMIN, VIEWER))
    content = client.get(reverse("admin:booking_location_changelist")).content.decode()
    assert "Alpha Main St" in content and "Beta Harbour Rd" in content


def test_a_bulk_action_over_both_organizations_changes_only_the_writable_one(client, orgs):
    client = _login(client, orgs, (ADMIN, VIEWER))
    clients = [orgs[key]["tenant"].api_client for key in "AB"]
    response = client.post(reverse("admin:tenants_apiclient_changelist"),
                           {"action": "revoke", "_selected_action": [c.pk for c in clients]}, follow=True)
    revoked = {c.pk: ApiClient.objects.get(pk=c.pk).revoked_at is not None for c in clients}
    assert revoked == {clients[0].pk: True, clients[1].pk: False}
    assert "viewer" in response.content.decode()


@pytest.mark.parametrize("changelist", ["admin:tenants_apiclient_changelist", "admin:booking_appointment_changelist",
                                        "admin:booking_location_changelist"])
def test_a_viewer_is_offered_no_actions(client, orgs, changelist):
    client = _login(client, orgs, (VIEWER, VIEWER))
    content = client.get(reverse(changelist)).content.decode()
    assert 'name="action"' not in content
