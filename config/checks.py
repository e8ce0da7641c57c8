"""System checks for the project's settings."""

from __future__ import annotations

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
