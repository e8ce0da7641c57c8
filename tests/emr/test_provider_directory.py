"""``GET /api/v1/provider-availability`` against a fake Calendly: validation, matching, ordering,
both answer shapes, the link format, the cache, upstream failures, the rate limit, isolation."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.core.cache import cache

from booking.models import ActiveStatus
from emr.services.calendly import calendly_sync
from tests.conftest import make_tenant
from tests.emr.calendly_fixtures import connect, day_after_tomorrow, directory, provider, z

pytestmark = pytest.mark.django_db
URL = "/api/v1/provider-availability"
ET_ADA = "aaaaaaaa-0000-4000-8000-000000000001"
ET_ADA2 = "aaaaaaaa-0000-4000-8000-000000000002"
ET_BO = "bbbbbbbb-0000-4000-8000-000000000001"
ET_CY = "cccccccc-0000-4000-8000-000000000001"


@pytest.fixture
def world(tenant, calendly):
    """Three providers (Zed Ada in CA+NY with two event types, Bo in NY, Cy in TX), synced."""
    ada = provider(tenant, "Zed Ada", "ada@clinic.test", states=["CA", "NY"])
    bo = provider(tenant, "Bo Bell", "bo@clinic.test", states=["NY"])
    provider(tenant, "Cy Cole", "cy@clinic.test", states=["TX"])
    u_ada, u_bo, u_cy = calendly.user("ADA", "ada@clinic.test"), calendly.user("BO", "bo@clinic.test"), calendly.user("CY", "cy@clinic.test")
    calendly.event_type(ET_ADA2, u_ada, "Video visit")
    calendly.event_type(ET_ADA, u_ada, "Intake")
    calendly.event_type(ET_BO, u_bo, "Intake")
    calendly.event_type(ET_CY, u_cy, "Intake")
    calendly.event_type("dddddddd-0000-4000-8000-000000000001", u_bo, "Old", active=False)
    connection = connect(tenant, calendly)
    calendly_sync(connection=connection)
    calendly.log.clear()
    return {"ada": ada, "bo": bo, "connection": connection}


def get(tenant, **params):
    return directory(tenant).get(URL, params)


def window(days: float = 3):
    start = day_after_tomorrow()
    return start, start + timedelta(days=days)


def test_without_a_window_one_item_per_provider_and_active_event_type_ordered(tenant, world, calendly):
    response = get(tenant, provider_states="NY")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == 200 and body["success"] is True
    assert body["message"] == "Providers Availability link fetched successfully"
    assert body["data"] == [
        {"providerName": "Bo Bell", "calendlyLink": f"https://calendly.test/{ET_BO}", "eventTypeId": ET_BO},
        {"providerName": "Zed Ada", "calendlyLink": f"https://calendly.test/{ET_ADA}", "eventTypeId": ET_ADA},
        {"providerName": "Zed Ada", "calendlyLink": f"https://calendly.test/{ET_ADA2}", "eventTypeId": ET_ADA2},
    ]
    assert calendly.log == []  # this shape answers from the synced data alone


@pytest.mark.parametrize("states,names", [
    (" ca , ny ", ["Bo Bell", "Zed Ada", "Zed Ada"]),
    ("Tx", ["Cy Cole"]),
    ("CA", ["Zed Ada", "Zed Ada"]),
    ("FL,WA", []),
])
def test_state_codes_are_trimmed_and_case_insensitive(tenant, world, states, names):
    response = get(tenant, provider_states=states)
    assert response.status_code == 200
    assert [item["providerName"] for item in response.json()["data"]] == names


def test_email_is_trimmed_and_lowercased_then_matched_exactly(tenant, world):
    data = get(tenant, provider_states="NY,CA", provider_email="  ADA@Clinic.Test ").json()["data"]
    assert [(i["providerName"], i["eventTypeId"]) for i in data] == [("Zed Ada", ET_ADA), ("Zed Ada", ET_ADA2)]
    assert get(tenant, provider_states="NY", provider_email="ada@clinic.tes").json()["data"] == []


def test_event_type_id_filters(tenant, world):
    data = get(tenant, provider_states="NY", event_type_id=ET_ADA2).json()["data"]
    assert data == [{"providerName": "Zed Ada", "calendlyLink": f"https://calendly.test/{ET_ADA2}", "eventTypeId": ET_ADA2}]
    assert get(tenant, provider_states="NY", event_type_id="00000000-0000-4000-8000-000000000000").json()["data"] == []


def test_inactive_providers_and_other_resource_types_are_left_out(tenant, world, calendly):
    type(world["bo"]).objects.filter(pk=world["bo"].pk).update(status=ActiveStatus.INACTIVE)
    room = provider(tenant, "A room", "room@clinic.test", states=["NY"], type="room")
    calendly.event_type("eeeeeeee-0000-4000-8000-000000000001", calendly.user("ROOM", room.email), "Room")
    calendly_sync(connection=world["connection"])
    names = [i["providerName"] for i in get(tenant, provider_states="NY").json()["data"]]
    assert names == ["Zed Ada", "Zed Ada"]


def test_with_a_window_open_times_merged_sorted_and_linked(tenant, world, calendly, settings):
    settings.CALENDLY_CHUNK_DAYS = 7  # merged across chunks
    start, end = window(10)
    uri = f"{calendly.url}/event_types/{ET_ADA}"
    times = [start + timedelta(days=9, hours=15), start + timedelta(hours=9), start + timedelta(days=7, hours=9, minutes=30),
             start + timedelta(days=1, hours=3, minutes=30)]
    calendly.times[uri] = [z(t) for t in times]
    calendly.times[f"{calendly.url}/event_types/{ET_BO}"] = []  # Bo has nothing open: left out
    response = get(tenant, provider_states="ny", event_type_id=ET_ADA, start_time=z(start), end_time=z(end))
    assert response.status_code == 200, response.content
    first = start + timedelta(hours=9)
    assert response.json()["data"] == [{
        "providerName": "Zed Ada",
        "calendlyLink": f"https://calendly.test/{ET_ADA}/{first.strftime('%Y-%m-%dT%H:%M:%S')}+00:00",
        "startTime": [z(t) for t in sorted(times)],
        "eventTypeId": ET_ADA,
    }]
    assert len(calendly.calls("/event_type_available_times")) == 2  # 10 days: two chunks


def test_a_provider_with_no_open_time_is_left_out(tenant, world, calendly):
    start, end = window(2)
    calendly.times[f"{calendly.url}/event_types/{ET_BO}"] = [z(start + timedelta(days=5))]  # outside the window
    response = get(tenant, provider_states="NY", event_type_id=ET_BO, start_time=z(start), end_time=z(end))
    assert response.status_code == 200 and response.json()["data"] == []


def test_a_past_start_is_moved_to_now(tenant, world, calendly):
    from django.utils import timezone

    now = timezone.now()
    uri = f"{calendly.url}/event_types/{ET_ADA}"
    later = (now + timedelta(hours=2)).replace(microsecond=0)
    calendly.times[uri] = [z(later)]
    response = get(tenant, provider_states="CA", event_type_id=ET_ADA, start_time=z(now - timedelta(days=2)),
                   end_time=z(now + timedelta(days=1)))
    assert response.status_code == 200, response.content
    assert response.json()["data"][0]["startTime"] == [z(later)]
    asked = calendly.calls("/event_type_available_times")[0].query["start_time"]
    assert asked >= z(now)  # never the past, which Calendly refuses
    # Entirely in the past: nothing to ask, nothing open.
    calendly.log.clear()
    response = get(tenant, provider_states="CA", event_type_id=ET_ADA, start_time=z(now - timedelta(days=2)),
                   end_time=z(now - timedelta(days=1)))
    assert response.json()["data"] == [] and calendly.log == []


def test_times_are_cached_and_a_sync_invalidates_them(tenant, world, calendly):
    start, end = window(3)
    uri = f"{calendly.url}/event_types/{ET_ADA}"
    calendly.times[uri] = [z(start + timedelta(hours=9))]
    params = {"provider_states": "CA", "event_type_id": ET_ADA, "start_time": z(start), "end_time": z(end)}
    first = get(tenant, **params).json()
    calendly.times[uri] = [z(start + timedelta(hours=10))]
    assert get(tenant, **params).json() == first  # from the cache
    narrower = get(tenant, **{**params, "end_time": z(end - timedelta(days=1))}).json()
    assert narrower["data"][0]["startTime"] == [z(start + timedelta(hours=9))]  # a covered window: cached too
    assert len(calendly.calls("/event_type_available_times")) == 1
    calendly_sync(connection=world["connection"])
    assert get(tenant, **params).json()["data"][0]["startTime"] == [z(start + timedelta(hours=10))]


def test_a_wider_window_than_the_cached_one_asks_again(tenant, world, calendly):
    start, end = window(3)
    uri = f"{calendly.url}/event_types/{ET_ADA}"
    calendly.times[uri] = [z(start + timedelta(hours=9)), z(start + timedelta(days=5))]
    params = {"provider_states": "CA", "event_type_id": ET_ADA, "start_time": z(start), "end_time": z(end)}
    get(tenant, **params)
    wider = get(tenant, **{**params, "end_time": z(end + timedelta(days=3))}).json()
    assert wider["data"][0]["startTime"] == [z(start + timedelta(hours=9)), z(start + timedelta(days=5))]


@pytest.mark.parametrize("fault,status,message,text", [
    ({"status": 500}, 502, "Bad gateway", "Calendly answered 500"),
    ({"status": 401, "body": {"title": "Unauthenticated", "message": "The access token is invalid"}}, 502, "Bad gateway",
     "Unauthenticated"),
    ({"status": 429, "headers": {"X-RateLimit-Reset": "60"}}, 503, "Service unavailable", "rate limiting"),
    ({"status": 0, "delay": 3}, 504, "Gateway timeout", "did not answer"),
])
def test_upstream_trouble_answers_502_503_504_in_the_directory_shape(tenant, world, calendly, settings, fault, status, message, text):
    settings.CALENDLY_TIMEOUT_SECONDS = 0.5
    start, end = window(10)
    for et in (ET_ADA, ET_BO):
        calendly.times[f"{calendly.url}/event_types/{et}"] = [z(start + timedelta(hours=9))]
    calendly.fail("/event_type_available_times", **fault)
    response = get(tenant, provider_states="NY", event_type_id=ET_ADA, start_time=z(start), end_time=z(end))
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"status", "success", "message", "error"}  # never a partial data list
    assert body["status"] == status and body["success"] is False and body["message"] == message
    assert text in body["error"] and body["error"].startswith("Calendly: ")
    if status == 503:
        assert response["Retry-After"] == "60"
    # Nothing of the failure was cached: once Calendly is back, the answer is complete.
    calendly.faults.clear()
    again = get(tenant, provider_states="NY", event_type_id=ET_ADA, start_time=z(start), end_time=z(end))
    assert again.status_code == 200 and len(again.json()["data"]) == 1


def test_a_429_then_success_answers_200(tenant, world, calendly):
    start, end = window(2)
    calendly.times[f"{calendly.url}/event_types/{ET_ADA}"] = [z(start + timedelta(hours=9))]
    calendly.fail("/event_type_available_times", status=429, headers={"Retry-After": "0.2"})
    response = get(tenant, provider_states="CA", event_type_id=ET_ADA, start_time=z(start), end_time=z(end))
    assert response.status_code == 200 and response.json()["data"][0]["startTime"] == [z(start + timedelta(hours=9))]
    assert len(calendly.calls("/event_type_available_times")) == 2


def test_an_event_type_deleted_in_calendly_since_the_sync_has_no_times(tenant, world, calendly):
    start, end = window(2)
    calendly.event_types = [e for e in calendly.event_types if ET_ADA not in e["uri"]]
    response = get(tenant, provider_states="CA", event_type_id=ET_ADA, start_time=z(start), end_time=z(end))
    assert response.status_code == 200 and response.json()["data"] == []


def test_many_providers_with_one_shared_event_type_are_asked_concurrently(tenant, calendly, settings):
    settings.CALENDLY_CHUNK_DAYS, settings.CALENDLY_CONCURRENCY = 7, 8
    for i in range(10):
        provider(tenant, f"Dr {i:02}", f"p{i}@clinic.test", states=["CA"])
        calendly.event_type(ET_ADA, calendly.user(f"P{i}", f"p{i}@clinic.test"), "Intake", copy_of=f"P{i}")
    calendly_sync(connection=connect(tenant, calendly))
    start, end = window(14)
    for i, e in enumerate(calendly.event_types):
        calendly.times[e["uri"]] = [z(start + timedelta(days=10, hours=i)), z(start + timedelta(hours=9))]
    calendly.fail("/event_type_available_times", status=0, delay=0.2, times=-1)
    response = get(tenant, provider_states="CA", event_type_id=ET_ADA, start_time=z(start), end_time=z(end))
    assert response.status_code == 200
    data = response.json()["data"]
    assert [item["providerName"] for item in data] == [f"Dr {i:02}" for i in range(10)]
    assert [item["startTime"] for item in data] == [
        [z(start + timedelta(hours=9)), z(start + timedelta(days=10, hours=i))] for i in range(10)
    ]
    assert len(calendly.calls("/event_type_available_times")) == 20  # 10 providers x 2 chunks
    assert 1 < calendly.max_in_flight <= 8  # overlapping, bounded by CALENDLY_CONCURRENCY


BAD = [
    ({}, "provider_states: This parameter is required."),
    ({"provider_states": ""}, "provider_states: This parameter is required."),
    ({"provider_states": " , "}, "provider_states: This parameter is required."),
    ({"provider_states": "CA,XX"}, "provider_states: 'XX' is not a US state code"),
    ({"provider_states": "California"}, "provider_states: 'California' is not a US state code"),
    ({"provider_states": "CA" + ",CA" * 600}, "provider_states: At most 56 state codes."),
    # Refused before the query is parsed, like a NUL in any parameter of any API route.
    ({"provider_states": "CA\x00"}, "provider_states: Must not contain a NUL character."),
    ({"provider_states": "CA", "provider_email": "not-an-email"}, "provider_email: Must be an email address."),
    ({"provider_states": "CA", "provider_email": "a@" + "b" * 260 + ".test"}, "provider_email: At most 254 characters."),
    ({"provider_states": "CA", "provider_email": "a\x00@b.test"}, "provider_email: Must not contain a NUL character."),
    ({"provider_states": "CA", "event_type_id": "has spaces"}, "event_type_id: Must be a Calendly event type id"),
    ({"provider_states": "CA", "event_type_id": "x" * 65}, "event_type_id: At most 64 characters."),
    ({"provider_states": "CA", "event_type_id": ET_ADA, "start_time": "2031-01-01T12:00:00Z"},
     "end_time: Required when start_time is given."),
    ({"provider_states": "CA", "event_type_id": ET_ADA, "end_time": "2031-01-01T12:00:00Z"},
     "start_time: Required when end_time is given."),
    ({"provider_states": "CA", "start_time": "2031-01-01T12:00:00Z", "end_time": "2031-01-02T12:00:00Z"},
     "event_type_id: Required when start_time and end_time are given."),
    ({"provider_states": "CA", "event_type_id": ET_ADA, "start_time": "2031-01-01", "end_time": "2031-01-02T12:00:00Z"},
     "start_time: Must be an ISO 8601 date-time with offset"),
    ({"provider_states": "CA", "event_type_id": ET_ADA, "start_time": "2031-01-01T12:00:00", "end_time": "2031-01-02T12:00:00Z"},
     "start_time: Must be an ISO 8601 date-time with offset"),
    ({"provider_states": "CA", "event_type_id": ET_ADA, "start_time": "2031-01-01T12:00:00Z", "end_time": "tomorrow"},
     "end_time: Must be an ISO 8601 date-time with offset"),
    ({"provider_states": "CA", "event_type_id": ET_ADA, "start_time": "2031-02-30T12:00:00Z", "end_time": "2031-03-02T12:00:00Z"},
     "start_time: Must be an ISO 8601"),
    ({"provider_states": "CA", "event_type_id": ET_ADA, "start_time": "2031-01-02T12:00:00Z", "end_time": "2031-01-02T11:59:59Z"},
     "end_time: Must not be before start_time."),
    ({"provider_states": "CA", "event_type_id": ET_ADA, "start_time": "2031-01-01T00:00:00Z", "end_time": "2031-02-01T00:00:01Z"},
     "end_time: Must be at most 31 days after start_time."),
    ({"provider_states": "CA", "event_type_id": ET_ADA, "start_time": "9999-01-01T00:00:00Z", "end_time": "9999-01-02T00:00:00Z"},
     "start_time: Must be an ISO 8601"),
]


@pytest.mark.parametrize("params,error", BAD, ids=[f"{i}:{e[:40]}" for i, (_, e) in enumerate(BAD)])
def test_bad_queries_are_400_in_the_directory_shape(tenant, world, calendly, params, error):
    response = directory(tenant).get(URL, params)
    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) == {"status", "success", "message", "error"}
    assert body["status"] == 400 and body["success"] is False and body["message"] == "Invalid request"
    assert error in body["error"], body["error"]
    assert calendly.log == []


@pytest.mark.parametrize("params", [
    {"provider_states": "CA,,NY"},
    {"provider_states": "CA", "provider_email": "   ", "event_type_id": ""},
    [("provider_states", "TX"), ("provider_states", "CA")],
    {"provider_states": "CA", "event_type_id": ET_ADA, "start_time": "2031-01-01T12:00:00Z", "end_time": "2031-01-01T12:00:00Z"},
    {"provider_states": "CA", "event_type_id": ET_ADA, "start_time": "2031-01-01T00:00:00Z", "end_time": "2031-02-01T00:00:00Z"},
    {"provider_states": "CA", "event_type_id": ET_ADA, "start_time": "2031-01-01T12:00:00 05:30", "end_time": "2031-01-02T12:00:00%2B05:30"},
], ids=["blank-items-dropped", "blank-values-absent", "repeated-adds", "equal", "exactly-31-days", "offsets"])
def test_edge_queries_are_valid(tenant, world, calendly, params):
    pairs = params if isinstance(params, list) else list(params.items())
    response = directory(tenant).get(URL + "?" + "&".join(f"{k}={v}" for k, v in pairs))
    assert response.status_code == 200, response.content
    if isinstance(params, list):  # a repeated list parameter adds its values
        assert [i["providerName"] for i in response.json()["data"]] == ["Cy Cole", "Zed Ada", "Zed Ada"]


@pytest.mark.parametrize("chunk_days,days,calls", [(7, 31, 5), (7, 10, 2), (31, 31, 1), (31, 10, 1)])
def test_a_window_is_asked_in_chunks_of_calendly_chunk_days(tenant, world, calendly, settings, chunk_days, days, calls):
    settings.CALENDLY_CHUNK_DAYS = chunk_days
    calendly.max_days = chunk_days  # the fake refuses any longer span
    start = day_after_tomorrow()
    end = start + timedelta(days=days)
    uri = f"{calendly.url}/event_types/{ET_ADA}"
    calendly.times[uri] = [z(start + timedelta(days=d, hours=9)) for d in reversed(range(days))]
    response = get(tenant, provider_states="CA", event_type_id=ET_ADA, start_time=z(start), end_time=z(end))
    assert response.status_code == 200, response.content
    assert response.json()["data"][0]["startTime"] == [z(start + timedelta(days=d, hours=9)) for d in range(days)]
    asked = calendly.calls("/event_type_available_times")
    assert len(asked) == calls
    assert all(datetime.fromisoformat(a.query["end_time"]) - datetime.fromisoformat(a.query["start_time"])
               <= timedelta(days=chunk_days) for a in asked)


@pytest.mark.parametrize("headers", [{}, {"HTTP_CV_API_KEY": "sk_" + "0" * 60}, {"HTTP_CV_API_KEY": ""}, {"HTTP_X_API_KEY": "x"}],
                         ids=["none", "unknown", "empty", "other-family-header"])
def test_missing_or_invalid_keys_are_401(db, headers):
    from rest_framework.test import APIClient

    if "HTTP_X_API_KEY" in headers:
        headers = {"HTTP_X_API_KEY": make_tenant("Other").api_key}
    response = APIClient().get(URL, {"provider_states": "CA"}, **headers)
    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"status", "success", "message", "error"}
    assert body["status"] == 401 and body["success"] is False and body["message"] == "Unauthorized"


def test_organizations_see_only_their_own_providers(tenant, world, calendly):
    other = make_tenant("Other clinic")
    provider(other, "Other Doc", "ada@clinic.test", states=["CA", "NY"])
    # The other organization's Calendly is the same account: its users match only its providers.
    connect(other, calendly)
    from emr.models import CalendlyConnection

    calendly_sync(connection=CalendlyConnection.objects.get(organization=other.organization))
    mine = get(tenant, provider_states="CA,NY").json()["data"]
    theirs = get(other, provider_states="CA,NY").json()["data"]
    assert {i["providerName"] for i in mine} == {"Zed Ada", "Bo Bell"}
    assert {i["providerName"] for i in theirs} == {"Other Doc"}
    # A tenant without a Calendly connection sees nothing, even with the same event type id.
    third = make_tenant("Third")
    provider(third, "Third Doc", "ada@clinic.test", states=["CA"])
    assert get(third, provider_states="CA", event_type_id=ET_ADA).json()["data"] == []


def test_the_rate_limit_is_60_a_minute_per_key_in_the_directory_shape(tenant, world, settings):
    cache.clear()
    other = make_tenant("Other clinic")
    statuses = [get(tenant, provider_states="CA").status_code for _ in range(61)]
    assert statuses[:60] == [200] * 60 and statuses[60] == 429
    response = get(tenant, provider_states="CA")
    body = response.json()
    assert response.status_code == 429 and set(body) == {"status", "success", "message", "error"}
    assert body["status"] == 429 and body["success"] is False and body["message"] == "Too many requests"
    assert 1 <= int(response["Retry-After"]) <= 60 and response["Retry-After"] in body["error"]
    assert get(other, provider_states="CA").status_code == 200  # another key has its own count


def test_calendly_down_answers_502_in_the_directory_shape_and_caches_nothing(tenant, world, calendly):
    from emr.models import CalendlyConnection
    from tests.servers import free_port

    start, end = window(3)
    calendly.times[f"{calendly.url}/event_types/{ET_ADA}"] = [z(start + timedelta(hours=9))]
    live = world["connection"].base_url
    CalendlyConnection.objects.filter(pk=world["connection"].pk).update(base_url=f"http://127.0.0.1:{free_port()}")
    params = {"provider_states": "CA", "event_type_id": ET_ADA, "start_time": z(start), "end_time": z(end)}
    response = get(tenant, **params)
    assert response.status_code == 502, response.content
    body = response.json()
    assert set(body) == {"status", "success", "message", "error"}
    assert body["status"] == 502 and body["success"] is False and body["message"] == "Bad gateway"
    assert body["error"].startswith("Calendly: ") and "could not be reached" in body["error"]
    CalendlyConnection.objects.filter(pk=world["connection"].pk).update(base_url=live)
    assert get(tenant, **params).json()["data"][0]["startTime"] == [z(start + timedelta(hours=9))]


def test_every_one_of_the_56_codes_is_accepted_in_any_case(tenant, world):
    from tenants.us_states import US_STATE_CODES

    assert len(US_STATE_CODES) == 56
    codes = ", ".join(code.lower() if i % 2 else code for i, code in enumerate(sorted(US_STATE_CODES)))
    response = get(tenant, provider_states=codes)
    assert response.status_code == 200, response.content
    assert [i["providerName"] for i in response.json()["data"]] == ["Bo Bell", "Cy Cole", "Zed Ada", "Zed Ada"]
    for code in ("UM", "FM", "MH", "PW", "AA"):  # US codes of other kinds: not licensing states
        assert get(tenant, provider_states=f"CA,{code}").status_code == 400


def test_the_queries_of_an_answer_do_not_grow_with_its_providers(tenant, world, calendly):
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    start, end = window(3)
    links = {"provider_states": "CA,NY,TX"}
    times = {"provider_states": "CA,NY,TX", "event_type_id": ET_ADA, "start_time": z(start), "end_time": z(end)}

    def queries(params) -> tuple[int, int]:
        get(tenant, **params)  # first: times asked of Calendly and cached
        with CaptureQueriesContext(db) as captured:
            response = get(tenant, **params)
        assert response.status_code == 200, response.content
        return len(response.json()["data"]), len(captured)

    calendly.times[f"{calendly.url}/event_types/{ET_ADA}"] = [z(start + timedelta(hours=9))]
    before = queries(links), queries(times)
    for i in range(4):
        provider(tenant, f"Dr {i}", f"dr{i}@clinic.test", states=["TX"])
        uri = calendly.event_type(ET_ADA, calendly.user(f"DR{i}", f"dr{i}@clinic.test"), "Intake", copy_of=f"DR{i}")
        calendly.times[uri] = [z(start + timedelta(hours=10))]
    calendly_sync(connection=world["connection"])
    after = queries(links), queries(times)
    assert [data for data, _ in before] == [4, 1] and [data for data, _ in after] == [8, 5]
    assert [count for _, count in before] == [count for _, count in after]
