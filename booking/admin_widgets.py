"""Booking's admin form fields: licensed states as check boxes of codes; the weekly windows and
weekday widgets come from ``tenants.admin_widgets``."""

from __future__ import annotations

from django import forms

from tenants.admin_widgets import CheckboxSetWidget, WeekdaysField, WeeklyWindowsField, weekly_windows_text
from tenants.us_states import US_STATE_CODES

__all__ = ["StatesField", "WeekdaysField", "WeeklyWindowsField", "weekly_windows_text"]


class StatesField(forms.JSONField):
    def __init__(self, **kwargs):
        codes = sorted(US_STATE_CODES)
        widget = CheckboxSetWidget([(code, code) for code in codes])
        widget.css_class = "checkbox-set states"
        kwargs.setdefault("widget", widget)
        super().__init__(**kwargs)
