"""Values the APIs and the availability engine parse are validated on the model, so the admin's
form refuses what the API would refuse: bad input is a form error, nothing is saved, and the API
keeps answering 200."""

from __future__ import annotations

from datetime import date, time

import pytest
from django.urls import reverse

from booking.models import Location, RecurringBlock, Resource, ResourceService
from tenants.models import Organization
from tests import factories as f
from tests.admin.forms import form_errors, submit
from tests.booking.conftest import MONDAY


@pytest.fixture
def staff(client, admin_world):
    client.force_login(admin_world.staff)
    return client


@pytest.fixture
def bookable(admin_world):
    """Tenant A's location, service and resource linked, so /v3/availability reads them all."""
    ResourceService.objects.create(
        organization=admin_world.a.organization, resource=admin_world.a_resource, service=admin_world.a_service,
        location=admin_world.a_location,
    )
    f.ShiftFactory(resource=admin_world.a_resource)
    return admin_world


def _api_still_answers(world):
    api = world.a.v3()
    for url in ("/v3/locations", "/v3/resources", "/v3/recurringBlocks", f"/v3/locations/{world.a_location.pk}"):
        response = api.get(url)
        assert response.status_code == 200, (url, response.content[:300])
    availability = api.get("/v3/availability", {
        "startDate": MONDAY, "endDate": MONDAY,
        "LocationId": str(world.a_location.pk), "ServiceId": str(world.a_service.pk),
    })
    assert availability.status_code == 200, availability.content[:300]


BAD_WEEKLY = [
    '[{"dayOfWeek": 1}]',
    '"junk"',
    '{"dayOfWeek": 1, "startTime": "09:00:00", "endTime": "10:00:00"}',
    '[{"dayOfWeek": 9, "startTime": "x", "endTime": "10:00:00"}]',
    '[{"dayOfWeek": 1, "startTime": "09:00", "endTime": "10:00:00"}]',
    '[{"dayOfWeek": 1, "startTime": "10:00:00", "endTime": "09:00:00"}]',
    '[{"dayOfWeek": 1, "startTime": "25:00:00", "endTime": "26:00:00"}]',
    '[{"dayOfWeek": true, "startTime": "09:00:00", "endTime": "10:00:00"}]',
    '[{"dayOfWeek": "1", "startTime": "09:00:00", "endTime": "10:00:00"}]',
    '[{"dayOfWeek": 1, "startTime": "09:00:00", "endTime": "10:00:00", "note": "x"}]',
    '[7]',
]


@pytest.mark.parametrize("value", BAD_WEEKLY)
def test_location_weekly_availability_is_validated(staff, bookable, value):
    location = bookable.a_location
    before = list(location.weekly_availability)
    errors = form_errors(submit(staff, reverse("admin:booking_location_change", args=[location.pk]), weekly_availability=value))
    assert "weekly_availability" in errors
    location.refresh_from_db()
    assert location.weekly_availability == before
    _api_still_answers(bookable)


@pytest.mark.parametrize("value", BAD_WEEKLY[:4])
def test_a_new_location_with_bad_weekly_availability_is_not_created(staff, bookable, value):
    response = submit(staff, reverse("admin:booking_location_add"), name="Annex", timezone="UTC", weekly_availability=value)
    assert "weekly_availability" in form_errors(response)
    assert not Location.objects.filter(name="Annex").exists()
    _api_still_answers(bookable)


def test_good_weekly_availability_is_saved_and_served(staff, bookable):
    location = bookable.a_location
    value = '[{"dayOfWeek": 1, "startTime": "08:00:00", "endTime": "12:00:00"}, {"dayOfWeek": 5, "startTime": "22:00:00", "endTime": "24:00:00"}]'
    response = submit(staff, reverse("admin:booking_location_change", args=[location.pk]), weekly_availability=value)
    assert response.status_code == 302, response.content.decode()[:2000]
    body = bookable.a.v3().get(f"/v3/locations/{location.pk}").json()
    assert body["weeklyAvailability"] == [
        {"dayOfWeek": 1, "startTime": "08:00:00", "endTime": "12:00:00"},
        {"dayOfWeek": 5, "startTime": "22:00:00", "endTime": "24:00:00"},
    ]
    _api_still_answers(bookable)


@pytest.fixture
def recurring(bookable):
    return f.RecurringBlockFactory(
        resource=bookable.a_resource, frequency=RecurringBlock.Frequency.WEEKLY, weekdays=[3],
        start_date=date.fromisoformat(MONDAY), start_time=time(12), end_time=time(13),
    )


@pytest.mark.parametrize("value", ['["x", 9]', "[7]", "[-1]", '"3"', "3", "[true]", "[1, 1]", "[1.5]", '{"day": 1}'])
def test_recurring_block_weekdays_are_validated(staff, bookable, recurring, value):
    errors = form_errors(submit(staff, reverse("admin:booking_recurringblock_change", args=[recurring.pk]), weekdays=value))
    assert "weekdays" in errors
    recurring.refresh_from_db()
    assert recurring.weekdays == [3]
    _api_still_answers(bookable)


