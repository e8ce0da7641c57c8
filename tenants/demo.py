"""The demo organization with its logins and credentials, created once and kept in ``var/``.

Secrets are normally shown once; for the demo they are also written to
``var/demo_credentials.json`` (git-ignored, mode 600) so every start can print them again.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from booking.demo import demo_data_ensure
from emr.models import EmrConnection, Vendor
from emr.services import emr_connection_create, sandbox_base_url
from tenants.credentials import secret_new
from tenants.models import Membership, Organization
from tenants.services import api_client_create, organization_create

DEMO_SLUG = "harbor-family-health"
DEMO_NAME = "Harbor Family Health"
CREDENTIALS_FILE = settings.VAR_DIR / "demo_credentials.json"


@dataclass
class DemoCredentials:
    organization_id: str
    admin_username: str
    admin_password: str
    staff_username: str  # the front desk
    staff_password: str
    manager_username: str  # the clinic's administrator
    manager_password: str
    viewer_username: str
    viewer_password: str
    api_key: str
    client_id: str
    client_secret: str
    access_token: str


def _load() -> dict:
    try:
        return json.loads(CREDENTIALS_FILE.read_text())
    except (OSError, ValueError):
        return {}


def _save(creds: DemoCredentials) -> None:
    CREDENTIALS_FILE.write_text(json.dumps(asdict(creds), indent=2))
    CREDENTIALS_FILE.chmod(0o600)


def _user(username: str, password: str, *, superuser: bool):
    User = get_user_model()
    user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@harbor.example"})
    user.is_staff = True
    user.is_superuser = superuser
    user.set_password(password)
    user.save()
    return user


@transaction.atomic
def demo_ensure() -> DemoCredentials:
    """The demo organization, its data, an API client, a sandbox EMR connection, a superuser and one
    staff user of each role (admin, front desk, viewer); idempotent."""
    saved = _load()
    org = Organization.objects.filter(slug=DEMO_SLUG).first()
    if org is None:
        org = organization_create(name=DEMO_NAME, timezone_name="America/New_York", slug=DEMO_SLUG)
        saved = {}  # a new database: old credentials are meaningless
    demo_data_ensure(organization=org)

    if not (saved.get("api_key") and saved.get("organization_id") == str(org.pk)):
        issued = api_client_create(organization=org, name="Demo API client")
        saved.update(api_key=issued.api_key, client_id=issued.api_client.client_id, client_secret=issued.client_secret)
    connection = EmrConnection.objects.filter(organization=org, vendor=Vendor.SANDBOX).first()
    if connection is None:
        issued_conn = emr_connection_create(organization=org, vendor=Vendor.SANDBOX, name="Sandbox EMR")
        connection, saved["access_token"] = issued_conn.connection, issued_conn.access_token
    elif not saved.get("access_token"):
        token = secret_new("tok")
        EmrConnection.objects.filter(pk=connection.pk).update(access_token_lookup=token.lookup, access_token_hash=token.hash)
        saved["access_token"] = token.value
    if connection.base_url != sandbox_base_url():  # SITE_URL changed
        EmrConnection.objects.filter(pk=connection.pk).update(base_url=sandbox_base_url())

    creds = DemoCredentials(
        organization_id=str(org.pk),
        admin_username="admin",
        admin_password=saved.get("admin_password") or secrets.token_urlsafe(9),
        staff_username="frontdesk",
        staff_password=saved.get("staff_password") or secrets.token_urlsafe(9),
        manager_username="manager",
        manager_password=saved.get("manager_password") or secrets.token_urlsafe(9),
        viewer_username="viewer",
        viewer_password=saved.get("viewer_password") or secrets.token_urlsafe(9),
        api_key=saved["api_key"],
        client_id=saved["client_id"],
        client_secret=saved["client_secret"],
        access_token=saved["access_token"],
    )
    _user(creds.admin_username, creds.admin_password, superuser=True)
    for username, password, role in (
        (creds.staff_username, creds.staff_password, Membership.Role.FRONTDESK),
        (creds.manager_username, creds.manager_password, Membership.Role.ADMIN),
        (creds.viewer_username, creds.viewer_password, Membership.Role.VIEWER),
    ):
        staff = _user(username, password, superuser=False)
        Membership.objects.update_or_create(user=staff, organization=org, defaults={"role": role})
    _save(creds)
    return creds
