"""System checks for the webhook settings (``manage.py check``, and every command that starts
workers or a server runs them first)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error

# Beyond the attempt itself (bounded by WEBHOOK_TIMEOUT_SECONDS, name lookup included), a worker
# reads the delivery before sending and records the outcome after; on a busy database that can
# take a while, and a lease that ends first lets another worker send the event again.
LEASE_MARGIN_SECONDS = 10


def webhook_settings_check(app_configs=None, **kwargs) -> list[Error]:
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    lease = settings.WEBHOOK_LEASE_SECONDS
    if not timeout > 0:
        return [Error(f"WEBHOOK_TIMEOUT_SECONDS must be positive (it is {timeout}).", id="tenants.E001")]
    for name in ("WEBHOOK_BATCH_SIZE", "WEBHOOK_CONCURRENCY_PER_URL"):
        value = getattr(settings, name)
        if not (isinstance(value, int) and value >= 1):
            return [Error(f"{name} must be a whole number of at least 1 (it is {value!r}).", id="tenants.E003")]
    if lease < timeout + LEASE_MARGIN_SECONDS:
        return [
            Error(
                f"WEBHOOK_LEASE_SECONDS ({lease}) must be at least WEBHOOK_TIMEOUT_SECONDS ({timeout:g}) "
                f"plus {LEASE_MARGIN_SECONDS}.",
                hint="A worker owns a claimed delivery for the lease; when the lease ends before the attempt "
                "is recorded, another worker sends the event again.",
                id="tenants.E002",
            )
        ]
    return []