def test_weekdays_only_for_weekly_blocks(staff, bookable, recurring):
    url = reverse("admin:booking_recurringblock_change", args=[recurring.pk])
    errors = form_errors(submit(staff, url, frequency="DAILY", weekdays="[1]"))
    assert "weekdays" in errors
    recurring.refresh_from_db()
    assert recurring.frequency == "WEEKLY"


@pytest.mark.parametrize(
    "field,value",
    [
        ("npi", "12345"),
        ("npi", "12345678901"),
        ("npi", "12345abcde"),
        ("npi", "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19\uff10"),
        ("licensed_states", '["ZZ"]'),
        ("licensed_states", '"CA"'),
        ("licensed_states", "[9]"),
        ("licensed_states", '["ca"]'),
        ("licensed_states", '["CA", "CA"]'),
        ("licensed_states", '{"CA": true}'),
    ],
)
def test_resource_npi_and_licensed_states_are_validated(staff, bookable, field, value):
    resource = bookable.a_resource
    Resource.objects.filter(pk=resource.pk).update(npi="1234567893", licensed_states=["MA"])
    errors = form_errors(submit(staff, reverse("admin:booking_resource_change", args=[resource.pk]), **{field: value}))
    assert field in errors
    resource.refresh_from_db()
    assert (resource.npi, resource.licensed_states) == ("1234567893", ["MA"])
    _api_still_answers(bookable)


def test_organization_default_hours_are_validated(staff, bookable):
    org = bookable.a.organization
    before = list(Organization.objects.get(pk=org.pk).default_hours)
    url = reverse("admin:tenants_organization_change", args=[org.pk])
    for value in ('[{"dayOfWeek": 1}]', '"junk"', '[{"dayOfWeek": 9, "startTime": "x", "endTime": "10:00:00"}]'):
        assert "default_hours" in form_errors(submit(staff, url, default_hours=value))
    assert Organization.objects.get(pk=org.pk).default_hours == before
    _api_still_answers(bookable)


@pytest.fixture
def shift(bookable):
    return bookable.a_resource.shifts.get()  # 09:00-17:00


def _rule(**fields) -> dict:
    rule = {"start_time": "09:00:00", "end_time": "10:00:00", "total_visits": "2", "visit_type_id": "FU", "visit_type_desc": ""}
    rule.update(fields)
    return {
        "visit_type_rules-TOTAL_FORMS": "1",
        **{f"visit_type_rules-0-{name}": value for name, value in rule.items()},
    }


@pytest.mark.parametrize(
    "rule,field",
    [
        ({"start_time": "08:00:00"}, "__all__"),  # starts before the shift
        ({"start_time": "16:00:00", "end_time": "18:00:00"}, "__all__"),  # ends after it
        ({"total_visits": "0"}, "total_visits"),
        ({"total_visits": "1001"}, "total_visits"),
    ],
)
def test_visit_type_rules_are_validated_like_the_emr_api(staff, bookable, shift, rule, field):
    from tests.admin.forms import inline_errors

    response = submit(staff, reverse("admin:booking_shift_change", args=[shift.pk]), **_rule(**rule))
    errors = inline_errors(response)
    assert errors and field in errors[0], errors
    assert not shift.visit_type_rules.exists()
    assert bookable.a.v1().get("/v1/providers").status_code == 200


def test_a_visit_type_rule_inside_its_shift_is_saved(staff, bookable, shift):
    response = submit(staff, reverse("admin:booking_shift_change", args=[shift.pk]), **_rule())
    assert response.status_code == 302
    assert shift.visit_type_rules.get().total_visits == 2


def test_shift_recurrence_is_at_most_what_the_emr_api_accepts(staff, bookable, shift):
    errors = form_errors(submit(staff, reverse("admin:booking_shift_change", args=[shift.pk]), recur_every_weeks="53"))
    assert "recur_every_weeks" in errors
    shift.refresh_from_db()
    assert shift.recur_every_weeks == 1


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules"])
def test_zones_that_are_not_iana_zones_are_refused(staff, bookable, zone):
    location = bookable.a_location
    errors = form_errors(submit(staff, reverse("admin:booking_location_change", args=[location.pk]), timezone=zone))
    assert "timezone" in errors
    location.refresh_from_db()
    assert location.timezone == "UTC"


def test_a_resource_email_is_stored_trimmed_and_lowercase_as_the_api_stores_it(staff, bookable):
    resource = bookable.a_resource
    response = submit(staff, reverse("admin:booking_resource_change", args=[resource.pk]), email="  Dr.Ada@Clinic.TEST ")
    assert response.status_code == 302, form_errors(response)
    resource.refresh_from_db()
    assert resource.email == "dr.ada@clinic.test"
    answered = bookable.a.v3().get(f"/v3/resources/{resource.pk}").json()
    assert answered["email"] == "dr.ada@clinic.test"
