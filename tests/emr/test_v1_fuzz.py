"""Random input (schemathesis) against the ``/v1/`` EMR endpoints WITH valid EMR credentials:
no input makes them answer 5xx, and every answer matches its documented schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from booking.models import Appointment, Location, Resource, Shift
from config.wsgi import application
from tests.conftest import make_tenant

emr_schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application).include(
    path_regex=r"^/v1/(appointments|providers|locations|settings)"
)


@pytest.fixture
def emr_headers(db):
    """A tenant with EMR data, and its ``/v1/`` headers. The WSGI app is called directly, so keep
    its request signals from closing the test's open transaction (as Django's test client does)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    tenant = make_tenant("Fuzzed EMR")
    org, conn = tenant.organization, tenant.emr_connection
    provider = Resource.objects.create(organization=org, name="Dr F", type="provider", ehr_id="P1", emr_connection=conn)
    Shift.objects.create(organization=org, resource=provider, day_of_week=2, start_time="09:00", end_time="12:00")
    Location.objects.create(organization=org, name="Site", timezone="UTC", ehr_id="L1", emr_connection=conn)
    start = datetime.now(UTC).replace(microsecond=0)
    Appointment.objects.create(organization=org, emr_connection=conn, source="emr", ehr_appointment_id="A1", start=start,
                               end=start + timedelta(minutes=20), primary_provider=provider, patient_mrn="1")
    yield {"client_id": tenant.client_id, "client_secret": tenant.client_secret, "access_token": tenant.access_token}
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.django_db
@emr_schema.parametrize()
@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_input_makes_the_emr_api_fail(case, emr_headers):
    response = case.call(headers=emr_headers)
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
    if response.status_code == 401:  # schemathesis also tries leaving credentials out
        assert response.json()["message"].startswith("Unauthorized: ")
