"""Signed webhooks: endpoints, fan-out of events to deliveries, durable delivery with retries.

- which URLs may be POSTed to: ``tenants.url_guard``, the guard shared with external calendars.
- ``signing``: secrets, Standard Webhooks signatures and ``cobalt-verification`` (pure).
- ``client``: one HTTP POST and its outcome (no ORM).
- ``services`` / ``selectors``: endpoint management, the delivery state machine, reads.
- ``tasks``: the django-q2 entry points.
"""
