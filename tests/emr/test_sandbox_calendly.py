"""The sandbox Calendly on pytest-django's live server: its users are the organization's providers,
its event types their services, and the directory's open times through it are exactly what
``GET /v3/availability`` offers for the same provider and window."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest
from django.test import override_settings

from booking.models import Resource
from emr.calendly import CalendlyAuthError, CalendlyBadRequest, CalendlyClient, CalendlyNotFound
from emr.models import CalendlyEventType, CalendlyUser
from emr.sandbox.calendly import sandbox_calendly_token
from emr.services.calendly import calendly_connect_sandbox, calendly_sync
from emr.services.demo import calendly_demo_sync
from tests.booking.conftest import MONDAY, clinic_make, utc
from tests.emr.calendly_fixtures import directory, z

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(live_server):
    with override_settings(SITE_URL=live_server.url):
        yield live_server.url


@pytest.fixture
def clinic(site):
    clinic = clinic_make("Sandbox Calendly Clinic")
    adams, baker = clinic.resources
    Resource.objects.filter(pk=adams.pk).update(type="provider", email="adams@clinic.test", licensed_states=["NY", "MA"])
    Resource.objects.filter(pk=baker.pk).update(type="provider", email="baker@clinic.test", licensed_states=["NY"])
    # Adams is booked at 09:00 New York time on MONDAY: that start is gone for him.
    booked = clinic.tenant.v3().post("/v3/appointments", {
        "ServiceId": str(clinic.service.pk), "LocationId": str(clinic.location.pk), "ResourceIds": [str(adams.pk)],
        "startTime": f"{MONDAY}T09:00:00-05:00", "customer": {"name": "Pat", "email": "pat@example.com"},
    }, format="json")
    assert booked.status_code == 201, booked.content
    connection = calendly_connect_sandbox(organization=clinic.organization)
    assert connection.base_url == f"{site}/sandbox/calendly"
    calendly_sync(connection=connection)
    return clinic


def v3_starts(clinic, resource, start: datetime, end: datetime) -> list[str]:
    response = clinic.tenant.v3().get("/v3/availability", {
        "startDate": z(start), "endDate": z(end), "LocationId": str(clinic.location.pk), "ServiceId": str(clinic.service.pk),
        "ResourceIds": str(resource.pk), "roundRobin": "NONE",
    })
    assert response.status_code == 200, response.content
    return [z(datetime.fromisoformat(t["start_time"])) for t in response.json()["availableTimes"]
            if str(resource.pk) in t["ResourceIds"]]


def test_the_sync_brings_the_providers_and_their_services(clinic):
    users = {u.email: u for u in CalendlyUser.objects.filter(organization=clinic.organization)}
    adams, baker = clinic.resources
    assert users["adams@clinic.test"].resource_id == adams.pk and users["baker@clinic.test"].resource_id == baker.pk
    assert len(users) == 3  # and the account's owner, who is no provider
    types = CalendlyEventType.objects.filter(organization=clinic.organization)
    assert {(t.calendly_user.resource_id, t.name, t.duration, t.active) for t in types} == {
        (adams.pk, "Visit", 30, True), (baker.pk, "Visit", 30, True)}
    assert len({t.event_type_id for t in types}) == 1  # one event type of the clinic, each provider's copy
    assert len({t.uri for t in types}) == 2


@pytest.mark.parametrize("chunk_days", [7, 31], ids=["two-7-day-chunks", "one-call"])
def test_directory_times_through_the_sandbox_agree_with_v3_availability(clinic, settings, chunk_days):
    settings.CALENDLY_CHUNK_DAYS = chunk_days
    adams, baker = clinic.resources
    event_type_id = CalendlyEventType.objects.filter(organization=clinic.organization).first().event_type_id
    start, end = utc(0), utc(0, days=10)
    response = directory(clinic.tenant).get("/api/v1/provider-availability", {
        "provider_states": "ny", "event_type_id": event_type_id, "start_time": z(start), "end_time": z(end)})
    assert response.status_code == 200, response.content
    data = {item["providerName"]: item for item in response.json()["data"]}
    assert set(data) == {"Dr. Adams", "Dr. Baker"}
    for resource in (adams, baker):
        expected = v3_starts(clinic, resource, start, end)
        assert len(expected) > 100
        assert data[resource.name]["startTime"] == expected
        first = datetime.fromisoformat(expected[0])
        assert data[resource.name]["calendlyLink"].endswith(f"/{first.strftime('%Y-%m-%dT%H:%M:%S')}+00:00")
    assert z(utc(14)) not in data["Dr. Adams"]["startTime"]  # his booking
    assert z(utc(14)) in data["Dr. Baker"]["startTime"]
    assert z(utc(14, 30)) in data["Dr. Adams"]["startTime"]


def test_the_scheduling_link_leads_to_a_page(clinic, site):
    event_type = CalendlyEventType.objects.filter(organization=clinic.organization).first()
    page = httpx.get(event_type.scheduling_url + "/2031-01-06T14:00:00+00:00")
    assert page.status_code == 200 and "Visit with Dr." in page.text, (event_type.scheduling_url, page.text[:500])


def test_the_sandbox_speaks_calendly_and_keeps_tenants_apart(clinic, site):
    other = clinic_make("Other Sandbox Clinic")
    base = f"{site}/sandbox/calendly"
    mine = CalendlyClient(token=sandbox_calendly_token(clinic.organization), base_url=base, page_size=1)
    theirs = CalendlyClient(token=sandbox_calendly_token(other.organization), base_url=base)
    me = mine.current_user()
    assert me.organization_uri == f"{base}/organizations/{clinic.organization.pk}"
    assert {m.email for m in mine.organization_members(organization_uri=me.organization_uri)} >= {
        "adams@clinic.test", "baker@clinic.test"}
    assert mine.stats.pages >= 3  # one member per page: next_page followed
    their_me = theirs.current_user()
    assert their_me.organization_uri != me.organization_uri
    with pytest.raises(CalendlyBadRequest):
        theirs.organization_members(organization_uri=me.organization_uri)  # not their organization
    mine_uri = mine.event_types(organization_uri=me.organization_uri)[0].uri
    with pytest.raises(CalendlyNotFound):
        theirs.available_times(event_type_uri=mine_uri, start=utc(0), end=utc(0, days=1))
    with pytest.raises(CalendlyAuthError), CalendlyClient(token="sbx_forged", base_url=base) as forged:
        forged.current_user()
    # Calendly's own limits: no span over 31 days, no start in the past.
    with pytest.raises(CalendlyBadRequest, match="no greater than 31 days"):
        mine.chunk_days = 32
        mine.available_times(event_type_uri=mine_uri, start=utc(0), end=utc(0, days=32))
    with pytest.raises(CalendlyBadRequest, match="in the future"):
        mine.chunk_days = 7
        mine.available_times(event_type_uri=mine_uri, start=utc(0, days=-800), end=utc(0, days=-799))
    mine.close()
    theirs.close()


def test_the_sandbox_is_off_with_the_other_sandboxes(clinic, site):
    with override_settings(SANDBOX_ENABLED=False):
        response = httpx.get(f"{site}/sandbox/calendly/users/me",
                             headers={"Authorization": f"Bearer {sandbox_calendly_token(clinic.organization)}"})
    assert response.status_code == 404 and response.json()["title"] == "Resource Not Found"


def test_the_demo_connects_and_syncs(site):
    clinic = clinic_make("Demo-like Clinic")
    Resource.objects.filter(pk=clinic.resources[0].pk).update(type="provider", email="adams@clinic.test", licensed_states=["NY"])
    job = calendly_demo_sync(organization=clinic.organization, run_now=True)
    assert job.status == "succeeded", job.error
    assert job.counts["users_linked"] == 1 and job.counts["event_types_active"] == 1
    data = directory(clinic.tenant).get("/api/v1/provider-availability", {"provider_states": "NY"}).json()["data"]
    assert [item["providerName"] for item in data] == ["Dr. Adams"]
    assert data[0]["calendlyLink"].startswith(f"{site}/sandbox/calendly/book/")
    again = calendly_demo_sync(organization=clinic.organization, run_now=True)  # the same connection, synced again
    assert again.status == "succeeded" and again.calendly_connection_id == job.calendly_connection_id
