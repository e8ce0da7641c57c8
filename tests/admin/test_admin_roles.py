"""A staff user's role is per organization: what they may change is decided by the role they hold
in the organization of the object, never by a role held somewhere else.

The table: (role in A, role in B) × object of A or B × action → allowed only where the role in the
object's organization is admin. Read access is unaffected (a viewer still sees the object).
"""

from __future__ import annotations

import itertools

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from booking.models import Location
from tenants.models import ApiClient, Membership
from tests import factories as f
from tests.conftest import make_tenant

ADMIN, VIEWER = Membership.Role.ADMIN, Membership.Role.VIEWER
ROLE_PAIRS = [(ADMIN, VIEWER), (VIEWER, ADMIN), (ADMIN, ADMIN), (VIEWER, VIEWER)]
ACTIONS = ["open_change_form", "change", "delete", "add", "bulk_delete", "revoke_action", "inline_add"]


@pytest.fixture
def orgs(db):
    a, b = make_tenant("Alpha Clinic"), make_tenant("Beta Clinic")
    return {
        "A": {"tenant": a, "location": f.LocationFactory(organization=a.organization, name="Alpha Main St"),
              "resource": f.ResourceFactory(organization=a.organization, name="Dr Alpha")},
        "B": {"tenant": b, "location": f.LocationFactory(organization=b.organization, name="Beta Harbour Rd"),
              "resource": f.ResourceFactory(organization=b.organization, name="Dr Beta")},
    }


def _login(client, orgs, roles):
    user = get_user_model().objects.create_user(username="multi", password="x" * 12, is_staff=True)
    for org_key, role in zip("AB", roles):
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
    if action == "inline_add":
        resource = org["resource"]
        page = client.get(reverse("admin:booking_resource_change", args=[resource.pk]))
        return "shifts-TOTAL_FORMS" in page.content.decode() and 'name="shifts-__prefix__-day_of_week"' in page.content.decode()
    raise AssertionError(action)


TABLE = [
    (roles, target, action, roles["AB".index(target)] == ADMIN)
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
