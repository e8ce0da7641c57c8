"""The staff admin's calendars and the explainer's day view (``shared/spec/admin.md``).

``selectors`` reads what a calendar shows, ``views`` are the admin pages (hooked into the location
and resource admins' URLs by ``urls``), ``explain`` is the explainer's day view. Bookable starts
come from ``booking.availability.selectors.availability_answer``, the code behind
``GET /v3/availability``; bookings go through ``booking.services.appointments``.
"""
