"""Every admin page a clinic's staff member or a superuser can reach opens without an error:
the changelist, the add form and the change form of an object of their own, for every model."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.urls import NoReverseMatch, reverse

from tenants.admin_scoping import TenantScopedAdmin
from tests.conftest import make_tenant


def _registered():
    return sorted(
        ((model, model_admin) for model, model_admin in admin.site._registry.items()),
        key=lambda pair: pair[0]._meta.label,
    )


SCOPED = [(m._meta.label, m) for m, a in _registered() if isinstance(a, TenantScopedAdmin)]


@pytest.fixture
def staff(client, admin_world):
    client.force_login(admin_world.staff)
    return client


def _own_object(model, organization):
    if model._meta.label == "tenants.Organization":
        return organization
    path = "organization" if any(f.name == "organization" for f in model._meta.get_fields()) else getattr(model, "tenant_path", None)
    return model._default_manager.filter(**{path: organization}).first() if path else None


@pytest.mark.parametrize("label,model", SCOPED, ids=[label for label, _ in SCOPED])
def test_staff_open_every_page_of_every_scoped_admin(staff, admin_world, label, model):
    opts = model._meta
    names = {"changelist": [], "add": []}
    obj = _own_object(model, admin_world.a.organization)
    if obj is not None:
        names["change"] = [quote(obj.pk)]  # as the admin links it
    for view, args in names.items():
        try:
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)
        except NoReverseMatch:
            continue
        response = staff.get(url)
        assert response.status_code in (200, 403), f"{url}: {response.status_code}"
        if view == "changelist":
            assert response.status_code == 200, url


@pytest.mark.parametrize("model,model_admin", _registered(), ids=[m._meta.label for m, _ in _registered()])
def test_superuser_opens_every_changelist_and_add_form(client, admin_world, model, model_admin):
    client.force_login(admin_world.superuser)
    opts = model._meta
    for view in ("changelist", "add"):
        response = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}"))
        assert response.status_code in (200, 403), f"{view}: {response.status_code}"


@pytest.mark.django_db
def test_links_to_objects_whose_ids_look_like_admin_escapes_open_them(admin_client, monkeypatch):
    """Public ids are ``<kind>_<lowercase hex>``; the admin decodes ``_40`` (or ``_22``…``_26``) as
    ``@`` (``"``…``&``) unless the link quotes the id. Every admin link to a job, an event or an endpoint must open that object."""
    import re

    from emr.models import Job
    from tenants import events
    from tenants.events import event_emit
    from tenants.models import Delivery, WebhookEndpoint
    from tenants.webhooks.services import webhook_endpoint_create

    tenant = make_tenant("Escapes")
    Job.objects.create(id="job_40aa3a2f5f23", organization=tenant.organization, kind=Job.Kind.APPOINTMENTS_FETCH,
                             status=Job.Status.FAILED, error="upstream down")
    endpoint = webhook_endpoint_create(organization=tenant.organization, url="https://hooks.example.com/in").endpoint
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(id="wh_4022aa")
    monkeypatch.setattr(events, "event_id_new", lambda: "evt_2540aa")
    event_emit(organization=tenant.organization, type="appointment.created", data={"n": 1})
    Delivery.objects.filter(event_id="evt_2540aa").update(status=Delivery.Status.FAILED)

    def opens(listing_url: str, pk: str):
        listing = admin_client.get(listing_url).content.decode()
        hrefs = [h for h in re.findall(r'href="([^"]+/change/)"', listing) if pk.split("_")[0] in h]
        assert hrefs, f"no link to {pk} on {listing_url}"
        for href in hrefs:
            page = admin_client.get(href)
            assert page.status_code == 200, (href, page.status_code)
            assert pk in page.content.decode()

    opens(reverse("admin:emr_job_changelist"), "job_40aa3a2f5f23")
    opens(reverse("admin:tenants_webhookendpoint_changelist"), "wh_4022aa")
    opens(reverse("admin:tenants_delivery_changelist"), "evt_2540aa")  # the delivery list links its event
    opens(reverse("admin:tenants_delivery_overview"), "wh_4022aa")  # failing endpoints on the overview
