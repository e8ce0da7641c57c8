"""The admin's "why is this time not bookable?" page: the explain endpoint's answer, for staff."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from booking import models as b
from tenants.models import Membership
from tests.booking.conftest import MONDAY, clinic_make, utc


@pytest.fixture
def staff(db):
    clinic, other = clinic_make("Alpha"), clinic_make("Beta")
    user = get_user_model().objects.create_user(username="alpha", password="x" * 12, is_staff=True)
    Membership.objects.create(user=user, organization=clinic.organization, role=Membership.Role.VIEWER)
    return clinic, other, user


def test_page_explains_with_the_objects_behind(client, staff):
    clinic, other, user = staff
    client.force_login(user)
    resource = clinic.resources[0]
    block = b.Block.objects.create(organization=clinic.organization, resource=resource,
                                   start=utc(14), end=utc(15))
    url = reverse("admin:booking_resource_explain", args=[resource.pk])
    page = client.get(url, {"service": clinic.service.pk, "location": clinic.location.pk, "time": f"{MONDAY} 09:00"})
    content = page.content.decode()
    assert page.status_code == 200 and "not bookable" in content
    assert 'data-code="blocked"' in content and str(block.pk) in content
    free = client.get(url, {"service": clinic.service.pk, "location": clinic.location.pk, "time": f"{MONDAY} 10:00"})
    assert "bookable" in free.content.decode() and 'data-code=' not in free.content.decode()
    change = client.get(reverse("admin:booking_resource_change", args=[resource.pk])).content.decode()
    assert url in change


def test_other_tenants_resource_and_objects_are_not_offered(client, staff):
    clinic, other, user = staff
    client.force_login(user)
    theirs = client.get(reverse("admin:booking_resource_explain", args=[other.resources[0].pk]))
    assert theirs.status_code == 404
    mine = client.get(reverse("admin:booking_resource_explain", args=[clinic.resources[0].pk]),
                      {"service": other.service.pk, "location": other.location.pk, "time": f"{MONDAY} 09:00"})
    content = mine.content.decode()
    assert mine.status_code == 200 and 'id="explanation"' not in content and "Select a valid choice" in content
    assert f'value="{other.service.pk}"' not in content and f'value="{other.location.pk}"' not in content
    assert f'value="{clinic.service.pk}"' in content
