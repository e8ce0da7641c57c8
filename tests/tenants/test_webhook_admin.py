"""Admin monitoring with Django's test client: django-q2 screens for superusers only; endpoints,
deliveries and the overview scoped to the staff member's organization."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from django_q.models import OrmQ

from emr.models import Job
from tenants.crypto import decrypt_text
from tenants.events import event_emit
from tenants.models import Delivery, DeliveryAttempt, Membership, WebhookEndpoint
from tenants.webhooks.services import delivery_attempt_run, webhook_endpoint_create
from tests.conftest import admin_url, make_tenant
from tests.tenants.receiver import Reply

User = get_user_model()


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def staff_of(organization, role=Membership.Role.ADMIN, name="staff"):
    user = User.objects.create_user(name, password="x", is_staff=True)
    Membership.objects.create(user=user, organization=organization, role=role)
    return user


@pytest.fixture
def setup(db, receiver):
    a, b = make_tenant("Alpha Clinic"), make_tenant("Beta Clinic")
    # A's first attempt fails, B's two fail too; A's receiver says why in a body found nowhere else.
    receiver.script(Reply(500, body=b"alpha-upstream-broke-7f3a"), 500, 500)
    a_hook = webhook_endpoint_create(organization=a.organization, url=receiver.url("/alpha")).endpoint
    b_hook = webhook_endpoint_create(organization=b.organization, url=receiver.url("/beta")).endpoint
    a_event = event_emit(organization=a.organization, type="appointment.created", data={"n": 1})
    b_events = [event_emit(organization=b.organization, type="appointment.created", data={"n": n}) for n in (1, 2)]
    for delivery in Delivery.objects.order_by("id"):
        delivery_attempt_run(delivery_id=delivery.pk)
    Delivery.objects.filter(organization=b.organization).update(status=Delivery.Status.FAILED)
    Job.objects.create(organization=a.organization, kind=Job.Kind.APPOINTMENTS_FETCH, status=Job.Status.FAILED)
    for _ in range(3):
        Job.objects.create(organization=b.organization, kind=Job.Kind.APPOINTMENTS_FETCH, status=Job.Status.SUCCEEDED)
    return {
        "a": a, "b": b, "a_hook": a_hook, "b_hook": b_hook, "a_event": a_event, "b_events": b_events,
        "a_delivery": Delivery.objects.get(event=a_event),
        "b_delivery": Delivery.objects.get(event=b_events[0]),
        "staff": staff_of(a.organization),
        "superuser": User.objects.create_superuser("root", "root@example.com", "x"),
    }


@pytest.mark.parametrize(
    "url",
    ["/admin/django_q/schedule/", "/admin/django_q/success/", "/admin/django_q/failure/", "/admin/django_q/ormq/"],
)
def test_django_q_screens_are_for_superusers_only(setup, url):
    from django.contrib.auth.models import Permission

    assert login(setup["superuser"]).get(url).status_code == 200
    staff = setup["staff"]
    assert login(staff).get(url).status_code == 403
    # Not just Django's defaults: staff holding every django_q model permission are refused too.
    granted = Permission.objects.filter(content_type__app_label="django_q")
    assert granted.count() >= 16  # view/add/change/delete of each django_q model
    staff.user_permissions.add(*granted)
    assert User.objects.get(pk=staff.pk).has_perms([f"django_q.{p.codename}" for p in granted])
    assert login(staff).get(url).status_code == 403
    assert "/admin/django_q/" not in login(staff).get("/admin/").content.decode()


def test_staff_index_does_not_list_django_q_but_links_the_overview(setup):
    page = login(setup["staff"]).get("/admin/").content.decode()
    assert "/admin/django_q/" not in page
    assert "/admin/tenants/delivery/overview/" in page
    assert "/admin/django_q/schedule/" in login(setup["superuser"]).get("/admin/").content.decode()


def test_the_delivery_schedule_is_listed_for_superusers(setup):
    page = login(setup["superuser"]).get("/admin/django_q/schedule/").content.decode()
    assert "tenants.webhooks.tasks.deliveries_sweep" in page


def test_staff_see_only_their_endpoints_and_deliveries(setup):
    client = login(setup["staff"])
    endpoints = client.get("/admin/tenants/webhookendpoint/").content.decode()
    assert "/alpha" in endpoints and "/beta" not in endpoints
    deliveries = client.get("/admin/tenants/delivery/").content.decode()
    assert setup["a_event"].pk in deliveries
    assert all(event.pk not in deliveries for event in setup["b_events"])
    # another organization's rows are not reachable by id either
    b_delivery = setup["b_delivery"]
    assert client.get(admin_url(b_delivery)).status_code == 302
    assert client.get(admin_url(setup["b_hook"])).status_code == 302
    # and the endpoint filter offers only their own endpoints
    assert setup["b_hook"].pk not in deliveries


def test_the_event_type_filter_offers_the_defined_types_not_other_organizations_data(setup):
    from tenants.webhooks.services import EVENT_TYPES

    # An event type only Beta's deliveries have (as stored data, e.g. from an older version).
    event = setup["b_events"][1]
    type(event).objects.filter(pk=event.pk).update(type="beta.only_type")
    client = login(setup["staff"])
    page = client.get("/admin/tenants/delivery/").content.decode()
    assert "beta.only_type" not in page
    offered = re.findall(r'href="\?event_type=([^"&]+)"', page)
    assert offered == list(EVENT_TYPES)  # the same for every organization, whatever its data
    assert setup["a_event"].pk in client.get("/admin/tenants/delivery/?event_type=appointment.created").content.decode()
    assert setup["a_event"].pk not in client.get("/admin/tenants/delivery/?event_type=appointment.cancelled").content.decode()


def _attempt_rows(page: str) -> list[dict]:
    """The attempts inline of a delivery page: one {field: text} per row."""
    inline = page[page.index('id="attempt_rows-group"'):]
    inline = inline[: inline.index("</table>")]
    rows = re.findall(r'<tr class="form-row[^"]*"\s+id="attempt_rows-\d+">(.*?)</tr>', inline, re.S)
    return [dict(re.findall(r'<td class="field-(\w+)">\s*<p>(.*?)</p>', row, re.S)) for row in rows]


def test_delivery_page_shows_each_attempt(setup):
    delivery = setup["a_delivery"]
    page = login(setup["staff"]).get(admin_url(delivery)).content.decode()
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.status_code == 500
    [row] = _attempt_rows(page)
    assert row["number"] == "1"
    assert row["status_code"] == "500"
    assert row["duration_ms"] == str(attempt.duration_ms)
    assert row["outcome"] == "Failed, will retry"
    assert row["error"] == "HTTP 500."
    assert row["response_excerpt"] == "alpha-upstream-broke-7f3a"
    assert page.count("alpha-upstream-broke-7f3a") == 1


def _filter_links(page: str, parameter: str) -> list[str]:
    return re.findall(rf'href="\?{parameter}=([^"&]+)"', page)


def test_delivery_and_job_lists_offer_a_filter_for_every_status(setup):
    from emr.models import Job

    client = login(setup["staff"])
    deliveries = client.get("/admin/tenants/delivery/").content.decode()
    assert _filter_links(deliveries, "status__exact") == ["pending", "sending", "succeeded", "failed"]
    jobs = client.get("/admin/emr/job/").content.decode()
    assert _filter_links(jobs, "status__exact") == [value for value, _ in Job.Status.choices]
    assert _filter_links(jobs, "status__exact") == ["queued", "running", "succeeded", "failed"]
    # and they filter: A's only job failed, B's jobs are not listed at all
    [a_job] = Job.objects.filter(organization=setup["a"].organization)
    failed = client.get("/admin/emr/job/?status__exact=failed").content.decode()
    succeeded = client.get("/admin/emr/job/?status__exact=succeeded").content.decode()
    assert a_job.pk in failed and a_job.pk not in succeeded
    assert all(job.pk not in failed + succeeded for job in Job.objects.filter(organization=setup["b"].organization))


def test_delivery_status_filter(setup):
    client = login(setup["superuser"])
    failed = client.get("/admin/tenants/delivery/?status__exact=failed").content.decode()
    pending = client.get("/admin/tenants/delivery/?status__exact=pending").content.decode()
    assert setup["b_events"][0].pk in failed and setup["a_event"].pk not in failed
    assert setup["a_event"].pk in pending and setup["b_events"][0].pk not in pending


def test_redeliver_action_queues_own_deliveries_only(setup, django_capture_on_commit_callbacks):
    a_delivery, b_delivery = setup["a_delivery"], setup["b_delivery"]
    Delivery.objects.filter(pk=a_delivery.pk).update(status=Delivery.Status.FAILED, next_attempt_at=None)
    client = login(setup["staff"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/tenants/delivery/",
            {"action": "redeliver", "_selected_action": [a_delivery.pk, b_delivery.pk]},
        )
    assert response.status_code == 302
    a_delivery.refresh_from_db()
    b_delivery.refresh_from_db()
    assert a_delivery.status == Delivery.Status.PENDING and a_delivery.next_attempt_at is not None
    assert b_delivery.status == Delivery.Status.FAILED  # another organization's: untouched
    assert OrmQ.objects.count() == 1


def test_viewers_cannot_redeliver(setup):
    viewer = staff_of(setup["a"].organization, role=Membership.Role.VIEWER, name="viewer")
    delivery = setup["a_delivery"]
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED)
    client = login(viewer)
    page = client.get("/admin/tenants/delivery/").content.decode()
    assert 'value="redeliver"' not in page
    client.post("/admin/tenants/delivery/", {"action": "redeliver", "_selected_action": [delivery.pk]})
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED


def test_creating_an_endpoint_in_the_admin_shows_the_secret_once(setup, receiver):
    client = login(setup["staff"])
    response = client.post(
        "/admin/tenants/webhookendpoint/add/",
        {"url": receiver.url("/from-admin"), "event_types": ["appointment.created"]},
        follow=True,
    )
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get(url=receiver.url("/from-admin"))
    assert endpoint.organization_id == setup["a"].organization.pk
    assert endpoint.event_types == ["appointment.created"]
    shown = re.search(r"<code>(whsec_[^<]+)</code>", response.content.decode()).group(1)
    assert decrypt_text(endpoint.secret_encrypted) == shown
    again = client.get(admin_url(endpoint)).content.decode()
    assert shown not in again


def test_admin_refuses_unsafe_and_duplicate_urls(setup, settings):
    client = login(setup["staff"])
    response = client.post("/admin/tenants/webhookendpoint/add/", {"url": setup["a_hook"].url})
    assert response.status_code == 200 and "already registered" in response.content.decode()
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    response = client.post("/admin/tenants/webhookendpoint/add/", {"url": "https://127.0.0.1/x"})
    assert "public addresses" in response.content.decode()
    assert WebhookEndpoint.objects.filter(organization=setup["a"].organization).count() == 1


def test_rotate_and_delete_actions(setup):
    client = login(setup["staff"])
    endpoint = setup["a_hook"]
    old = endpoint.secret_encrypted
    response = client.post(
        "/admin/tenants/webhookendpoint/",
        {"action": "rotate_secret", "_selected_action": [endpoint.pk, setup["b_hook"].pk]},
        follow=True,
    )
    endpoint.refresh_from_db()
    assert endpoint.secret_encrypted != old and endpoint.previous_secret_expires_at is not None
    assert decrypt_text(endpoint.secret_encrypted) in response.content.decode()
    b_hook = WebhookEndpoint.objects.get(pk=setup["b_hook"].pk)
    assert b_hook.previous_secret_expires_at is None  # not theirs
    client.post("/admin/tenants/webhookendpoint/", {"action": "delete_endpoints", "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    assert endpoint.status == "deleted"


def test_overview_counts_only_the_staff_members_organization(setup):
    page = login(setup["staff"]).get("/admin/tenants/delivery/overview/").content.decode()
    assert "Jobs by status (1)" in page
    assert "Webhook deliveries by status (1)" in page
    assert _count(page, "deliveries-by-status", "pending") == 1
    assert _count(page, "deliveries-by-status", "failed") == 0
    assert _count(page, "jobs-by-status", "failed") == 1
    assert "/alpha" in page and "/beta" not in page  # A's endpoint is failing (its last attempt got 500)
    assert "Task queue" not in page


def test_overview_for_superusers_covers_everyone(setup):
    page = login(setup["superuser"]).get("/admin/tenants/delivery/overview/").content.decode()
    assert "Jobs by status (4)" in page and "Webhook deliveries by status (3)" in page
    assert _count(page, "deliveries-by-status", "failed") == 2
    assert _count(page, "jobs-by-status", "succeeded") == 3
    assert "/alpha" in page and "/beta" in page
    assert "Task queue" in page


def test_overview_leaves_out_what_is_older_than_24_hours(setup):
    Delivery.objects.filter(organization=setup["b"].organization).update(created_at=timezone.now() - timedelta(hours=25))
    page = login(setup["superuser"]).get("/admin/tenants/delivery/overview/").content.decode()
    assert "Webhook deliveries by status (1)" in page


def test_overview_needs_a_membership(db):
    stranger = User.objects.create_user("stranger", password="x", is_staff=True)
    assert login(stranger).get("/admin/tenants/delivery/overview/").status_code == 403
    assert Client().get("/admin/tenants/delivery/overview/").status_code == 302  # to the login page


def _count(page: str, table_id: str, status: str) -> int:
    table = page.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    row = table.split(f'data-status="{status}"', 1)[1].split("</tr>", 1)[0]
    return int(re.search(r'<td class="count">(\d+)</td>', row).group(1))


def test_redeliver_an_event_from_the_event_list(setup, django_capture_on_commit_callbacks):
    a_delivery = setup["a_delivery"]
    Delivery.objects.filter(pk=a_delivery.pk).update(status=Delivery.Status.FAILED, next_attempt_at=None)
    client = login(setup["staff"])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/tenants/event/",
            {"action": "redeliver", "_selected_action": [setup["a_event"].pk, setup["b_events"][0].pk]},
        )
    a_delivery.refresh_from_db()
    assert a_delivery.status == Delivery.Status.PENDING
    assert Delivery.objects.get(pk=setup["b_delivery"].pk).status == Delivery.Status.FAILED


def test_the_endpoint_form_leaves_the_checks_to_the_services(setup, settings):
    """The form repeats none of the services' checks; their refusals come back on its URL field
    and nothing is written (the limit included)."""
    from tenants.admin_webhooks import WebhookEndpointForm
    from tenants.webhooks.services import MAX_ENDPOINTS_PER_ORGANIZATION

    assert not hasattr(WebhookEndpointForm, "clean_url")
    assert WebhookEndpointForm.clean is forms_clean()
    client = login(setup["staff"])
    response = client.post("/admin/tenants/webhookendpoint/add/", {"url": setup["a_hook"].url})
    assert "already registered" in " ".join(response.context["adminform"].form.errors["url"])
    for n in range(MAX_ENDPOINTS_PER_ORGANIZATION - 1):
        webhook_endpoint_create(organization=setup["a"].organization, url=f"https://hooks{n}.example.com/in")
    response = client.post("/admin/tenants/webhookendpoint/add/", {"url": "https://one-too-many.example.com/in"})
    assert "at most" in " ".join(response.context["adminform"].form.errors["url"])
    assert not WebhookEndpoint.objects.filter(url="https://one-too-many.example.com/in").exists()


def forms_clean():
    from django import forms

    return forms.ModelForm.clean
