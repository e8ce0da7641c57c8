"""Run the whole product on one machine with a demo organization.

Migrates the database, creates (once) the demo clinic with an admin login and API credentials,
starts the web server and a django-q2 worker, and once the site answers, has the worker sync the
sandbox EMR's providers and fetch the coming week's appointments through the real FHIR adapter.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from emr.services.demo import calendly_demo_sync, demo_ensure, demo_sync
from tenants.models import Organization

STOP_GRACE_SECONDS = 10.0


def stop_children(children: list[subprocess.Popen], *, grace: float) -> list[subprocess.Popen]:
    """Stop the children: SIGTERM, then SIGKILL for those still running after ``grace`` seconds.
    Returns the ones that had to be killed.

    Not SIGINT: a demo started with SIGINT ignored (``nohup``, ``&`` in a script) passes that on to
    its children, and runserver then ignores SIGINT too."""
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + grace
    killed = []
    for child in children:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            # Its whole process group: a worker's own processes must not outlive it.
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                child.kill()
            child.wait()
            killed.append(child)
    return killed


def demo_children_env(environ) -> dict[str, str]:
    """The environment of the demo's web server and worker: the caller's, with webhooks allowed to
    reach plain http and local addresses (a receiver on the same laptop) unless set otherwise."""
    env = dict(environ)
    env.setdefault("WEBHOOK_ALLOW_PRIVATE_URLS", "true")
    return env


class Command(BaseCommand):
    help = "Migrate, create the demo organization, start the web server and a task worker."

    def add_arguments(self, parser):
        parser.add_argument("--setup-only", action="store_true", help="Prepare everything, start nothing.")

    def handle(self, *args, **options):
        site = settings.SITE_URL
        parts = urlsplit(site)
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        if not options["setup_only"] and not self._port_free(host, port):
            raise CommandError(
                f"{host}:{port} is already in use. Stop what is listening there, or run on another port "
                f"with SITE_URL=http://127.0.0.1:8001 make run"
            )
        call_command("migrate", interactive=False, verbosity=0)
        creds = demo_ensure()
        self.stdout.write(self._banner(site, creds))
        if options["setup_only"]:
            return

        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        env = demo_children_env(os.environ)
        # Each child leads its own process group, so stopping one stops everything it started; the
        # terminal's Ctrl-C reaches only this command, which stops them (see stop_children).
        web = subprocess.Popen(
            [*manage, "runserver", f"{host}:{port}", "--noreload"], cwd=settings.BASE_DIR, env=env, start_new_session=True
        )
        worker = subprocess.Popen([*manage, "qcluster"], cwd=settings.BASE_DIR, env=env, start_new_session=True)
        children = {"web server": web, "task worker": worker}
        stop = {"now": False}

        def on_signal(signum, frame):
            stop["now"] = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        failed = None
        try:
            if self._wait_until_serving(f"{site}/sandbox/fhir/r4/metadata", web, stop):
                organization = Organization.objects.get(pk=creds.organization_id)
                if demo_sync(organization=organization) is not None:
                    self.stdout.write("  The worker is syncing the sandbox EMR (see Jobs in the admin).")
                calendly_demo_sync(organization=organization)
                self.stdout.write("  The worker is syncing the sandbox Calendly (the provider directory's data).")
                self.stdout.write(f"  Serving at {site}/admin/ — press Ctrl-C to stop.")
            while not stop["now"]:
                failed = next((name for name, child in children.items() if child.poll() is not None), None)
                if failed:
                    break
                time.sleep(0.5)
        finally:
            killed = stop_children(list(children.values()), grace=STOP_GRACE_SECONDS)
            for name, child in children.items():
                if child in killed:
                    self.stderr.write(f"The {name} did not stop within {STOP_GRACE_SECONDS:g} s and was killed.")
        if failed:
            raise CommandError(f"The {failed} stopped unexpectedly (exit code {children[failed].returncode}).")

    @staticmethod
    def _port_free(host: str, port: int) -> bool:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                return False
        return True

    @staticmethod
    def _wait_until_serving(url: str, web: subprocess.Popen, stop: dict, seconds: float = 60) -> bool:
        """True once our web server answers the sandbox's capability statement."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not stop["now"] and web.poll() is None:
            try:
                response = httpx.get(url, timeout=2)
                if response.status_code == 200 and response.json().get("resourceType") == "CapabilityStatement":
                    return True
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.3)
        return False

    @staticmethod
    def _banner(site: str, creds) -> str:
        return f"""
  Scheduling backend — demo organization "Harbor Family Health" is ready.

  Admin            {site}/admin/
    superuser      {creds.admin_username} / {creds.admin_password}
    clinic admin   {creds.manager_username} / {creds.manager_password}   (everything in the demo clinic)
    front desk     {creds.staff_username} / {creds.staff_password}   (appointments, blocks, allocations; reads the rest)
    viewer         {creds.viewer_username} / {creds.viewer_password}   (reads the demo clinic)
  API docs         {site}/api/docs/
  Booking API      x-api-key: {creds.api_key}
    e.g.           curl -H 'x-api-key: {creds.api_key}' {site}/v3/locations
  EMR API          client_id: {creds.client_id}
                   client_secret: {creds.client_secret}
                   access_token: {creds.access_token}
    e.g.           curl -H 'client_id: {creds.client_id}' -H 'client_secret: {creds.client_secret}' \\
                        -H 'access_token: {creds.access_token}' {site}/v1/providers
  Webhooks         may point at http:// and local addresses here (WEBHOOK_ALLOW_PRIVATE_URLS=true)
  (credentials are kept in {settings.VAR_DIR / 'demo_credentials.json'})
"""
