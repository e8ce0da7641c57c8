"""The explainer's day view: every candidate start of one resource, service and local date, with
"bookable" or each reason the engine gives, naming (and linking) the object behind it.

The candidates are the listed starts (``GET /v3/availability`` at the location, the same call
as the calendar, that name the resource: rule 9 lists every resource valid at a start on any
resource's grid) and every step of the service's grid from local midnight; each is explained by
``engine.candidate_explain``, the code behind ``GET /v3/availability/explain`` and the booking
validator, on inputs loaded once for the day.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from booking.admin_calendar import selectors as cal
from booking.availability import engine, wallclock
from booking.availability.loader import availability_inputs_load, resource_rows, service_in
from booking.models import (
    Appointment,
    Block,
    ExternalBusy,
    ExternalCalendar,
    Location,
    RecurringBlock,
    Resource,
    Service,
)


@dataclass
class Because:
    code: str
    message: str
    text: str = ""  # the object behind it, named
    url: str = ""


@dataclass
class Row:
    """One candidate start, or a run of consecutive ones with the same answer."""

    starts: list[str]  # ISO instants, in the location's zone
    label: str  # "09:00 EST" or "00:00–07:45 EST (32 starts)"
    state: str  # bookable | off_grid | not_bookable
    reasons: list[Because] = field(default_factory=list)


@dataclass
class DayExplanation:
    day: date
    zone: str
    step: int  # minutes
    rows: list[Row]
    listed: list[str]  # the starts GET /v3/availability lists for the resource that day


def explain_day(
    *, resource: Resource, service: Service, location: Location, day: date, collapse: bool = True,
    also: time | None = None,
) -> DayExplanation:
    """``also``: one more local time of that day to explain (any time, on the grid or not)."""
    organization = location.organization
    zone = location.timezone
    rid = str(resource.pk)
    now = timezone.now()
    day_lo, day_hi = cal.day_bounds(zone, day)
    listed = [
        s for s in cal.availability_starts(
            organization=organization, location=location, service=service, first_day=day, last_day=day, zone=zone,
            linked_ids=_linked_ids(location, service),
        )
        if rid in s.resource_ids
    ]
    listed_at = {s.at for s in listed}
    query = engine.Query(
        start=wallclock.instant(day_lo), end=wallclock.instant(day_hi - 1), now=now, zone=zone, resource_ids=(rid,),
    )
    step = engine.query_effective(service_in(service), query).step
    rows_in = resource_rows(organization=organization, location=location, service=service, resource_ids=[rid])
    inputs = availability_inputs_load(organization=organization, location=location, service=service, query=query, rows=rows_in)
    extra = wallclock.wall_to_epoch(zone, day, also, False) if also is not None else None
    candidates = sorted(set(range(day_lo, day_hi, step * 60)) | listed_at | ({extra} if extra is not None else set()))

    answers = []
    for at in candidates:
        explanation = engine.candidate_explain(inputs, rid, wallclock.instant(at))
        if explanation.available and at not in listed_at:
            if at != extra:
                # Bookable at exactly that time, but not a listed start: the grid runs from the
                # start of each open window (rule 7), not from midnight. Said above the table.
                continue
            answers.append((at, "off_grid", []))
            continue
        answers.append((at, "bookable" if explanation.available else "not_bookable", explanation.reasons))
    named = _name_objects(answers, inputs, zone, service)

    rows: list[Row] = []
    previous_key = None
    for at, state, reasons in answers:
        because = [named(r, at) for r in reasons]
        key = (state, tuple((b.code, b.text) for b in because))
        iso = wallclock.instant(at, zone).isoformat()
        if collapse and state == "not_bookable" and key == previous_key and at != extra:
            rows[-1].starts.append(iso)
        else:
            rows.append(Row([iso], "", state, because))
        previous_key = key if at != extra else None
    for row in rows:
        first = int(wallclock.epoch(_parse(row.starts[0])))
        if len(row.starts) == 1:
            row.label = cal.clock(first, zone)
        else:
            last = int(wallclock.epoch(_parse(row.starts[-1])))
            row.label = f"{cal.clock(first, zone).split()[0]}–{cal.clock(last, zone)} ({len(row.starts)} starts)"
    return DayExplanation(day, zone, step, rows, [s.iso for s in listed])


def _linked_ids(location: Location, service: Service) -> list[str]:
    from booking.models import ResourceService

    return [str(r) for r in ResourceService.objects.filter(location=location, service=service).values_list("resource_id", flat=True)]


def _parse(iso: str):
    from datetime import datetime

    return datetime.fromisoformat(iso)


def _name_objects(answers, inputs: engine.Inputs, zone: str, service: Service):
    """A function naming the object behind a reason, from lookups made once for the whole day."""
    refs: dict[str, set[str]] = {}
    for _, _, reasons in answers:
        for reason in reasons:
            if reason.ref:
                refs.setdefault(reason.code, set()).add(reason.ref)
    appointments = {
        str(a.pk): a for a in Appointment.objects.filter(pk__in=refs.get("appointment", set()) | refs.get("padding", set()))
        .select_related("service", "location")
    }
    block_refs = refs.get("blocked", set())
    blocks = {str(b.pk): b for b in Block.objects.filter(pk__in=block_refs)}
    recurring = {str(r.pk): r for r in RecurringBlock.objects.filter(pk__in=block_refs - set(blocks))}
    calendars = {str(c.pk): c for c in ExternalCalendar.objects.filter(pk__in=refs.get("external_busy", set()))}
    # outside_working_hours names a shift or allocation (an integer id) when the start runs past one.
    resources = {str(r.pk): r for r in Resource.objects.filter(pk__in=_uuids(
        refs.get("outside_working_hours", set()) | refs.get("capacity_full", set())
        | refs.get("inactive", set()) | refs.get("not_linked", set()) | refs.get("unavailable", set())
    ))}
    locations = {str(loc.pk): loc for loc in Location.objects.filter(pk__in=refs.get("location_closed", set()))}
    recurring_rules = {rule.ref: rule for rule in inputs.recurring_blocks}
    for resource in inputs.resources:
        recurring_rules.update({rule.ref: rule for rule in resource.recurring_blocks})
    busy_cache: dict[str, list] = {}

    def url(name, pk):
        return reverse(f"admin:booking_{name}_change", args=[pk])

    def named(reason: engine.Reason, at: int) -> Because:
        code, ref = reason.code, reason.ref
        because = Because(code, reason.message)
        if code in ("appointment", "padding") and ref in appointments:
            a = appointments[ref]
            a_zone = a.location.timezone if a.location_id else zone
            what = f"{cal.appointment_person(a)}" + (f", {a.service.name}" if a.service_id else "")
            times = cal.clock_range(int(a.start.timestamp()), int(a.end.timestamp()), a_zone)
            because.text = f"Appointment: {what}, {times}" + (f" (then {a.service.padding} min padding)" if code == "padding" and a.service_id else "")
            because.url = url("appointment", a.pk)
        elif code == "blocked" and ref in blocks:
            b = blocks[ref]
            b_zone = _block_zone(b, inputs, zone)
            because.text = f"Block: {b.reason or 'no reason given'}, {cal.clock_range(int(b.start.timestamp()), int(b.end.timestamp()), b_zone)}"
            because.url = url("block", b.pk)
        elif code == "blocked" and ref in recurring:
            r = recurring[ref]
            rule = recurring_rules.get(ref)
            times = ""
            if rule is not None:
                hits = [
                    (s, e) for s, e, _ in wallclock.recurring_rules_expand([rule], at - 86400, at + 2 * 86400)
                    if e > at and s < at + (service.duration + service.padding) * 60
                ]
                if hits:
                    times = ", " + cal.clock_range(hits[0][0], hits[0][1], rule.zone)
            because.text = f"Recurring block ({r.get_frequency_display().lower()}): {r.reason or 'no reason given'}{times}"
            because.url = url("recurringblock", r.pk)
        elif code == "external_busy" and ref in calendars:
            c = calendars[ref]
            if ref not in busy_cache:
                busy_cache[ref] = list(ExternalBusy.objects.filter(calendar=c).values_list("start", "end"))
            spans = [
                (int(s.timestamp()), int(e.timestamp())) for s, e in busy_cache[ref]
                if int(e.timestamp()) > at and int(s.timestamp()) < at + (service.duration + service.padding) * 60
            ]
            times = f", busy {cal.clock_range(spans[0][0], spans[0][1], zone)}" if spans else ""
            because.text = f"External calendar: {c}{times}"
            because.url = reverse("admin:booking_externalcalendar_change", args=[c.pk])
        elif code == "location_closed" and ref in locations:
            because.text = f"Location: {locations[ref]} (opening hours)"
            because.url = url("location", ref)
        elif ref in resources:
            because.text = f"Resource: {resources[ref]}" + (" (shifts and allocations)" if code == "outside_working_hours" else "")
            because.url = url("resource", ref)
        return because

    return named


def _block_zone(block: Block, inputs: engine.Inputs, zone: str) -> str:
    if block.resource_id:
        for resource in inputs.resources:
            if resource.id == str(block.resource_id):
                return resource.zone
    return zone


class ExplainDayForm(forms.Form):
    service = forms.ModelChoiceField(queryset=Service.objects.none())
    location = forms.ModelChoiceField(queryset=Location.objects.none())
    date = forms.DateField(help_text="The local date at the location, YYYY-MM-DD.", widget=forms.DateInput(attrs={"type": "date"}))
    time = forms.TimeField(
        required=False, help_text="Optional: one more local time to explain, e.g. 09:05 (on the grid or not).",
        widget=forms.TimeInput(attrs={"type": "time"}),
    )

    def __init__(self, *args, resource: Resource, **kwargs):
        super().__init__(*args, **kwargs)
        self.resource = resource
        self.fields["service"].queryset = Service.objects.filter(pk__in=[s.pk for s in cal.services_of_resource(resource=resource)])
        self.fields["location"].queryset = Location.objects.filter(pk__in=[loc.pk for loc in cal.resource_locations(resource=resource)])

    def clean(self):
        cleaned = super().clean()
        service, location = cleaned.get("service"), cleaned.get("location")
        if service is not None and location is not None and service not in cal.services_of_resource(resource=self.resource, location=location):
            raise forms.ValidationError({"service": f"{self.resource} does not offer {service} at {location}."})
        return cleaned


def explain_day_view(model_admin, request, object_id):
    resource = model_admin.get_object(request, object_id)
    if resource is None or not model_admin.has_view_permission(request, resource):
        raise Http404("Resource not found.")
    data = request.GET.copy() if request.GET else None
    locations = cal.resource_locations(resource=resource)
    if data is not None and not data.get("date") and data.get("location"):
        location = next((loc for loc in locations if str(loc.pk) == data["location"]), None)
        if location is not None:
            data["date"] = cal.local_today(location.timezone, timezone.now()).isoformat()
    form = ExplainDayForm(data, resource=resource)
    result = None
    if form.is_valid():
        result = explain_day(
            resource=resource, service=form.cleaned_data["service"], location=form.cleaned_data["location"],
            day=form.cleaned_data["date"], also=form.cleaned_data.get("time"),
        )
        if not result.listed and not any(r.state == "off_grid" for r in result.rows):
            messages.info(request, "Nothing is bookable that day; the reasons are below.")
    calendar_url = day_links = None
    if result is not None:
        location, service = form.cleaned_data["location"], form.cleaned_data["service"]
        calendar_url = reverse("admin:booking_location_calendar", args=[location.pk]) + "?" + urlencode(
            {"service": service.pk, "day": result.day.isoformat()}
        )
        base = request.path
        day_links = {
            "prev": base + "?" + urlencode({"service": service.pk, "location": location.pk, "date": (result.day - timedelta(days=1)).isoformat()}),
            "next": base + "?" + urlencode({"service": service.pk, "location": location.pk, "date": (result.day + timedelta(days=1)).isoformat()}),
        }
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Why is a time not bookable? {resource}, by day",
        "opts": model_admin.model._meta,
        "original": resource,
        "form": form,
        "result": result,
        "calendar_url": calendar_url,
        "day_links": day_links,
        "zone_name": wallclock.instant(cal.day_bounds(result.zone, result.day)[0] + 12 * 3600, result.zone).tzname() if result else "",
        "is_nav_sidebar_enabled": False,  # the day's table needs the width, as the calendars do
    }
    return TemplateResponse(request, "admin/booking/calendar/explain_day.html", context)


def _uuids(refs: set) -> set[str]:
    """The references that are UUIDs (resource ids), leaving out integer ids of shifts."""
    out = set()
    for ref in refs:
        try:
            out.add(str(uuid.UUID(str(ref))))
        except ValueError:
            continue
    return out
