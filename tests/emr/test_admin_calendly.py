"""The Calendly pages of the admin: the connection (admin role only, write-only token), "Sync
now", the editable provider link of a Calendly user, the read-only event types."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from emr.models import CalendlyConnection, CalendlyEventType, CalendlyUser, Job
from emr.services.calendly import calendly_sync, calendly_token
from tenants.models import Membership
from tests.conftest import admin_url, make_tenant
from tests.emr.calendly_fixtures import connect, provider
from tests.emr.fake_calendly import TOKEN

PASSWORD = "correct horse battery"


@pytest.fixture
def staff(db):
    tenant = make_tenant("Admin Clinic")
    other = make_tenant("Other Clinic")
    users = {}
    for role in (Membership.Role.ADMIN, Membership.Role.VIEWER):
        user = get_user_model().objects.create_user(username=f"cal_{role}", password=PASSWORD, is_staff=True)
        Membership.objects.create(user=user, organization=tenant.organization, role=role)
        users[role] = user
    return tenant, other, users


def login(client, user):
    client.force_login(user)
    return client


def test_an_admin_connects_with_a_write_only_token(client, staff, calendly):
    tenant, _, users = staff
    login(client, users[Membership.Role.ADMIN])
    page = client.get("/admin/emr/calendlyconnection/add/")
    assert page.status_code == 200 and 'type="password"' in page.content.decode()
    response = client.post("/admin/emr/calendlyconnection/add/", {"base_url": calendly.url, "token": TOKEN, "is_active": "on"})
    assert response.status_code == 302, response.content.decode()[:3000]
    connection = CalendlyConnection.objects.get(organization=tenant.organization)
    assert calendly_token(connection=connection) == TOKEN and TOKEN not in connection.token_encrypted
    detail = client.get(admin_url(connection)).content.decode()
    assert TOKEN not in detail and "stored (encrypted)" in detail
    # A blank token keeps the stored one; a new base URL is taken.
    response = client.post(admin_url(connection), {"base_url": calendly.url + "/v2", "token": "", "is_active": "on"})
    assert response.status_code == 302
    connection.refresh_from_db()
    assert calendly_token(connection=connection) == TOKEN and connection.base_url == calendly.url + "/v2"


def test_a_new_connection_needs_a_token(client, staff):
    _, _, users = staff
    login(client, users[Membership.Role.ADMIN])
    response = client.post("/admin/emr/calendlyconnection/add/", {"base_url": "https://api.calendly.com", "token": ""})
    assert response.status_code == 200 and "A new connection needs a token." in response.content.decode()
    assert not CalendlyConnection.objects.exists()


def test_viewers_and_other_organizations_never_see_the_connection(client, staff, calendly):
    tenant, other, users = staff
    mine = connect(tenant, calendly)
    theirs = connect(other, calendly)
    login(client, users[Membership.Role.VIEWER])
    assert client.get("/admin/emr/calendlyconnection/").status_code == 403
    assert client.get(admin_url(mine)).status_code in (302, 403)
    login(client, users[Membership.Role.ADMIN])
    listing = client.get("/admin/emr/calendlyconnection/").content.decode()
    assert str(mine.pk) in listing and str(theirs.pk) not in listing
    assert client.get(admin_url(theirs)).status_code == 302  # another tenant's object: "doesn't exist"


def test_sync_now_queues_a_sync_job(client, staff, calendly, django_capture_on_commit_callbacks):
    tenant, _, users = staff
    connection = connect(tenant, calendly)
    login(client, users[Membership.Role.ADMIN])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/emr/calendlyconnection/", {"action": "sync_now", "_selected_action": [str(connection.pk)]},
                               follow=True)
    assert response.status_code == 200
    job = Job.objects.get(calendly_connection=connection)
    assert job.kind == Job.Kind.CALENDLY_SYNC and job.status == Job.Status.QUEUED and job.task_id
    assert job.pk in response.content.decode()
    jobs_page = client.get("/admin/emr/job/").content.decode()
    assert job.pk in jobs_page


def test_staff_change_a_users_provider_and_the_sync_keeps_it(client, staff, calendly):
    tenant, other, users = staff
    ada = provider(tenant, "Dr Ada", "ada@clinic.test")
    bo = provider(tenant, "Dr Bo", "bo@clinic.test")
    foreign = provider(other, "Dr Foreign", "f@clinic.test")
    uri = calendly.user("ADA", "ada@clinic.test")
    calendly.event_type("E1", uri, "Intake")
    connection = connect(tenant, calendly)
    calendly_sync(connection=connection)
    user = CalendlyUser.objects.get(uri=uri)
    assert user.resource == ada
    login(client, users[Membership.Role.ADMIN])
    response = client.post(admin_url(user), {"resource": str(foreign.pk)})
    assert response.status_code == 200  # another tenant's provider is not a choice
    assert CalendlyUser.objects.get(pk=user.pk).resource == ada
    response = client.post(admin_url(user), {"resource": str(bo.pk)})
    assert response.status_code == 302, response.content.decode()[:2000]
    user.refresh_from_db()
    assert user.resource == bo and user.linked_manually
    calendly_sync(connection=connection)
    assert CalendlyUser.objects.get(pk=user.pk).resource == bo
    listing = client.get("/admin/emr/calendlyeventtype/").content.decode()
    assert "Intake" in listing and "Dr Bo" in listing
    event_type = CalendlyEventType.objects.get(connection=connection)
    assert client.post(admin_url(event_type), {"name": "Changed"}).status_code == 403
    login(client, users[Membership.Role.VIEWER])
    assert client.post(admin_url(user), {"resource": str(ada.pk)}).status_code == 403
    assert CalendlyUser.objects.get(pk=user.pk).resource == bo
