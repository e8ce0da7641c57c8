import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import URLValidator
from django.db import transaction

from emr.models import Vendor
from emr.services import emr_connection_create, emr_connection_keypair_ensure
from tenants.models import available_timezones
from tenants.services import api_client_create, organization_create

# The option that set each model field, for error messages.
OPTION_OF_FIELD = {"name": "--name", "timezone": "--timezone", "base_url": "--emr-base-url", "vendor": "--emr"}


class Command(BaseCommand):
    help = (
        "Create an organization with one API client and one EMR connection. The last line of "
        "output is one JSON object holding the credentials, which are shown only this once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--timezone", default="UTC", help="IANA zone (default UTC).")
        parser.add_argument(
            "--emr", default=Vendor.SANDBOX, help=f"EMR vendor (default sandbox): {', '.join(Vendor.values)}."
        )
        parser.add_argument("--emr-base-url", default=None, help="FHIR base URL (ecw, fhir).")
        parser.add_argument("--emr-client-id", default=None, help="Client id registered with the EMR (ecw, fhir).")
        parser.add_argument(
            "--emr-private-key-file", default=None,
            help="PEM private key for SMART Backend Services; without one a key pair is created and its "
            "public JWKS printed (emr_public_jwks) for registration with the EMR.",
        )
        parser.add_argument("--emr-kid", default=None, help="Key id of --emr-private-key-file.")
        parser.add_argument("--emr-token-url", default=None, help="Token endpoint (default: discovered).")
        parser.add_argument("--emr-auth", default=None, choices=["smart_backend", "client_secret", "none"])

    def handle(self, *args, **options):
        name = options["name"].strip()
        if not name or len(name) > 200:
            raise CommandError("--name must be 1 to 200 characters.")
        if options["timezone"] not in available_timezones():
            raise CommandError(f"Unknown time zone {options['timezone']!r}.")
        vendor = options["emr"].strip().lower()
        if vendor not in Vendor.values:
            raise CommandError(f"Unknown EMR vendor {vendor!r}; known: {', '.join(Vendor.values)}.")
        for option in ("emr_base_url", "emr_token_url"):
            value = options[option]
            if value is None:
                continue
            try:
                URLValidator(schemes=["http", "https"])(value)
            except ValidationError:
                raise CommandError(f"--{option.replace('_', '-')} must be an http:// or https:// URL, not {value[:200]!r}.") from None
        credentials = {
            key: options[f"emr_{key}"]
            for key in ("client_id", "kid", "token_url", "auth")
            if options.get(f"emr_{key}")
        }
        if options["emr_private_key_file"]:
            try:
                with open(options["emr_private_key_file"]) as handle:
                    credentials["private_key_pem"] = handle.read()
            except OSError as exc:
                raise CommandError(f"Cannot read --emr-private-key-file: {exc}") from None
            if not credentials.get("kid"):
                raise CommandError("--emr-private-key-file needs --emr-kid (the key id registered with the EMR).")
        public_jwks = None
        try:
            with transaction.atomic():
                org = organization_create(name=name, timezone_name=options["timezone"])
                issued = api_client_create(organization=org, name=f"{name} API client")
                conn = emr_connection_create(
                    organization=org, vendor=vendor, base_url=options["emr_base_url"], credentials=credentials
                )
                if vendor in ("ecw", "fhir") and credentials.get("auth", "smart_backend") == "smart_backend":
                    public_jwks = emr_connection_keypair_ensure(connection=conn.connection)
        except ValidationError as exc:  # what the options' own checks above let through; nothing was written
            fields = getattr(exc, "message_dict", {"": exc.messages})
            details = "; ".join(f"{OPTION_OF_FIELD.get(k, k)}: {' '.join(v)}" if k else " ".join(v) for k, v in fields.items())
            raise CommandError(f"Not created: {details}") from None
        self.stdout.write(f"Created organization {org.name} ({org.slug}).")
        self.stdout.write(
            json.dumps(
                {
                    "organization_id": str(org.id),
                    "organization_slug": org.slug,
                    "api_key": issued.api_key,
                    "client_id": issued.api_client.client_id,
                    "client_secret": issued.client_secret,
                    "access_token": conn.access_token,
                    "access_token_reference_id": conn.connection.access_token_reference_id,
                    "emr_connection_id": str(conn.connection.id),
                    "emr_vendor": conn.connection.vendor,
                    **({"emr_public_jwks": public_jwks} if public_jwks else {}),
                }
            )
        )
