"""Admin times are wall-clock times of the place they happen, with the zone named (admin.md,
"Time"): typed, shown and filtered by local day; times the clocks skip or repeat are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from booking.models import Appointment, AppointmentResource, Block, ResourceService
from tests import factories as f
from tests.admin.forms import form_errors

BOSTON, DENVER = "America/New_York", "America/Denver"


@pytest.fixture
def clinic(admin_world):
    """Alpha with a Boston and a Denver site; Dr Alpha Adams works in Boston."""
    org = admin_world.a.organization
    org.timezone = BOSTON
    org.save()
    boston = admin_world.a_location
    boston.timezone = BOSTON
    boston.save()
    denver = f.LocationFactory(organization=org, name="Alpha LoDo", timezone=DENVER)
    ResourceService.objects.create(organization=org, resource=admin_world.a_resource, service=admin_world.a_service, location=boston)
    return admin_world, boston, denver


@pytest.fixture
def staff(client, admin_world):
    client.force_login(admin_world.staff)
    return client


def _block_post(staff, resource, day: str, start: str, end: str, reason="Afternoon off"):
    return staff.post(reverse("admin:booking_block_add"), {
        "resource": resource.pk, "start_0": day, "start_1": start, "end_0": day, "end_1": end, "reason": reason,
    })


def test_a_block_typed_for_a_boston_provider_is_stored_in_boston_time(staff, clinic):
    world, *_ = clinic
    response = _block_post(staff, world.a_resource, "2031-01-07", "13:00", "17:00")
    assert response.status_code == 302, response.content.decode()[:3000]
    block = Block.objects.get(reason="Afternoon off")
    assert (block.start, block.end) == (datetime(2031, 1, 7, 18, tzinfo=UTC), datetime(2031, 1, 7, 22, tzinfo=UTC))
    # Named as what it is, in its zone, in the list and on its own page.
    assert str(block) == "Block: Dr Alpha Adams, Tue 7 Jan 2031, 13:00–17:00 EST (Afternoon off)"
    listing = staff.get(reverse("admin:booking_block_changelist")).content.decode()
    assert "Tue 7 Jan 2031, 13:00–17:00 EST" in listing
    page = staff.get(reverse("admin:booking_block_change", args=[block.pk])).content.decode()
    assert 'value="13:00:00"' in page and 'value="17:00:00"' in page and "America/New_York (EST)" in page


def test_a_summer_block_is_in_daylight_time(staff, clinic):
    world, *_ = clinic
    assert _block_post(staff, world.a_resource, "2031-07-08", "13:00", "17:00").status_code == 302
    block = Block.objects.get()
    assert block.start == datetime(2031, 7, 8, 17, tzinfo=UTC)
    assert "13:00–17:00 EDT" in str(block)


def test_a_location_block_is_in_the_locations_zone(staff, clinic):
    *_, denver = clinic
    response = staff.post(reverse("admin:booking_block_add"), {
        "location": denver.pk, "start_0": "2031-01-07", "start_1": "08:00", "end_0": "2031-01-07", "end_1": "12:00",
    })
    assert response.status_code == 302
    assert Block.objects.get().start == datetime(2031, 1, 7, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    "day,start,end,word",
    [
        ("2031-03-09", "02:30", "04:00", "does not exist"),  # spring forward in Boston: 02:00 → 03:00
        ("2031-11-02", "01:30", "03:00", "happens twice"),  # fall back: 01:00–02:00 twice
    ],
)
def test_times_the_clocks_skip_or_repeat_are_refused_with_a_message(staff, clinic, day, start, end, word):
    world, *_ = clinic
    errors = form_errors(_block_post(staff, world.a_resource, day, start, end))
    assert word in " ".join(errors["start"]) and "America/New_York" in " ".join(errors["start"])
    assert not Block.objects.exists()


def test_an_allocation_on_the_resource_page_is_typed_in_the_resources_zone(staff, clinic):
    world, boston, _ = clinic  # Dr Alpha Adams is linked at Boston
    from tests.admin.forms import form_values

    url = reverse("admin:booking_resource_change", args=[world.a_resource.pk])
    data = form_values(staff.get(url).content.decode())
    data.update({
        "allocations-TOTAL_FORMS": "1", "allocations-0-start_0": "2031-01-11", "allocations-0-start_1": "09:00",
        "allocations-0-end_0": "2031-01-11", "allocations-0-end_1": "12:00", "allocations-0-location": str(boston.pk),
        "_save": "Save",
    })
    response = staff.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    allocation = world.a_resource.allocations.get()
    assert allocation.start == datetime(2031, 1, 11, 14, tzinfo=UTC)


def _appointment(world, location, start: datetime, name: str):
    appointment = Appointment.objects.create(
        organization=world.a.organization, start=start, end=start + timedelta(minutes=30), location=location,
        service=world.a_service, customer_name=name,
    )
    AppointmentResource.objects.create(appointment=appointment, resource=world.a_resource)
    return appointment


def test_appointments_show_their_locations_time_and_zone(staff, clinic):
    world, boston, denver = clinic
    _appointment(world, boston, datetime(2031, 1, 7, 19, 20, tzinfo=UTC), "Boston Patient")
    _appointment(world, denver, datetime(2031, 1, 7, 23, 50, tzinfo=UTC), "Denver Patient")
    listing = staff.get(reverse("admin:booking_appointment_changelist"), {"day": "all"}).content.decode()
    assert "Tue 7 Jan 2031, 14:20–14:50 EST" in listing  # not 7:20 p.m.
    assert "Tue 7 Jan 2031, 16:50–17:20 MST" in listing  # not 11:50 p.m.


def test_the_day_filter_and_drill_down_use_each_locations_local_day(staff, clinic):
    world, boston, denver = clinic
    # 23:30 in Denver on Jan 7 is Jan 8 in UTC and in Boston.
    late_denver = _appointment(world, denver, datetime(2031, 1, 8, 6, 30, tzinfo=UTC), "Late Denver")
    early_boston = _appointment(world, boston, datetime(2031, 1, 8, 5, 30, tzinfo=UTC), "Early Boston")  # 00:30 Jan 8

    def listed(params) -> set[str]:
        response = staff.get(reverse("admin:booking_appointment_changelist"), params)
        assert response.status_code == 200
        return {a.customer_name for a in response.context["cl"].result_list}

    assert listed({"day": "2031-01-07"}) == {late_denver.customer_name}
    assert listed({"day": "2031-01-08"}) == {early_boston.customer_name}
    assert listed({"start__year": "2031", "start__month": "1", "start__day": "7"}) == {"Late Denver"}
    assert listed({"start__year": "2031", "start__month": "1", "start__day": "8"}) == {"Early Boston"}
    assert listed({"start__year": "2031", "start__month": "1"}) == {"Late Denver", "Early Boston"}


def test_today_is_each_locations_today(staff, clinic):
    world, _, denver = clinic
    now = timezone.now()
    today_denver = datetime.combine(now.astimezone(ZoneInfo(DENVER)).date(), datetime.min.time(), ZoneInfo(DENVER))
    _appointment(world, denver, today_denver + timedelta(hours=23, minutes=30), "Tonight in Denver")
    _appointment(world, denver, today_denver + timedelta(days=1, hours=9), "Tomorrow in Denver")
    response = staff.get(reverse("admin:booking_appointment_changelist"), {"day": "today"})
    assert {a.customer_name for a in response.context["cl"].result_list} == {"Tonight in Denver"}
    response = staff.get(reverse("admin:booking_appointment_changelist"), {"day": "tomorrow"})
    assert {a.customer_name for a in response.context["cl"].result_list} == {"Tomorrow in Denver"}


def test_the_appointment_list_starts_at_today_upcoming_first(staff, clinic):
    world, boston, _ = clinic
    now = timezone.now().replace(microsecond=0)
    _appointment(world, boston, now - timedelta(days=30), "Long ago")
    _appointment(world, boston, now - timedelta(days=2), "Recently")
    _appointment(world, boston, now + timedelta(days=9), "Later")
    _appointment(world, boston, now + timedelta(days=1), "Soon")
    response = staff.get(reverse("admin:booking_appointment_changelist"))
    assert [a.customer_name for a in response.context["cl"].result_list] == ["Soon", "Later", "Recently", "Long ago"]


def test_searching_a_providers_name_finds_their_appointments(staff, clinic):
    world, boston, _ = clinic
    other = f.ResourceFactory(organization=world.a.organization, name="Dr Other Person")
    mine = _appointment(world, boston, datetime(2031, 1, 7, 15, tzinfo=UTC), "Seen by Adams")
    theirs = Appointment.objects.create(organization=world.a.organization, start=mine.start, end=mine.end, location=boston,
                                        customer_name="Seen by Other")
    AppointmentResource.objects.create(appointment=theirs, resource=other)
    response = staff.get(reverse("admin:booking_appointment_changelist"), {"q": "Adams"})
    assert [a.customer_name for a in response.context["cl"].result_list] == ["Seen by Adams"]
    response = staff.get(reverse("admin:booking_appointment_changelist"), {"provider": str(other.pk)})
    assert [a.customer_name for a in response.context["cl"].result_list] == ["Seen by Other"]


def test_jobs_and_stamps_are_in_the_organizations_zone(staff, clinic):
    from emr.models import Job

    world, *_ = clinic
    job = Job.objects.create(organization=world.a.organization, kind=Job.Kind.APPOINTMENTS_FETCH, status=Job.Status.FAILED)
    Job.objects.filter(pk=job.pk).update(created_at=datetime(2031, 1, 7, 19, 20, tzinfo=UTC))
    listing = staff.get(reverse("admin:emr_job_changelist")).content.decode()
    assert "Tue 7 Jan 2031, 14:20 EST" in listing
