"""The webhook settings: their defaults, and the system check that keeps the lease longer than an
attempt can take."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from tenants.webhooks.checks import webhook_settings_check


def _defaults(*names: str) -> list[str]:
    """The settings ``names`` as a fresh process reads them with no ``WEBHOOK_*`` variable set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOK_")}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    code = "import django; django.setup(); from django.conf import settings as s; " \
        f"print({', '.join(f's.{name}' for name in names)})"
    out = subprocess.run([sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_defaults_are_a_5_second_timeout_and_a_60_second_lease():
    assert _defaults("WEBHOOK_TIMEOUT_SECONDS", "WEBHOOK_LEASE_SECONDS") == ["5.0", "60"]


@override_settings(WEBHOOK_TIMEOUT_SECONDS=5.0, WEBHOOK_LEASE_SECONDS=60)
def test_the_defaults_pass_the_check():
    assert webhook_settings_check() == []


@pytest.mark.parametrize("timeout,lease", [(5.0, 14), (5.0, 5), (30.0, 2), (60.0, 60)])
def test_a_lease_that_does_not_outlast_the_timeout_by_10_seconds_is_an_error(timeout, lease):
    with override_settings(WEBHOOK_TIMEOUT_SECONDS=timeout, WEBHOOK_LEASE_SECONDS=lease):
        [error] = webhook_settings_check()
        assert error.id == "tenants.E002" and "WEBHOOK_LEASE_SECONDS" in error.msg
        with pytest.raises(SystemCheckError, match="tenants.E002"):
            call_command("check")


@pytest.mark.parametrize("timeout", [0, -1.0])
def test_a_timeout_must_be_positive(timeout):
    with override_settings(WEBHOOK_TIMEOUT_SECONDS=timeout):
        assert [e.id for e in webhook_settings_check()] == ["tenants.E001"]


@override_settings(WEBHOOK_TIMEOUT_SECONDS=5.0, WEBHOOK_LEASE_SECONDS=15)
def test_exactly_the_margin_is_enough():
    assert webhook_settings_check() == []


@pytest.mark.parametrize("name", ["WEBHOOK_BATCH_SIZE", "WEBHOOK_CONCURRENCY_PER_URL"])
@pytest.mark.parametrize("value", [0, -4])
def test_a_batch_size_or_per_url_concurrency_below_1_is_an_error(name, value):
    with override_settings(**{name: value}):
        [error] = webhook_settings_check()
        assert error.id == "tenants.E003" and name in error.msg


def test_batches_default_to_64_deliveries_at_most_16_at_a_time_to_one_url():
    assert _defaults("WEBHOOK_BATCH_SIZE", "WEBHOOK_CONCURRENCY_PER_URL") == ["64", "16"]
