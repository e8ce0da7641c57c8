"""The availability and appointment endpoints covered by ``test_booking_isolation.py``, also read by
``tests/api/test_tenant_isolation.py::test_every_route_is_in_the_table``."""

from __future__ import annotations

import re

# (method, url template, body key or None, status for the owner)
ROWS = [
    ("GET", "/v3/availability?startDate={monday}&endDate={monday}&LocationId={location}&ServiceId={service}", None, 200),
    ("GET", "/v3/availability/explain?time={monday}T15:00:00Z&ResourceId={resource}&LocationId={location}&ServiceId={service}", None, 200),
    ("POST", "/v3/appointments", "book", 201),
    ("POST", "/v3/appointments/hold", "book", 201),
    ("POST", "/v3/appointments/reserve", "book", 201),
    ("GET", "/v3/appointments/{appointment}", None, 200),
    ("PUT", "/v3/appointments/{appointment}/book", None, 200),
    ("PUT", "/v3/appointments/{appointment}/cancel", None, 200),
    ("PUT", "/v3/appointments/{appointment}/reschedule", "reschedule", 200),
]
# GET /v3/appointments (the list) has its own test: B sees only its own appointments.
ROUTES = {re.sub(r"\{[^}]+\}", "{}", template.split("?")[0]) for _, template, _, _ in ROWS} | {"/v3/appointments"}
