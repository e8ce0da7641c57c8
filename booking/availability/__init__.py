"""Availability: the pure engine (``engine``, ``intervals``), the ORM loader, the cache, and
external calendar syncing. Only ``engine`` and ``intervals`` decide what is bookable."""
