"""Shared set-up for the Calendly tests: a fake Calendly, a tenant connected to it, providers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from booking.models import Resource
from emr.services.calendly import calendly_connect
from tests.emr.fake_calendly import TOKEN, FakeCalendly


@pytest.fixture
def calendly():
    server = FakeCalendly().start()
    yield server
    server.stop()


def connect(tenant, fake: FakeCalendly):
    return calendly_connect(organization=tenant.organization, token=TOKEN, base_url=fake.url)


def provider(tenant, name: str, email: str, states=("CA",), **fields) -> Resource:
    return Resource.objects.create(
        organization=tenant.organization, name=name, type=fields.pop("type", Resource.Type.PROVIDER), email=email,
        licensed_states=list(states), **fields,
    )


def directory(tenant) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_CV_API_KEY=tenant.api_key)
    return client


def day_after_tomorrow() -> datetime:
    return (datetime.now(UTC) + timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)


def z(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
