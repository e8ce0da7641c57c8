"""Run the whole product on one machine with a demo organization.

Migrates the database, creates (once) the demo clinic with an admin login and API credentials,
starts the web server and a django-q2 worker, and once the site answers, has the worker sync the
sandbox EMR's providers and fetch the coming week's appointments through the real FHIR adapter.
"""

import os
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from emr.services import demo_sync
from tenants.demo import demo_ensure
from tenants.models import Organization


class Command(BaseCommand):
    help = "Migrate, create the demo organization, start the web server and a task worker."

    def add_arguments(self, parser):
        parser.add_argument("--setup-only", action="store_true", help="Prepare everything, start nothing.")

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        creds = demo_ensure()
        site = settings.SITE_URL
        self.stdout.write(self._banner(site, creds))
        if options["setup_only"]:
            return

        parts = urlsplit(site)
        addrport = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        env = os.environ.copy()
        children = [
            subprocess.Popen([*manage, "runserver", addrport, "--noreload"], cwd=settings.BASE_DIR, env=env),
            subprocess.Popen([*manage, "qcluster"], cwd=settings.BASE_DIR, env=env),
        ]
        stop = {"now": False}

        def on_signal(signum, frame):
            stop["now"] = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        try:
            if self._wait_until_serving(f"{site}/sandbox/fhir/r4/metadata", stop):
                organization = Organization.objects.get(pk=creds.organization_id)
                if demo_sync(organization=organization) is not None:
                    self.stdout.write("  The worker is syncing the sandbox EMR (see Jobs in the admin).\n")
                self.stdout.write(f"  Serving at {site}/admin/ — press Ctrl-C to stop.\n")
            while not stop["now"] and all(child.poll() is None for child in children):
                time.sleep(0.5)
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()

    @staticmethod
    def _wait_until_serving(url: str, stop: dict, seconds: float = 60) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not stop["now"]:
            try:
                if httpx.get(url, timeout=2).status_code < 500:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        return False

    @staticmethod
    def _banner(site: str, creds) -> str:
        return f"""
  Scheduling backend — demo organization "Harbor Family Health" is ready.

  Admin            {site}/admin/
    superuser      {creds.admin_username} / {creds.admin_password}
    clinic staff   {creds.staff_username} / {creds.staff_password}   (sees only the demo clinic)
  API docs         {site}/api/docs/
  Booking API      x-api-key: {creds.api_key}
    e.g.           curl -H 'x-api-key: {creds.api_key}' {site}/v3/locations
  EMR API          client_id: {creds.client_id}
                   client_secret: {creds.client_secret}
                   access_token: {creds.access_token}
    e.g.           curl -H 'client_id: {creds.client_id}' -H 'client_secret: {creds.client_secret}' \\
                        -H 'access_token: {creds.access_token}' {site}/v1/providers
  (credentials are kept in {settings.VAR_DIR / 'demo_credentials.json'})
"""
