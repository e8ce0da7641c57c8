"""List filters by the clinic's local day (admin.md, "Time"): "today" at a Denver site is the
Denver day, whatever zone the server or the organization is in."""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from tenants.localtime import local_day_bounds, local_today


def appointment_zone_expression():
    """An appointment's zone: its location's, else the organization's."""
    return Coalesce(F("location__timezone"), F("organization__timezone"))


def scoped_zone_expression():
    """A block's or allocation's zone: its location's, else its resource's (own, else its first
    linked location's), else the organization's (``booking.selectors.scoped_zone_get``)."""
    from booking.models import ResourceService

    first_location = Subquery(
        ResourceService.objects.filter(resource=OuterRef("resource")).order_by("created_at", "id").values("location__timezone")[:1]
    )
    return Coalesce(F("location__timezone"), F("resource__timezone"), first_location, F("organization__timezone"))


def _span(value: str, zone: str) -> tuple[date | None, int | None] | None:
    """``(first local day, number of days)`` of a filter value in a zone; None days: open-ended;
    None first day: before today."""
    today = local_today(zone)
    relative = {"today": (today, 1), "tomorrow": (today + timedelta(days=1), 1), "week": (today, 7), "upcoming": (today, None)}
    if value in relative:
        return relative[value]
    if value == "past":
        return None, None
    try:
        return date.fromisoformat(value), 1
    except ValueError:
        return None


def local_days_filter(queryset: QuerySet, zone_expression, value: str) -> QuerySet:
    """Rows whose ``[start, end)`` overlaps the local days ``value`` names, each row in its own
    zone: one condition per zone present."""
    qs = queryset.annotate(_local_zone=zone_expression)
    zones = set(qs.order_by().values_list("_local_zone", flat=True).distinct())
    condition = Q(pk__in=[])
    for zone in zones:
        span = _span(value, zone or "UTC")
        if span is None:
            return queryset.none()
        first, days = span
        if first is None:  # before today
            today_start, _ = local_day_bounds(local_today(zone or "UTC"), zone or "UTC")
            condition |= Q(_local_zone=zone, start__lt=today_start)
            continue
        start, end = local_day_bounds(first, zone or "UTC", days or 1)
        part = Q(_local_zone=zone, end__gt=start)
        if days is not None:
            part &= Q(start__lt=end)
        condition |= part
    return qs.filter(condition)


class LocalDayFilter(admin.SimpleListFilter):
    """Today, tomorrow, each of the next days by name, the next 7 days, from today on, before
    today, or any day; ``?day=YYYY-MM-DD`` picks any date. Days are local to each row's place."""

    title = "day (local time)"
    parameter_name = "day"
    default = "all"
    zone_expression = staticmethod(appointment_zone_expression)

    def lookups(self, request, model_admin):
        today = timezone.localdate()  # the organization's today (AdminTimezoneMiddleware)
        named = []
        for n in range(2, 7):
            day = today + timedelta(days=n)
            named.append((day.isoformat(), f"{day:%a} {day.day} {day:%b}"))
        chosen = self.value()
        if chosen and _is_date(chosen) and chosen not in dict(named):
            named.append((chosen, f"{date.fromisoformat(chosen):%a} {date.fromisoformat(chosen).day} {date.fromisoformat(chosen):%b %Y}"))
        return [
            ("today", "Today"),
            ("tomorrow", "Tomorrow"),
            *named,
            ("week", "Next 7 days"),
            ("upcoming", "From today on"),
            ("past", "Before today"),
            ("all", "Any day"),
        ]

    def choices(self, changelist):
        current = self.value() or self.default
        for value, label in self.lookup_choices:
            yield {
                "selected": current == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        value = self.value() or self.default
        if value == "all":
            return queryset
        return local_days_filter(queryset, self.zone_expression(), value)


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


class ScopedLocalDayFilter(LocalDayFilter):
    zone_expression = staticmethod(scoped_zone_expression)


def local_span_filter(queryset: QuerySet, zone_expression, first: date, last: date) -> QuerySet:
    """Rows that start on a local day from ``first`` to ``last`` (inclusive), each in its zone."""
    qs = queryset.annotate(_local_zone=zone_expression)
    zones = set(qs.order_by().values_list("_local_zone", flat=True).distinct())
    condition = Q(pk__in=[])
    for zone in zones:
        start, end = local_day_bounds(first, zone or "UTC", (last - first).days + 1)
        condition |= Q(_local_zone=zone, start__gte=start, start__lt=end)
    return qs.filter(condition)


class LocalDateHierarchyChangeList(ChangeList):
    """The date drill-down by local days: ``start__year/month/day`` select the rows that start on
    those days in their own zone (Django's would take the days of one zone for every row)."""

    def get_filters(self, request):
        field, self.date_hierarchy = self.date_hierarchy, None
        try:
            specs, has_filters, remaining, duplicates, active = super().get_filters(request)
        finally:
            self.date_hierarchy = field
        self._local_span = None
        if field:
            parts = [remaining.pop(f"{field}__{part}", None) for part in ("year", "month", "day")]
            year, month, day = (p[-1] if p else None for p in parts)
            if year is not None:
                try:
                    first = date(int(year), int(month or 1), int(day or 1))
                except ValueError as exc:
                    raise IncorrectLookupParameters(exc) from exc
                if day:
                    last = first
                elif month:
                    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
                else:
                    last = first.replace(month=12, day=31)
                self._local_span = (first, last)
                active = True
        return specs, has_filters, remaining, duplicates, active

    def get_queryset(self, request, exclude_parameters=None):
        qs = super().get_queryset(request, exclude_parameters)
        if self._local_span:
            qs = local_span_filter(qs, self.model_admin.local_zone_expression(), *self._local_span)
        return qs
