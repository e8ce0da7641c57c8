"""External calendars: iCalendar feeds served by a real HTTP server on 127.0.0.1, and CalDAV
calendars on a real CalDAV server (Radicale, started by the tests on 127.0.0.1).

The feed server below is hand-written: it also stands in for a CalDAV server in the CalDAV tests of
faults a real server cannot be made to produce on demand (a redirect into a private address, a 500,
a server that hangs).
"""

from __future__ import annotations

import base64
import http.server
import threading
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
from django.utils import timezone as dj_timezone
from django_q.models import Schedule

from booking import models as b
from booking.services.external_calendars import external_calendar_password_set, external_calendar_sync
from booking.tasks import external_calendar_sync_one, external_calendars_sync
from tenants.models import Organization
from tests.booking.conftest import MONDAY, MONDAY_DATE, utc
from tests.caldav_server import PASSWORD, USER, radicale_running

UTC = UTC


def ics(*events: str) -> bytes:
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" + "".join(events) + "END:VCALENDAR\r\n").encode()


def vevent(uid: str, start: str, end: str, *extra: str, summary: str = "Busy") -> str:
    lines = [f"UID:{uid}", "DTSTAMP:20250101T000000Z", f"DTSTART{start}", f"DTEND{end}", f"SUMMARY:{summary}", *extra]
    return "BEGIN:VEVENT\r\n" + "".join(line + "\r\n" for line in lines) + "END:VEVENT\r\n"


class Feed:
    """What the fake calendar server answers; tests change it between syncs. For CalDAV it is
    only used for what a real server does not do on demand (see ``radicale`` for the rest)."""

    def __init__(self):
        self.status = 200
        self.body = ics()
        self.requests: list[tuple[str, str, str | None]] = []
        self.password: str | None = None  # CalDAV: require HTTP Basic with this password
        self.redirects: dict[str, str] = {}  # path -> where a request for it is redirected
        self.delay = 0.0  # seconds to wait before answering (a server that hangs)


