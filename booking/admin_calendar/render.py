"""HTML of a calendar's dense parts: its lanes and agenda rows.

A week of 20 resources has thousands of positioned items and starts; a template loop costs
tens of microseconds per variable, so these rows are assembled here (every value escaped) and the
template (``admin/booking/calendar/calendar.html``) keeps the page's structure.
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode

from django.urls import reverse

from booking.admin_calendar import selectors as cal
from booking.models import Appointment, Service


def _url_maker(name: str, *extra):
    template = reverse(name, args=["__pk__", *extra])
    return lambda pk: template.replace("__pk__", str(pk))


class LaneRenderer:
    """Renders the lanes of one calendar page."""

    def __init__(self, *, kind: str, week: str, service: Service | None, may_book: bool, next_url: str, selected_day):
        self.kind, self.week, self.service, self.may_book = kind, week, service, may_book
        self.next_url, self.selected_day = next_url, selected_day
        self.resource_url = _url_maker("admin:booking_resource_change")
        self.location_url = _url_maker("admin:booking_location_change")
        self.resource_calendar = _url_maker("admin:booking_resource_calendar")
        self.location_calendar = _url_maker("admin:booking_location_calendar")
        self.book_url = _url_maker("admin:booking_location_calendar_book")
        self.explain_url = _url_maker("admin:booking_resource_explain_day")
        self.appointment_url = reverse("admin:booking_location_calendar_appointment", args=["__loc__", "00000000-0000-0000-0000-000000000000"])

    def lane(self, day: cal.Day, day_lane: cal.DayLane) -> str:
        lane = day_lane.lane
        resource, location = lane.resource, lane.location
        week_q = f"?week={self.week}"
        if self.kind == "location":
            title = f'<a href="{self.resource_url(resource.pk)}">{escape(resource.name)}</a>'
            other = f'<a href="{self.resource_calendar(resource.pk)}{week_q}">its calendar</a>'
        else:
            title = f'<a href="{self.location_url(location.pk)}">{escape(location.name)}</a>'
            other = f'<a href="{self.location_calendar(location.pk)}{week_q}">its calendar</a>'
        explain = ""
        if self.service is not None and lane.offers_service:
            query = urlencode({"service": self.service.pk, "location": location.pk, "date": day.date.isoformat()})
            explain = f' · <a class="explain-link" href="{self.explain_url(resource.pk)}?{escape(query)}">why not?</a>'
        parts = [
            f'<div class="cal-row lane" data-resource="{resource.pk}" data-location="{location.pk}">',
            f'<div class="cal-label">{title}<small>{other}{explain}</small></div><div class="cal-track">',
        ]
        for b in day_lane.background:
            parts.append(
                f'<a class="bg {b.css}" href="{b.url}" style="left:{b.left:.2f}%;width:{b.width:.2f}%" '
                f'title="{escape(b.text)} {escape(b.label)}"></a>'
            )
        for left, _ in day.ticks:
            parts.append(f'<span class="line" style="left:{left}%"></span>')
        for i in day_lane.items:
            data = f' data-appointment="{i.appointment.pk}"' if i.appointment else ""
            label = f"{escape(i.label)} {escape(i.text)}"
            parts.append(
                f'<a class="item {i.css}" href="{i.url}" style="left:{i.left:.2f}%;width:{i.width:.2f}%" title="{escape(i.text)}, '
                f'{escape(i.label)}"{data}>{label}</a>'
            )
        zone_name = cal.local(day.lo, lane.location.timezone if self.kind == "location" else lane.zone).tzname()
        parts.append(self.starts(day_lane, zone_name=zone_name, as_list=False))
        parts.append("</div></div>")
        if self.selected_day and day_lane.starts:
            parts.append(f'<div class="cal-starts" data-resource="{resource.pk}">{self.starts(day_lane, zone_name=zone_name, as_list=True)}</div>')
        return "".join(parts)

    def starts(self, day_lane: cal.DayLane, *, zone_name: str, as_list: bool) -> str:
        """The lane's bookable starts: marks on the time track, or (``as_list``, the day view) a row
        of buttons. For users who may book, each is a button of one GET form per lane that opens the
        booking form for that start (the lane's resource; every resource of a ``COMBINED`` service)."""
        if not day_lane.starts or self.service is None:
            return ""
        css = "start-button" if as_list else "start"

        def place(start: cal.Start) -> str:
            return "" if as_list else f' style="left:{start.left:.2f}%"'

        if not self.may_book:
            return "".join(
                f'<span class="{css}"{place(s)} title="{s.label} {zone_name}" data-start="{s.iso}">{s.label}</span>'
                for s in day_lane.starts
            )
        if self.service.round_robin == "COMBINED":
            resource_value = ",".join(day_lane.starts[0].resource_ids)
        else:
            resource_value = str(day_lane.lane.resource.pk)
        buttons = "".join(
            f'<button type="submit" class="{css}" name="start" value="{s.iso}"{place(s)} '
            f'title="Book {s.label} {zone_name}">{s.label}</button>'
            for s in day_lane.starts
        )
        return (
            f'<form class="{"starts-list" if as_list else "starts-form"}" method="get" '
            f'action="{self.book_url(day_lane.lane.location.pk)}">'
            f'<input type="hidden" name="service" value="{self.service.pk}">'
            f'<input type="hidden" name="resource" value="{resource_value}">'
            f'<input type="hidden" name="next" value="{escape(self.next_url)}">{buttons}</form>'
        )

    def agenda_row(self, item: cal.Item) -> str:
        a = item.appointment
        manage = ""
        if self.may_book and a.location_id and a.source == Appointment.Source.API and a.status != Appointment.Status.CANCELLED:
            url = self.appointment_url.replace("__loc__", a.location_id).replace("00000000-0000-0000-0000-000000000000", a.pk)
            manage = f'<a class="manage-link" href="{url}">Move or cancel</a>'
        where = item.resource_names if self.kind == "location" else (a.location_name or "-")
        return (
            f'<tr class="agenda-row" data-appointment="{a.pk}"><td>{escape(item.label)}</td>'
            f'<td><a href="{item.url}">{escape(a.person)}</a></td><td>{escape(a.service_name or "-")}</td>'
            f'<td>{escape(where)}</td><td><span class="badge {item.css}">{escape(a.status_text)}</span></td>'
            f'<td>{escape(a.source_text)}</td><td>{manage}</td></tr>'
        )
