"""Pagination of every ``/v3/`` collection: ``?limit=1..100 (20)&page=1..`` answers
``{"data", "count", "page", "limit"}``, pages are consecutive slices of one fixed order, and a page
past the end is an empty ``data`` with the real ``count`` (200, not 404)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from booking import models as b

N = 105  # more than the largest page
START = datetime(2031, 1, 6, 14, 0, tzinfo=UTC)


def _locations(org, resource):
    b.Location.objects.bulk_create([b.Location(organization=org, name=f"Site {i:03}", timezone="UTC") for i in range(N)])
    return "/v3/locations", b.Location.objects.filter(organization=org)


def _services(org, resource):
    b.Service.objects.bulk_create([b.Service(organization=org, name=f"Visit {i:03}", duration=30) for i in range(N)])
    return "/v3/services", b.Service.objects.filter(organization=org)


def _resources(org, resource):
    b.Resource.objects.bulk_create([b.Resource(organization=org, name=f"Dr {i:03}") for i in range(N - 1)])
    return "/v3/resources", b.Resource.objects.filter(organization=org)


def _blocks(org, resource):
    b.Block.objects.bulk_create([
        b.Block(organization=org, resource=resource, start=START + timedelta(hours=i), end=START + timedelta(hours=i, minutes=30))
        for i in range(N)
    ])
    return "/v3/blocks", b.Block.objects.filter(organization=org)


def _recurring_blocks(org, resource):
    b.RecurringBlock.objects.bulk_create([
        b.RecurringBlock(organization=org, resource=resource, frequency="DAILY", start_date=date(2031, 1, 1) + timedelta(days=i),
                         start_time=time(12), end_time=time(13))
        for i in range(N)
    ])
    return "/v3/recurringBlocks", b.RecurringBlock.objects.filter(organization=org)


def _resource_services(org, resource):
    location = b.Location.objects.create(organization=org, name="Main", timezone="UTC")
    services = b.Service.objects.bulk_create([b.Service(organization=org, name=f"Visit {i:03}", duration=30) for i in range(N)])
    for service in services:  # one by one: created_at orders the links
        b.ResourceService.objects.create(organization=org, resource=resource, service=service, location=location)
    links = b.ResourceService.objects.filter(resource=resource).order_by("created_at", "id")
    return f"/v3/resources/{resource.pk}/services", links


def _allocations(org, resource):
    b.Allocation.objects.bulk_create([
        b.Allocation(organization=org, resource=resource, start=START + timedelta(days=i), end=START + timedelta(days=i, hours=2))
        for i in range(N)
    ])
    return f"/v3/resources/{resource.pk}/allocations", b.Allocation.objects.filter(resource=resource)


def _appointments(org, resource):
    b.Appointment.objects.bulk_create([
        b.Appointment(organization=org, start=START + timedelta(hours=i), end=START + timedelta(hours=i, minutes=30))
        for i in range(N)
    ])
    return "/v3/appointments", b.Appointment.objects.filter(organization=org).order_by("start", "id")


def _is_links(url: str) -> bool:
    return url.startswith("/v3/resources/") and url.endswith("/services")


COLLECTIONS = [_locations, _services, _resources, _blocks, _recurring_blocks, _resource_services, _allocations, _appointments]


@pytest.fixture(params=COLLECTIONS, ids=[c.__name__.strip("_") for c in COLLECTIONS])
def collection(request, tenant, other_tenant):
    resource = b.Resource.objects.create(organization=tenant.organization, name="Dr Zed")
    other = b.Resource.objects.create(organization=other_tenant.organization, name="Dr Other")
    request.param(other_tenant.organization, other)  # another tenant's rows never count
    url, queryset = request.param(tenant.organization, resource)
    ids = [str(pk) for pk in queryset.values_list("pk", flat=True)]
    if _is_links(url):
        ids = [str(link.service_id) for link in queryset]
    assert len(ids) == N
    return url, ids


def _page(api, url, **params):
    response = api.get(url, params)
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    assert set(body) == {"data", "count", "page", "limit"}
    key = "ServiceId" if _is_links(url) else "id"  # a resource's service links have no id of their own
    return body, [item[key] for item in body["data"]]


def test_the_default_page_is_the_first_20(api, collection):
    url, ids = collection
    body, page = _page(api, url)
    assert (body["count"], body["page"], body["limit"]) == (N, 1, 20)
    assert page == ids[:20]


def test_limit_100_is_the_largest_page(api, collection):
    url, ids = collection
    body, page = _page(api, url, limit=100)
    assert (body["count"], body["page"], body["limit"]) == (N, 1, 100)
    assert page == ids[:100]
    body, page = _page(api, url, limit=100, page=2)
    assert (body["page"], body["limit"]) == (2, 100) and page == ids[100:]


def test_page_2_is_the_next_slice(api, collection):
    url, ids = collection
    body, page = _page(api, url, page=2)
    assert (body["count"], body["page"], body["limit"]) == (N, 2, 20)
    assert page == ids[20:40]
    body, page = _page(api, url, page=3, limit=7)
    assert (body["page"], body["limit"]) == (3, 7) and page == ids[14:21]


def test_the_pages_together_are_every_item_once(api, collection):
    url, ids = collection
    seen = []
    for number in range(1, 7):
        seen += _page(api, url, page=number)[1]
    assert seen == ids


@pytest.mark.parametrize("page", [7, 1_000_000])
def test_a_page_past_the_end_is_empty_with_the_real_count(api, collection, page):
    url, _ = collection
    body, items = _page(api, url, page=page)
    assert items == [] and (body["count"], body["page"], body["limit"]) == (N, page, 20)
