"""The Calendly client against a fake Calendly on a loopback port: pagination, chunks of a window,
merging, 429 handling within the deadline, errors mapped to types, timeouts, bounded concurrency.
No database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from emr.calendly import (
    CalendlyAuthError,
    CalendlyBadRequest,
    CalendlyClient,
    CalendlyNotFound,
    CalendlyProtocolError,
    CalendlyRateLimited,
    CalendlyTimeout,
    CalendlyUnavailable,
    time_chunks,
)
from tests.emr.fake_calendly import TOKEN, FakeCalendly


@pytest.fixture
def calendly():
    server = FakeCalendly().start()
    yield server
    server.stop()


def client_for(calendly, **kwargs) -> CalendlyClient:
    return CalendlyClient(token=kwargs.pop("token", TOKEN), base_url=calendly.url, **kwargs)


def soon(days: float = 0, hours: float = 0) -> datetime:
    base = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return base + timedelta(days=days, hours=hours)


def z(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_current_user_names_the_organization(calendly):
    with client_for(calendly) as client:
        me = client.current_user()
    assert me.uri == f"{calendly.url}/users/OWNER" and me.organization_uri == calendly.org_uri and me.email == "owner@clinic.test"
    assert calendly.log[0].authorization == f"Bearer {TOKEN}"


def test_memberships_and_event_types_follow_next_page(calendly):
    users = [calendly.user(f"U{i}", f"u{i}@clinic.test") for i in range(7)]
    for i in range(5):
        calendly.event_type(f"ET{i}", users[i % 7], name=f"Visit {i}", active=i != 3, duration=15 * (i + 1))
    with client_for(calendly, page_size=3) as client:
        members = client.organization_members(organization_uri=calendly.org_uri)
        types = client.event_types(organization_uri=calendly.org_uri)
        assert client.stats.pages == 3 + 2
    assert [m.user_uri for m in members] == users
    assert [m.email for m in members] == [f"u{i}@clinic.test" for i in range(7)]
    assert [(t.uuid, t.name, t.duration, t.active, t.owner_uri) for t in types] == [
        (f"ET{i}", f"Visit {i}", 15 * (i + 1), i != 3, users[i]) for i in range(5)
    ]
    assert types[0].scheduling_url == "https://calendly.test/ET0"
    pages = calendly.calls("/organization_memberships")
    assert [p.query.get("page_token") for p in pages] == [None, "3", "6"]
    assert all(p.query["organization"] == calendly.org_uri and p.query["count"] == "3" for p in pages)


def test_a_next_page_on_another_host_is_not_followed(calendly):
    calendly.user("U1", "u1@clinic.test")
    calendly.user("U2", "u2@clinic.test")
    calendly.next_page_base = "http://attacker.test"
    with client_for(calendly, page_size=1) as client, pytest.raises(CalendlyProtocolError, match="another host"):
        client.organization_members(organization_uri=calendly.org_uri)
    assert len(calendly.log) == 1  # the token went nowhere else


@pytest.mark.parametrize("days,chunk_days,chunks", [
    (10, 7, 2), (31, 7, 5), (7, 7, 1), (0.5, 7, 1),  # a Calendly that accepts 7 days a call, as it did
    (31, 31, 1), (10, 31, 1), (45, 31, 2),  # the default: Calendly's 31 days
])
def test_windows_are_asked_in_chunks_of_at_most_chunk_days(calendly, days, chunk_days, chunks):
    calendly.max_days = chunk_days  # the fake refuses any longer span
    start = soon()
    end = start + timedelta(days=days)
    uri = calendly.event_type("ET1", "owner")
    expected = []
    for day in range(int(days) + 1):
        for hour in (9, 14):
            at = start + timedelta(days=day, hours=hour)
            if at <= end:
                expected.append(at)
    # Out of order on purpose, and one exactly on a chunk boundary (asked twice, kept once).
    boundary = start + timedelta(days=chunk_days)
    calendly.times[uri] = [z(t) for t in reversed(expected)] + ([z(boundary)] if days > chunk_days else [])
    if days > chunk_days:
        expected = sorted(set(expected) | {boundary})
    with client_for(calendly, chunk_days=chunk_days) as client:
        times = client.available_times(event_type_uri=uri, start=start, end=end)
    asked = calendly.calls("/event_type_available_times")
    assert len(asked) == chunks == len(time_chunks(start, end, chunk_days))
    spans = sorted((datetime.fromisoformat(a.query["start_time"]),
                    datetime.fromisoformat(a.query["end_time"])) for a in asked)
    assert spans[0][0] == start and spans[-1][1] == end
    assert all(hi - lo <= timedelta(days=chunk_days) for lo, hi in spans)
    assert all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))  # contiguous, no gap
    assert [t.start for t in times] == expected
    assert all(t.start.tzinfo is not None for t in times)


def test_many_event_types_merge_per_event_type_and_run_concurrently_but_bounded(calendly):
    start = soon()
    end = start + timedelta(days=14)
    uris = [calendly.event_type(f"ET{i}", "owner") for i in range(12)]
    for i, uri in enumerate(uris):
        calendly.times[uri] = [z(start + timedelta(days=13, hours=i % 5)), z(start + timedelta(hours=i))]
    calendly.fail("/event_type_available_times", status=0, delay=0.2, times=-1)  # every call is slow
    with client_for(calendly, concurrency=4, chunk_days=7) as client:
        answers = client.available_times_many([(uri, start, end) for uri in uris])
    assert len(calendly.calls("/event_type_available_times")) == 24
    assert 1 < calendly.max_in_flight <= 4
    for i, times in enumerate(answers):
        assert [t.start for t in times] == [start + timedelta(hours=i), start + timedelta(days=13, hours=i % 5)]


def test_a_429_is_waited_out_then_the_call_succeeds(calendly):
    uri = calendly.event_type("ET1", "owner")
    at = soon(hours=10)
    calendly.times[uri] = [z(at)]
    calendly.fail("/event_type_available_times", status=429, headers={"X-RateLimit-Reset": "0.3", "X-RateLimit-Remaining": "0"},
              body={"title": "Too Many Requests", "message": "Rate limit exceeded"})
    slept = []
    with client_for(calendly, sleep=lambda s: slept.append(s)) as client:
        times = client.available_times(event_type_uri=uri, start=soon(), end=soon(days=1))
        assert client.stats.retries_429 == 1
    assert [t.start for t in times] == [at]
    assert slept == [0.3]
    assert len(calendly.calls("/event_type_available_times")) == 2


def test_retry_after_wins_over_the_reset_header(calendly):
    uri = calendly.event_type("ET1", "owner")
    calendly.fail("/event_type_available_times", status=429, headers={"Retry-After": "2", "X-RateLimit-Reset": "40"})
    slept = []
    with client_for(calendly, sleep=slept.append, deadline=10) as client:
        client.available_times(event_type_uri=uri, start=soon(), end=soon(days=1))
    assert slept == [2.0]


def test_a_429_whose_wait_passes_the_deadline_is_raised_at_once(calendly):
    uri = calendly.event_type("ET1", "owner")
    calendly.fail("/event_type_available_times", status=429, headers={"X-RateLimit-Reset": "60"})
    slept = []
    with client_for(calendly, sleep=slept.append, deadline=5) as client, pytest.raises(CalendlyRateLimited) as caught:
        client.available_times(event_type_uri=uri, start=soon(), end=soon(days=1))
    assert caught.value.retry_after == 60 and caught.value.status == 429
    assert slept == [] and len(calendly.calls("/event_type_available_times")) == 1


@pytest.mark.parametrize(
    "status,body,error,text",
    [
        (500, None, CalendlyUnavailable, "Calendly answered 500 (Internal Server Error"),
        (503, {"title": "Service Unavailable", "message": "Down for maintenance"}, CalendlyUnavailable, "Down for maintenance"),
        (400, {"title": "Invalid Argument", "message": "The supplied parameters are invalid.",
               "details": [{"parameter": "start_time", "message": "must be in the future"}]},
         CalendlyBadRequest, "start_time: must be in the future"),
        (403, {"title": "Permission Denied", "message": "You do not have permission"}, CalendlyAuthError, "Permission Denied"),
        (404, {"title": "Resource Not Found", "message": "The server could not find the requested resource."},
         CalendlyNotFound, "Resource Not Found"),
    ],
)
def test_error_bodies_map_to_typed_errors(calendly, status, body, error, text):
    uri = calendly.event_type("ET1", "owner")
    calendly.fail("/event_type_available_times", status=status, body=body)
    with client_for(calendly) as client, pytest.raises(error) as caught:
        client.available_times(event_type_uri=uri, start=soon(), end=soon(days=1))
    assert caught.value.status == status
    assert text in str(caught.value)
    if body:
        assert caught.value.title == body["title"]
        assert caught.value.details == body.get("details", [])


def test_a_wrong_token_is_an_auth_error(calendly):
    with client_for(calendly, token="wrong") as client, pytest.raises(CalendlyAuthError) as caught:
        client.current_user()
    assert caught.value.status == 401 and caught.value.title == "Unauthenticated"


def test_a_hang_times_out(calendly):
    uri = calendly.event_type("ET1", "owner")
    calendly.fail("/event_type_available_times", status=0, delay=3)
    with client_for(calendly, timeout=0.3) as client, pytest.raises(CalendlyTimeout):
        client.available_times(event_type_uri=uri, start=soon(), end=soon(days=1))


def test_the_deadline_bounds_all_calls_of_an_operation(calendly):
    uris = [calendly.event_type(f"ET{i}", "owner") for i in range(3)]
    calendly.fail("/event_type_available_times", status=0, delay=3, times=-1)
    with client_for(calendly, timeout=10, deadline=0.4) as client, pytest.raises(CalendlyTimeout):
        client.available_times_many([(uri, soon(), soon(days=1)) for uri in uris])


def test_a_refused_connection_is_unavailable():
    calendly = FakeCalendly().start()
    url = calendly.url
    calendly.stop()
    with CalendlyClient(token=TOKEN, base_url=url) as client, pytest.raises(CalendlyUnavailable):
        client.current_user()


def test_one_failing_chunk_fails_the_whole_answer(calendly):
    uris = [calendly.event_type(f"ET{i}", "owner") for i in range(4)]
    for uri in uris:
        calendly.times[uri] = [z(soon(hours=9))]
    calendly.fail("/event_type_available_times", status=502)
    with client_for(calendly) as client, pytest.raises(CalendlyUnavailable):
        client.available_times_many([(uri, soon(), soon(days=1)) for uri in uris])


def test_an_answer_that_is_not_json_is_a_protocol_error(calendly):
    calendly.fail("/users/me", status=200, body=None)
    original = calendly._send

    def send(handler, status, body, headers=None):
        if body and body.get("title") == "Internal Server Error":
            handler.send_response(200)
            handler.send_header("Content-Length", "5")
            handler.end_headers()
            handler.wfile.write(b"oops!")
            return
        original(handler, status, body, headers)

    calendly._send = send
    with client_for(calendly) as client, pytest.raises(CalendlyProtocolError, match="not JSON"):
        client.current_user()
