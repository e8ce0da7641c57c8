from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.db import connection
from rest_framework.test import APIClient

from emr.services import emr_connection_create
from tenants.services import api_client_create, organization_create


@dataclass
class Tenant:
    """An organization with one API client and one EMR connection, and its plain-text secrets."""

    organization: object
    api_client: object
    api_key: str
    client_id: str
    client_secret: str
    emr_connection: object
    access_token: str

    def v3(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=self.api_key)
        return client

    def v1(self) -> APIClient:
        client = APIClient()
        client.credentials(
            HTTP_CLIENT_ID=self.client_id, HTTP_CLIENT_SECRET=self.client_secret, HTTP_ACCESS_TOKEN=self.access_token
        )
        return client


def make_tenant(name: str = "Tenant", timezone_name: str = "UTC") -> Tenant:
    org = organization_create(name=name, timezone_name=timezone_name)
    issued = api_client_create(organization=org)
    conn = emr_connection_create(organization=org)
    return Tenant(
        organization=org,
        api_client=issued.api_client,
        api_key=issued.api_key,
        client_id=issued.api_client.client_id,
        client_secret=issued.client_secret,
        emr_connection=conn.connection,
        access_token=conn.access_token,
    )


@pytest.fixture
def tenant(db) -> Tenant:
    return make_tenant("Own Clinic")


@pytest.fixture
def other_tenant(db) -> Tenant:
    return make_tenant("Other Clinic")


@pytest.fixture
def api(tenant) -> APIClient:
    return tenant.v3()


@pytest.fixture
def requires_postgres(db):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://…")


def _worker_database(url: str) -> str:
    """``url`` with its database number moved up by the pytest-xdist worker's index (gw1: one up),
    so parallel workers, which flush their database before each test, never flush each other's."""
    import os
    from urllib.parse import urlsplit, urlunsplit

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    parts = urlsplit(url)
    database = int(parts.path.lstrip("/") or 0) + index
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture
def redis_url() -> str:
    """A real Redis database for tests that need one; ``TEST_REDIS_URL`` picks the database so
    parallel runs don't share keys (each pytest-xdist worker takes the next one up). The database
    is flushed before the test."""
    import os

    import redis

    url = _worker_database(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9"))
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.fail(f"Redis is not reachable at {url}; start it (see README) — these tests need a real Redis.")
    client.flushdb()
    return url


def redis_cache_use(settings, url: str, *, key_prefix: str = "test") -> None:
    """Point the default cache (and with it the availability answers, cached credentials and rate
    limits) at the Redis database ``url``, as a deployment with ``REDIS_URL`` has it."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": key_prefix,
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
        }
    }


def admin_url(obj, view: str = "change") -> str:
    """The admin URL of ``obj`` as the admin itself links it: string primary keys such as
    ``job_40…`` are quoted (the admin reads ``_40`` as an escaped ``@``)."""
    from django.contrib.admin.utils import quote
    from django.urls import reverse

    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[quote(obj.pk)])
