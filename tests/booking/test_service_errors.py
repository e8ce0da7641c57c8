"""Services and selectors refuse with domain errors (``tenants.errors``), never an API framework's
exception, and write nothing when they do."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.http import Http404
from rest_framework.exceptions import APIException

from booking import models as b
from booking.availability.selectors import AvailabilityParams, availability_answer
from booking.selectors import tenant_get
from booking.services.appointments import appointment_book, appointment_confirm
from booking.services.crud import tenant_object_delete
from emr.models import Job
from emr.selectors import location_get, provider_get
from emr.services import emr_connection_create
from emr.services.live_fetch import FetchRequest, live_fetch_start
from tenants.errors import Conflict, InvalidInput, NotFound
from tests.booking.conftest import MONDAY_DATE, utc


def _not_a_web_exception(error: Exception) -> None:
    assert not isinstance(error, (APIException, Http404)), type(error).__mro__


def _params(clinic, **changes) -> AvailabilityParams:
    fields = {
        "location_id": clinic.location.pk, "service_id": clinic.service.pk, "start": utc(0), "end": utc(23),
        "zone": "America/New_York", **changes,
    }
    return AvailabilityParams(**fields)


def test_an_invalid_override_duration_is_invalid_input_naming_the_parameter(clinic):
    with pytest.raises(InvalidInput) as caught:
        availability_answer(organization=clinic.organization, params=_params(clinic, override_duration=45))
    _not_a_web_exception(caught.value)
    assert list(caught.value.fields) == ["overrideDuration"]


def test_an_unlinked_resource_is_invalid_input(clinic):
    stranger = clinic.add_resource("Not linked", link=False)
    params = _params(clinic, resource_ids=(str(stranger.pk),), round_robin="NONE")
    with pytest.raises(InvalidInput) as caught:
        availability_answer(organization=clinic.organization, params=params)
    assert caught.value.fields == {"ResourceIds": [f"Resource {stranger.pk} does not offer this service at this location."]}


def test_an_unknown_or_other_tenants_object_is_not_found(clinic, other_clinic):
    for pk in (other_clinic.location.pk, "not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(NotFound) as caught:
            tenant_get(model=b.Location, organization=clinic.organization, pk=pk)
        _not_a_web_exception(caught.value)
        assert caught.value.message.startswith("Location")
    with pytest.raises(NotFound):
        availability_answer(organization=clinic.organization, params=_params(clinic, location_id=other_clinic.location.pk))


def test_emr_selectors_answer_not_found(tenant):
    with pytest.raises(NotFound, match="Provider not found."):
        provider_get(connection=tenant.emr_connection, ehr_id="nobody")
    with pytest.raises(NotFound, match="Location not found."):
        location_get(connection=tenant.emr_connection, pk="not-a-uuid")


def test_booking_a_taken_time_is_a_conflict_and_writes_nothing(clinic):
    adams = clinic.resources[0]
    terms = {
        "organization": clinic.organization, "service": clinic.service, "location": clinic.location,
        "start": utc(15), "resource_ids": [str(adams.pk)],
    }
    appointment_book(**terms)
    with pytest.raises(Conflict) as caught:
        appointment_book(**terms)
    _not_a_web_exception(caught.value)
    assert caught.value.message.startswith("That time is not bookable")
    assert b.Appointment.objects.filter(organization=clinic.organization).count() == 1


def test_combined_booking_without_resources_is_invalid_input(clinic):
    clinic.service.round_robin = "COMBINED"
    clinic.service.save()
    with pytest.raises(InvalidInput) as caught:
        appointment_book(organization=clinic.organization, service=clinic.service, location=clinic.location, start=utc(15))
    assert list(caught.value.fields) == ["ResourceIds"]
    assert not b.Appointment.objects.exists()


def test_confirming_a_cancelled_appointment_is_a_conflict(clinic):
    appointment = appointment_book(
        organization=clinic.organization, service=clinic.service, location=clinic.location, start=utc(15),
        resource_ids=[str(clinic.resources[0].pk)],
    )
    b.Appointment.objects.filter(pk=appointment.pk).update(status=b.Appointment.Status.CANCELLED)
    with pytest.raises(Conflict, match="The appointment is cancelled."):
        appointment_confirm(appointment=appointment)


def test_deleting_a_location_with_upcoming_appointments_is_a_conflict(clinic):
    appointment_book(
        organization=clinic.organization, service=clinic.service, location=clinic.location,
        start=utc(15, days=1), resource_ids=[str(clinic.resources[0].pk)],
    )
    with pytest.raises(Conflict, match="1 upcoming appointment"):
        tenant_object_delete(instance=clinic.location)
    assert b.Location.objects.filter(pk=clinic.location.pk).exists()


def test_a_live_fetch_for_a_vendor_without_adapter_is_invalid_input_and_queues_nothing(tenant):
    athena = emr_connection_create(organization=tenant.organization, vendor="athenahealth", name="Athena").connection
    request = FetchRequest(search_by="date_range", start_date=MONDAY_DATE, end_date=MONDAY_DATE + timedelta(days=1))
    with pytest.raises(InvalidInput) as caught:
        live_fetch_start(connection=athena, request=request)
    _not_a_web_exception(caught.value)
    assert caught.value.message.startswith("Live fetch for appointments is not supported for ")
    assert caught.value.fields == {} and not Job.objects.exists()
