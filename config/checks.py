"""System checks for the project's settings."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.core import checks


def generated_secret_check(app_configs=None, **kwargs) -> list[checks.Warning]:
    """``config.W001``: DEBUG is off (a deployment) but no ``SECRET_KEY`` was set, so sessions,
    signed tokens and the credentials encrypted at rest depend on a key generated into this
    checkout's ``var/`` (or one made up for this process alone)."""
    if settings.DEBUG or not getattr(settings, "SECRET_KEY_GENERATED", False):
        return []
    return [
        checks.Warning(
            "SECRET_KEY is not set: this deployment runs on a generated secret.",
            hint="Set SECRET_KEY in the environment (50 or more random characters). The generated one lives "
            "in var/secret_key of one machine; other machines, and a fresh checkout, would get another, "
            "logging everyone out and leaving credentials encrypted at rest unreadable.",
            id="config.W001",
        )
    ]


def outbound_networks_check(app_configs=None, **kwargs) -> list[checks.Error]:
    """``config.E001``: every ``OUTBOUND_ALLOWED_NETWORKS`` entry is a network (CIDR) or an address;
    a typo would otherwise surface only when a webhook or calendar request is checked."""
    bad = []
    for network in getattr(settings, "OUTBOUND_ALLOWED_NETWORKS", []):
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            bad.append(network)
    if not bad:
        return []
    return [
        checks.Error(
            f"OUTBOUND_ALLOWED_NETWORKS has entries that are not networks: {', '.join(map(repr, bad))}.",
            hint="Comma-separated CIDR networks or addresses, e.g. 10.20.0.0/16,192.168.1.5.",
            id="config.E001",
        )
    ]


def calendly_settings_check(app_configs=None, **kwargs) -> list[checks.Error]:
    """``config.E002``: ``CALENDLY_CHUNK_DAYS`` is a span Calendly accepts (1 to 31 days) and
    ``CALENDLY_CONCURRENCY`` at least 1; otherwise every directory request with a window would
    fail."""
    from emr.calendly import MAX_AVAILABLE_TIMES_DAYS

    errors = []
    chunk_days = getattr(settings, "CALENDLY_CHUNK_DAYS", MAX_AVAILABLE_TIMES_DAYS)
    if not 1 <= chunk_days <= MAX_AVAILABLE_TIMES_DAYS:
        errors.append(checks.Error(
            f"CALENDLY_CHUNK_DAYS must be between 1 and {MAX_AVAILABLE_TIMES_DAYS} (it is {chunk_days}).",
            hint="Calendly answers available times for at most 31 days a call.",
            id="config.E002",
        ))
    if getattr(settings, "CALENDLY_CONCURRENCY", 1) < 1:
        errors.append(checks.Error(
            f"CALENDLY_CONCURRENCY must be at least 1 (it is {settings.CALENDLY_CONCURRENCY}).", id="config.E002",
        ))
    return errors