@pytest.fixture
def feed():
    state = Feed()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            request_body = self.rfile.read(length) if length else b""
            auth = self.headers.get("Authorization")
            state.requests.append((self.command, self.path, auth))
            if state.delay:
                time.sleep(state.delay)
            if self.path in state.redirects:
                self.send_response(302)
                self.send_header("Location", state.redirects[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if state.password is not None:
                expected = "Basic " + base64.b64encode(f"dav-user:{state.password}".encode()).decode()
                if auth != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="cal"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            if self.command == "REPORT" and state.status == 200:
                data = (
                    '<?xml version="1.0" encoding="utf-8"?><d:multistatus xmlns:d="DAV:" '
                    'xmlns:c="urn:ietf:params:xml:ns:caldav"><d:response><d:href>/dav/1.ics</d:href><d:propstat><d:prop>'
                    f'<d:getetag>"1"</d:getetag><c:calendar-data>{state.body.decode()}</c:calendar-data></d:prop>'
                    "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"
                ).encode()
                self.send_response(207)
                self.send_header("Content-Type", "application/xml; charset=utf-8")
            else:
                data = state.body if state.status == 200 else b"nope"
                self.send_response(state.status)
                self.send_header("Content-Type", "text/calendar")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            del request_body

        do_GET = do_REPORT = do_PROPFIND = do_OPTIONS = _answer

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def _soon(days: int, hour: int) -> datetime:
    return (dj_timezone.now() + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(":%Y%m%dT%H%M%SZ")


@pytest.fixture
def calendar(clinic, feed):
    return b.ExternalCalendar.objects.create(
        organization=clinic.organization, resource=clinic.resources[0], url=feed.url + "/feed.ics", name="Google"
    )


def busy(calendar) -> list[tuple[datetime, datetime, str]]:
    return list(b.ExternalBusy.objects.filter(calendar=calendar).order_by("start").values_list("start", "end", "summary"))


def version(clinic) -> int:
    return Organization.objects.get(pk=clinic.organization.pk).availability_version


def test_feed_sync_reads_busy_events(clinic, feed, calendar):
    one = _soon(2, 14)
    weekly = _soon(3, 10)
    feed.body = ics(
        vevent("single", _stamp(one), _stamp(one + timedelta(hours=1)), summary="Dentist"),
        vevent("weekly", _stamp(weekly), _stamp(weekly + timedelta(minutes=30)), "RRULE:FREQ=WEEKLY;COUNT=3", summary="Standup"),
        vevent("cancelled", _stamp(one + timedelta(hours=3)), _stamp(one + timedelta(hours=4)), "STATUS:CANCELLED"),
        vevent("free", _stamp(one + timedelta(hours=5)), _stamp(one + timedelta(hours=6)), "TRANSP:TRANSPARENT"),
        vevent("far", _stamp(_soon(120, 10)), _stamp(_soon(120, 11))),
    )
    before = version(clinic)
    assert external_calendar_sync(calendar=calendar)
    got = busy(calendar)
    assert got == [
        (one, one + timedelta(hours=1), "Dentist"),
        (weekly, weekly + timedelta(minutes=30), "Standup"),
        (weekly + timedelta(days=7), weekly + timedelta(days=7, minutes=30), "Standup"),
        (weekly + timedelta(days=14), weekly + timedelta(days=14, minutes=30), "Standup"),
    ]
    calendar.refresh_from_db()
    assert calendar.last_synced_at is not None and calendar.last_error == ""
    assert version(clinic) > before
    # Unchanged data: nothing rewritten, cached answers stay valid.
    unchanged = version(clinic)
    assert external_calendar_sync(calendar=calendar) and version(clinic) == unchanged


def test_all_day_and_floating_events_use_the_resource_zone(clinic, feed, calendar):
    day = (dj_timezone.now() + timedelta(days=5)).date()
    feed.body = ics(
        vevent("allday", f";VALUE=DATE:{day:%Y%m%d}", f";VALUE=DATE:{day + timedelta(days=1):%Y%m%d}"),
        vevent("floating", f":{day:%Y%m%d}T120000", f":{day:%Y%m%d}T130000"),
    )
    assert external_calendar_sync(calendar=calendar)
    ny = clinic.location.timezone  # the resource's zone comes from its first linked location
    zone = ZoneInfo(ny)
    midnight = datetime.combine(day, datetime.min.time(), tzinfo=zone)
    assert [(s, e) for s, e, _ in busy(calendar)] == [
        (midnight.astimezone(UTC), (midnight + timedelta(days=1)).astimezone(UTC)),
        (midnight.replace(hour=12).astimezone(UTC), midnight.replace(hour=13).astimezone(UTC)),
    ]


@pytest.mark.parametrize("failure", ["http-500", "garbage", "refused"])
def test_failed_sync_keeps_the_last_good_data(clinic, feed, calendar, failure):
    one = _soon(2, 14)
    feed.body = ics(vevent("single", _stamp(one), _stamp(one + timedelta(hours=1))))
    assert external_calendar_sync(calendar=calendar)
    good = busy(calendar)
    if failure == "http-500":
        feed.status = 500
    elif failure == "garbage":
        feed.body = b"this is not a calendar"
    else:
        calendar.url = "http://127.0.0.1:9/feed.ics"
        calendar.save()
    assert not external_calendar_sync(calendar=calendar)
    calendar.refresh_from_db()
    assert busy(calendar) == good and calendar.last_error


def test_private_addresses_are_refused_unless_allowed(clinic, feed, calendar, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    assert not external_calendar_sync(calendar=calendar)
    calendar.refresh_from_db()
    assert "private address" in calendar.last_error and feed.requests == []


@pytest.fixture
def only_loopback_allowed(settings):
    """Private addresses are not allowed, but this test server's address is (an allow-listed
    intranet host): the first hop is reachable, so what a redirect does is what is tested."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/feed.ics"])
def test_a_feed_redirecting_into_a_private_address_is_refused(clinic, feed, calendar, only_loopback_allowed, target):
    feed.redirects["/feed.ics"] = target
    assert not external_calendar_sync(calendar=calendar)
    calendar.refresh_from_db()
    assert [r[:2] for r in feed.requests] == [("GET", "/feed.ics")]
    assert target in calendar.last_error and "private address" in calendar.last_error
    assert busy(calendar) == []


def test_a_feed_redirect_to_an_allowed_address_is_followed(clinic, feed, calendar, only_loopback_allowed):
    one = _soon(2, 14)
    feed.body = ics(vevent("moved", _stamp(one), _stamp(one + timedelta(hours=1))))
    feed.redirects["/feed.ics"] = feed.url + "/moved.ics"
    assert external_calendar_sync(calendar=calendar)
    assert [r[:2] for r in feed.requests] == [("GET", "/feed.ics"), ("GET", "/moved.ics")]
    assert busy(calendar) == [(one, one + timedelta(hours=1), "Busy")]


def test_a_feed_redirecting_more_than_three_times_is_refused(clinic, feed, calendar, only_loopback_allowed):
    for hop in range(4):
        feed.redirects["/feed.ics" if hop == 0 else f"/hop{hop}.ics"] = f"{feed.url}/hop{hop + 1}.ics"
    assert not external_calendar_sync(calendar=calendar)
    calendar.refresh_from_db()
    assert "redirect" in calendar.last_error.lower() and len(feed.requests) == 4


def test_a_caldav_redirect_into_a_private_address_is_refused(clinic, feed, only_loopback_allowed):
    # The hand-written server on purpose: a real CalDAV server does not redirect on demand.
    calendar = b.ExternalCalendar.objects.create(
        organization=clinic.organization, resource=clinic.resources[1], url=feed.url + "/dav/", kind="caldav",
    )
    feed.redirects["/dav/"] = "http://169.254.169.254/dav/"
    assert not external_calendar_sync(calendar=calendar)
    calendar.refresh_from_db()
    assert "169.254.169.254" in calendar.last_error and "private address" in calendar.last_error
    assert {r[1] for r in feed.requests} == {"/dav/"}


def test_sync_external_syncs_first_and_blocks_the_time(clinic, feed, calendar, settings):
    adams = clinic.resources[0]
    api = clinic.tenant.v3()
    params = clinic.params(roundRobin="NONE", ResourceIds=[str(adams.pk)])
    nine = utc(14)
    # The test's Monday (about two years ahead) lies beyond the 90-day window from today: sync a
    # window that reaches it, never a shorter one than the setting's.
    assert nine > dj_timezone.now()
    settings.EXTERNAL_CALENDAR_SYNC_DAYS = max(settings.EXTERNAL_CALENDAR_SYNC_DAYS, (nine - dj_timezone.now()).days + 2)
    assert api.get("/v3/availability", params).json()["availableTimes"][0]["start_time"] == f"{MONDAY}T09:00:00-05:00"
    feed.body = ics(vevent("meeting", _stamp(nine), _stamp(nine + timedelta(hours=1))))
    synced = api.get("/v3/availability", {**params, "syncExternal": "true"})
    assert synced["X-Cache"] == "MISS"
    assert synced.json()["availableTimes"][0]["start_time"] == f"{MONDAY}T10:00:00-05:00"
    assert [r[0] for r in feed.requests] == ["GET"]
    # The sync changed the data: a plain request doesn't get the old answer either.
    assert api.get("/v3/availability", params).json()["availableTimes"][0]["start_time"] == f"{MONDAY}T10:00:00-05:00"


def test_sync_external_failure_answers_from_last_data_and_is_not_cached(clinic, feed, calendar):
    adams = clinic.resources[0]
    api = clinic.tenant.v3()
    b.ExternalBusy.objects.create(calendar=calendar, resource=adams, start=utc(14),
                                  end=utc(15))
    feed.status = 503
    params = clinic.params(roundRobin="NONE", ResourceIds=[str(adams.pk)], syncExternal="true")
    for _ in range(2):
        response = api.get("/v3/availability", params)
        assert response.status_code == 200 and response["X-Cache"] == "MISS"
        assert response.json()["availableTimes"][0]["start_time"] == f"{MONDAY}T10:00:00-05:00"
    plain = api.get("/v3/availability", {k: v for k, v in params.items() if k != "syncExternal"})
    assert plain["X-Cache"] == "MISS"  # the failed-sync answers were never stored


def test_sync_external_is_bounded_in_time(clinic, feed, calendar, settings):
    settings.SYNC_EXTERNAL_BUDGET_SECONDS = 0
    response = clinic.tenant.v3().get("/v3/availability", clinic.params(syncExternal="true"))
    assert response.status_code == 200 and response["X-Cache"] == "MISS" and feed.requests == []


def test_tasks_and_schedules(clinic, feed, calendar):
    one = _soon(2, 14)
    feed.body = ics(vevent("single", _stamp(one), _stamp(one + timedelta(hours=1))))
    assert external_calendars_sync() == {"synced": 1, "failed": 0}
    assert external_calendar_sync_one(str(calendar.pk)) is True
    schedule = Schedule.objects.get(func="booking.tasks.external_calendars_sync")
    assert schedule.schedule_type == Schedule.MINUTES and schedule.minutes == 15 and schedule.repeats == -1
    assert Schedule.objects.filter(func="booking.tasks.holds_expire", minutes=1).exists()


def test_the_availability_selector_never_syncs_the_service_does(clinic, feed, calendar):
    """Selectors never write: ``availability_answer`` reads the last synced data even for a
    ``syncExternal`` request; the view calls ``availability_external_sync`` first."""
    from booking.availability.selectors import AvailabilityParams, availability_answer
    from booking.services.external_calendars import availability_external_sync

    adams = clinic.resources[0]
    params = AvailabilityParams(
        location_id=clinic.location.pk, service_id=clinic.service.pk, start=utc(0), end=utc(23),
        zone="America/New_York", resource_ids=(str(adams.pk),), round_robin="NONE", sync_external=True,
    )
    one = _soon(2, 14)
    feed.body = ics(vevent("meeting", _stamp(one), _stamp(one + timedelta(hours=1))))
    availability_answer(organization=clinic.organization, params=params)
    assert feed.requests == [] and busy(calendar) == []
    before = version(clinic)
    assert availability_external_sync(organization=clinic.organization, params=params) is True
    assert [r[0] for r in feed.requests] == ["GET"] and busy(calendar) == [(one, one + timedelta(hours=1), "Busy")]
    # the caller's organization carries the version the sync left, for the answer's cache key
    assert clinic.organization.availability_version == version(clinic) > before


# --- CalDAV against a real server ----------------------------------------------------------------

NEW_YORK = "America/New_York"


@pytest.fixture(scope="session")
def radicale(tmp_path_factory):
    """One Radicale for the run (per xdist worker); every test makes its own calendar in it."""
    with radicale_running(tmp_path_factory.mktemp("radicale")) as server:
        yield server


def event(uid: str, start: datetime, end: datetime, summary: str, **props) -> icalendar.Event:
    component = icalendar.Event()
    component.add("uid", uid)
    component.add("dtstamp", datetime(2025, 1, 1, tzinfo=UTC))
    component.add("dtstart", start)
    component.add("dtend", end)
    component.add("summary", summary)
    for name, value in props.items():
        component.add(name.replace("_", "-"), value)
    return component


def calendar_item(*components: icalendar.Event) -> bytes:
    """One CalDAV object: a series with its overridden instances (one UID), or one event; times
    with a zone carry their VTIMEZONE, as calendar programs write them."""
    document = icalendar.Calendar()
    document.add("prodid", "-//scheduling tests//EN")
    document.add("version", "2.0")
    for component in components:
        document.add_component(component)
    document.add_missing_timezones()
    return document.to_ical()


def at(day, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(NEW_YORK)).replace(hour=hour, minute=minute)


def mixed_calendar(day) -> tuple[list[bytes], list[tuple[datetime, datetime, str]]]:
    """Busy, recurring, cancelled and transparent events from ``day`` (New York) on: the items to
    store, and the busy intervals (UTC) a correct reader finds in them."""
    half = timedelta(minutes=30)
    plus = lambda days: day + timedelta(days=days)  # noqa: E731
    items = [
        calendar_item(event("dentist", at(day, 9), at(day, 10), "Dentist")),
        # Daily rounds: the 2nd day deleted (EXDATE), the 3rd moved to 15:00, the 4th cancelled.
        calendar_item(
            event("rounds", at(day, 11), at(day, 11, 30), "Rounds", rrule={"freq": "daily", "count": 5},
                  exdate=at(plus(1), 11)),
            event("rounds", at(plus(2), 15), at(plus(2), 15, 30), "Rounds (moved)", recurrence_id=at(plus(2), 11)),
            event("rounds", at(plus(3), 11), at(plus(3), 11, 30), "Rounds", recurrence_id=at(plus(3), 11),
                  status="CANCELLED"),
        ),
        calendar_item(event("cancelled", at(day, 14), at(day, 15), "Cancelled meeting", status="CANCELLED")),
        calendar_item(event("focus", at(day, 15), at(day, 16), "Focus time", transp="TRANSPARENT")),
        # A whole series that is free, and one that is cancelled: no instance of either blocks.
        calendar_item(event("lunch", at(day, 12), at(day, 13), "Lunch", transp="TRANSPARENT",
                            rrule={"freq": "daily", "count": 5})),
        calendar_item(event("old-series", at(day, 13), at(day, 13, 30), "Dropped series", status="CANCELLED",
                            rrule={"freq": "daily", "count": 5})),
        # Written in UTC rather than with a zone.
        calendar_item(event("call", at(day, 16).astimezone(UTC), at(day, 16, 30).astimezone(UTC), "Call")),
    ]
    busy_intervals = [
        (at(day, 9), at(day, 10), "Dentist"),
        (at(day, 11), at(day, 11) + half, "Rounds"),
        (at(day, 16), at(day, 16) + half, "Call"),
        (at(plus(2), 15), at(plus(2), 15) + half, "Rounds (moved)"),
        (at(plus(4), 11), at(plus(4), 11) + half, "Rounds"),
    ]
    return items, [(s.astimezone(UTC), e.astimezone(UTC), summary) for s, e, summary in busy_intervals]


def caldav_calendar(clinic, radicale, items, *, resource=0, password=PASSWORD) -> b.ExternalCalendar:
    calendar = b.ExternalCalendar.objects.create(
        organization=clinic.organization, resource=clinic.resources[resource], url=radicale.calendar_new(*items),
        kind="caldav", username=USER, name="Radicale",
    )
    external_calendar_password_set(calendar=calendar, password=password)
    return calendar


def test_caldav_sync_blocks_exactly_the_busy_instances(clinic, radicale):
    day = (dj_timezone.now() + timedelta(days=3)).astimezone(ZoneInfo(NEW_YORK)).date()
    items, expected = mixed_calendar(day)
    far = calendar_item(event("far", at(day + timedelta(days=200), 9), at(day + timedelta(days=200), 10), "Far"))
    calendar = caldav_calendar(clinic, radicale, [*items, far])
    before = version(clinic)
    assert external_calendar_sync(calendar=calendar), calendar.last_error
    assert busy(calendar) == sorted(expected)
    assert version(clinic) > before
    calendar.refresh_from_db()
    assert calendar.last_error == "" and calendar.last_synced_at is not None


def test_caldav_sync_follows_changes_on_the_server(clinic, radicale):
    import httpx

    day = (dj_timezone.now() + timedelta(days=2)).date()
    calendar = caldav_calendar(clinic, radicale, [calendar_item(event("dentist", at(day, 9), at(day, 10), "Dentist"))])
    assert external_calendar_sync(calendar=calendar)
    assert busy(calendar) == [(at(day, 9).astimezone(UTC), at(day, 10).astimezone(UTC), "Dentist")]
    # The same object changed on the server: cancelled there, so it no longer blocks.
    cancelled = calendar_item(event("dentist", at(day, 9), at(day, 10), "Dentist", status="CANCELLED", sequence=1))
    stored = httpx.put(calendar.url + "item0.ics", content=cancelled, auth=(USER, PASSWORD),
                       headers={"Content-Type": "text/calendar"})
    assert stored.status_code in (201, 204), stored.text
    assert external_calendar_sync(calendar=calendar)
    assert busy(calendar) == []


def test_caldav_password_is_stored_encrypted_and_a_refused_login_keeps_the_last_data(clinic, radicale):
    one = _soon(4, 9)
    calendar = caldav_calendar(clinic, radicale, [calendar_item(event("dav", one, one + timedelta(hours=2), "Surgery"))],
                               resource=1)
    assert PASSWORD not in b.ExternalCalendar.objects.get(pk=calendar.pk).password_encrypted
    assert external_calendar_sync(calendar=calendar), calendar.last_error
    assert busy(calendar) == [(one, one + timedelta(hours=2), "Surgery")]
    external_calendar_password_set(calendar=calendar, password="changed")
    assert not external_calendar_sync(calendar=calendar)
    calendar.refresh_from_db()
    assert "Unauthorized" in calendar.last_error
    assert busy(calendar) == [(one, one + timedelta(hours=2), "Surgery")]
    assert "Failed login attempt" in radicale.log.read_text()


def test_availability_reflects_exactly_the_busy_caldav_instances(clinic, radicale, settings):
    adams = clinic.resources[0]
    api = clinic.tenant.v3()
    # The tests' Monday lies about two years ahead: sync a window reaching past it.
    settings.EXTERNAL_CALENDAR_SYNC_DAYS = max(settings.EXTERNAL_CALENDAR_SYNC_DAYS,
                                               (utc(0, days=7) - dj_timezone.now()).days + 2)
    items, expected = mixed_calendar(MONDAY_DATE)
    caldav_calendar(clinic, radicale, items)
    params = clinic.params(roundRobin="NONE", ResourceIds=[str(adams.pk)])

    def starts(response) -> list[datetime]:
        assert response.status_code == 200, response.content
        return [datetime.fromisoformat(t["start_time"]) for t in response.json()["availableTimes"]]

    free = starts(api.get("/v3/availability", params))
    synced = api.get("/v3/availability", {**params, "syncExternal": "true"})
    assert synced["X-Cache"] == "MISS"
    blocked = set(free) - set(starts(synced))
    duration = timedelta(minutes=clinic.service.duration)
    on_monday = [(s, e) for s, e, _ in expected if s.date() == MONDAY_DATE]
    assert blocked == {t for t in free if any(t < e and t + duration > s for s, e in on_monday)}
    assert set(starts(synced)) <= set(free)
    # Each busy interval of the day took its slots; the cancelled and transparent ones took none.
    assert {at(MONDAY_DATE, 9), at(MONDAY_DATE, 11), at(MONDAY_DATE, 16)} <= blocked
    assert {at(MONDAY_DATE, 12), at(MONDAY_DATE, 13), at(MONDAY_DATE, 14), at(MONDAY_DATE, 15)} <= set(starts(synced))
    # A plain request afterwards reads the synced data too.
    assert set(starts(api.get("/v3/availability", params))) == set(free) - blocked


@pytest.mark.parametrize("fault", ["http-500", "hang"])
def test_a_failing_caldav_server_keeps_the_last_good_data(clinic, radicale, feed, fault):
    # The hand-written server on purpose: Radicale does not fail or hang on demand.
    one = _soon(3, 10)
    calendar = caldav_calendar(clinic, radicale, [calendar_item(event("dav", one, one + timedelta(hours=1), "Clinic"))])
    assert external_calendar_sync(calendar=calendar)
    good = busy(calendar)
    assert good == [(one, one + timedelta(hours=1), "Clinic")]
    calendar.url = feed.url + "/dav/"
    calendar.save()
    if fault == "http-500":
        feed.status = 500
    else:
        feed.delay = 6
    started = time.monotonic()
    assert not external_calendar_sync(calendar=calendar, timeout=1)
    assert time.monotonic() - started < 4.5  # the 1 s timeout ended the wait, not the server (6 s)
    calendar.refresh_from_db()
    assert busy(calendar) == good and calendar.last_error.startswith("CalDAV request failed")
    assert ("500" if fault == "http-500" else "Timeout") in calendar.last_error
