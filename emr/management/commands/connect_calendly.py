import json
import uuid

from django.core.management.base import BaseCommand, CommandError

from emr.models import CALENDLY_API_URL
from emr.services.calendly import calendly_connect, calendly_connect_sandbox
from tenants.models import Organization


def organization_get(value: str) -> Organization:
    try:
        pk = uuid.UUID(value)
    except ValueError:
        raise CommandError(f"--organization must be an organization id (a UUID), not {value[:100]!r}.") from None
    organization = Organization.objects.filter(pk=pk).first()
    if organization is None:
        raise CommandError(f"No organization {pk}.")
    return organization


class Command(BaseCommand):
    help = (
        "Store the organization's Calendly connection (a personal access token, encrypted at rest). "
        "--sandbox connects it to the built-in sandbox Calendly at SITE_URL instead."
    )

    def add_arguments(self, parser):
        parser.add_argument("--organization", required=True, help="Organization id.")
        parser.add_argument("--token", help="Calendly personal access token.")
        parser.add_argument("--base-url", default=None, help=f"Calendly API base URL (default {CALENDLY_API_URL}).")
        parser.add_argument("--sandbox", action="store_true", help="Use the built-in sandbox Calendly.")

    def handle(self, *args, **options):
        organization = organization_get(options["organization"])
        if options["sandbox"]:
            if options["token"] or options["base_url"]:
                raise CommandError("--sandbox takes no --token or --base-url.")
            connection = calendly_connect_sandbox(organization=organization)
        else:
            if not options["token"]:
                raise CommandError("--token is required (or --sandbox).")
            try:
                connection = calendly_connect(organization=organization, token=options["token"], base_url=options["base_url"])
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps({"organization_id": str(organization.pk), "calendly_connection_id": str(connection.pk),
                                      "base_url": connection.base_url}))
