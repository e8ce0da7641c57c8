"""Form widgets for the JSON lists staff edit: weekly hours as rows of day, start and end; a set
of weekdays or of codes as check boxes (admin.md, "Lists and forms").

Each widget submits its parts under ``<name>__<part>`` and hands the model's JSON field the list
they make, so the model's own validators judge it exactly as they judge the API's input. A raw JSON
value posted under the field's own name (a script, not the page) is taken as it is.
"""

from __future__ import annotations

import json

from django import forms
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

# Monday first, as clinics read a week; values are the stored 0 = Sunday numbering.
WEEK_ORDER = [(1, "Monday"), (2, "Tuesday"), (3, "Wednesday"), (4, "Thursday"), (5, "Friday"), (6, "Saturday"), (0, "Sunday")]


def _parsed(value):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _hm(text) -> str:
    """``09:00:00`` → ``09:00`` for a time input; the end of day ``24:00:00`` → ``00:00``."""
    if not isinstance(text, str):
        return ""
    text = text[:5]
    return "00:00" if text == "24:00" else text


def _hms(text: str, *, is_end: bool) -> str:
    """A time input's ``HH:MM`` (or ``HH:MM:SS``) as stored; an end at ``00:00`` is midnight at
    the end of the day (``24:00:00``)."""
    text = (text or "").strip()
    if len(text) == 5:
        text += ":00"
    if is_end and text == "00:00:00":
        return "24:00:00"
    return text


class _JsonPartsWidget(forms.Widget):
    def value_omitted_from_data(self, data, files, name):
        return False  # an empty set of boxes is a value: none

    def value_from_datadict(self, data, files, name):
        if name in data:  # raw JSON from a script
            return data.get(name)
        return json.dumps(self.value_from_parts(data, name))

    def value_from_parts(self, data, name):
        raise NotImplementedError


class WeeklyWindowsWidget(_JsonPartsWidget):
    """Rows of weekday, start and end; a few blank rows to add windows (a row without a day is
    ignored, so clearing a row's day removes it)."""

    blank_rows = 3

    def value_from_parts(self, data, name):
        days, starts, ends = (data.getlist(f"{name}__{part}") for part in ("day", "start", "end"))
        windows = []
        for day, start, end in zip(days, starts, ends, strict=False):
            if day == "" and not start and not end:
                continue
            try:
                day_number = int(day)
            except ValueError:
                day_number = day  # the model's validator names it
            windows.append({"dayOfWeek": day_number, "startTime": _hms(start, is_end=False), "endTime": _hms(end, is_end=True)})
        return windows

    def render(self, name, value, attrs=None, renderer=None):
        windows = _parsed(value)
        if not isinstance(windows, list) or not all(isinstance(w, dict) for w in windows):
            windows = []
        ordering = {day: n for n, (day, _) in enumerate(WEEK_ORDER)}
        windows = sorted(windows, key=lambda w: (ordering.get(w.get("dayOfWeek"), 9), str(w.get("startTime"))))
        rows = [*windows, *({} for _ in range(self.blank_rows))]
        html_rows = []
        for index, window in enumerate(rows):
            day = window.get("dayOfWeek")
            options = format_html_join(
                "", '<option value="{}"{}>{}</option>',
                ((value, " selected" if value == day else "", label) for value, label in [("", "—"), *WEEK_ORDER]),
            )
            html_rows.append(format_html(
                '<tr><td><select name="{n}__day" aria-label="Day {i}">{o}</select></td>'
                '<td><input type="time" name="{n}__start" value="{s}" aria-label="Start {i}"></td>'
                '<td><input type="time" name="{n}__end" value="{e}" aria-label="End {i}"></td></tr>',
                n=name, i=index + 1, o=options, s=_hm(window.get("startTime")), e=_hm(window.get("endTime")),
            ))
        return format_html(
            '<table class="weekly-windows" id="{}"><thead><tr><th>Day</th><th>From</th><th>To</th></tr></thead>'
            "<tbody>{}</tbody></table>"
            '<p class="help">A day can have several rows (a lunch break: two). Clear a row\'s day to remove it; '
            "an end of 00:00 is midnight.</p>",
            (attrs or {}).get("id", f"id_{name}"), mark_safe("".join(html_rows)),
        )


class CheckboxSetWidget(_JsonPartsWidget):
    """Check boxes for a set of values, stored as a JSON list (in ``choices`` order)."""

    css_class = "checkbox-set"

    def __init__(self, choices, *, coerce=str, attrs=None):
        super().__init__(attrs)
        self.choices, self.coerce = list(choices), coerce

    def value_from_parts(self, data, name):
        checked = set(data.getlist(f"{name}__item"))
        out = []
        for value, _ in self.choices:
            if str(value) in checked:
                out.append(self.coerce(value))
        unknown = checked - {str(v) for v, _ in self.choices}
        return out + sorted(unknown)  # the model's validator names what is not a choice

    def render(self, name, value, attrs=None, renderer=None):
        chosen = _parsed(value)
        chosen = {str(v) for v in chosen} if isinstance(chosen, list) else set()
        boxes = format_html_join(
            "",
            '<label><input type="checkbox" name="{}__item" value="{}"{}> {}</label>',
            ((name, v, " checked" if str(v) in chosen else "", label) for v, label in self.choices),
        )
        return format_html('<div class="{}" id="{}">{}</div>', self.css_class, (attrs or {}).get("id", f"id_{name}"), boxes)


class WeeklyWindowsField(forms.JSONField):
    widget = WeeklyWindowsWidget


class WeekdaysField(forms.JSONField):
    def __init__(self, **kwargs):
        kwargs.setdefault("widget", CheckboxSetWidget(WEEK_ORDER, coerce=int))
        super().__init__(**kwargs)


def weekly_windows_text(windows) -> str:
    """``Mon–Fri 07:30–19:00 · Sat 08:00–12:00``: days with the same hours run together."""
    if not isinstance(windows, list):
        return ""
    by_day: dict[int, list[str]] = {}
    for window in windows:
        if isinstance(window, dict):
            span = f"{_hm(window.get('startTime'))}–{_hm(window.get('endTime')).replace('00:00', '24:00') if _hm(window.get('endTime')) == '00:00' else _hm(window.get('endTime'))}"
            by_day.setdefault(window.get("dayOfWeek"), []).append(span)
    groups: list[tuple[list[str], str]] = []
    for day, label in WEEK_ORDER:
        if day not in by_day:
            continue
        hours = ", ".join(sorted(by_day[day]))
        if groups and groups[-1][1] == hours and groups[-1][0][-1] == WEEK_ORDER[[d for d, _ in WEEK_ORDER].index(day) - 1][1][:3]:
            groups[-1][0].append(label[:3])
        else:
            groups.append(([label[:3]], hours))
    return " · ".join(f"{days[0]}–{days[-1]} {hours}" if len(days) > 1 else f"{days[0]} {hours}" for days, hours in groups)
