"""Every admin page a clinic's staff member or a superuser can reach opens without an error:
the changelist, the add form and the change form of an object of their own, for every model."""

from __future__ import annotations

import pytest
from django.contrib import admin
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
    from tenants.admin_scoping import scope_queryset

    class _Request:
        pass

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
        names["change"] = [obj.pk]
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
