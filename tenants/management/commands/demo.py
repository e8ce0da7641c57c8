"""Run the whole product on one machine with a demo organization.

Migrates the database, creates (once) the demo clinic with an admin login and API credentials,
starts a django-q2 worker and the web server, and prints where to log in.
"""

import os
import signal
import subprocess
import sys
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from tenants.demo import demo_ensure


class Command(BaseCommand):
    help = "Migrate, create the demo organization, start the task worker and the web server."

    def add_arguments(self, parser):
        parser.add_argument("--setup-only", action="store_true", help="Prepare everything, start nothing.")

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        creds = demo_ensure()
        site = settings.SITE_URL
        parts = urlsplit(site)
        addrport = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        banner = f"""
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
  (credentials are kept in {settings.VAR_DIR / 'demo_credentials.json'})
"""
        self.stdout.write(banner)
        if options["setup_only"]:
            return
        worker = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=settings.BASE_DIR, env=os.environ.copy())
        try:
            call_command("runserver", addrport, use_reloader=False)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
