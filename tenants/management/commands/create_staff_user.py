"""``manage.py create_staff_user``: a clinic staff login with one role in one organization."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.models import Membership, Organization
from tenants.services import staff_member_set


class Command(BaseCommand):
    help = (
        "Create a staff user with a role in an organization, add the membership to an existing user, "
        "or change an existing membership's role."
    )

    def add_arguments(self, parser):
        parser.add_argument("--organization", required=True, help="Organization id.")
        parser.add_argument("--username", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--role", required=True, help=f"One of: {', '.join(Membership.Role.values)}.")

    def handle(self, *args, **options):
        role = options["role"].strip().lower()
        if role not in Membership.Role.values:
            raise CommandError(f"Unknown role {options['role']!r}; known: {', '.join(Membership.Role.values)}.")
        try:
            organization = Organization.objects.filter(pk=options["organization"].strip()).first()
        except (ValueError, ValidationError):
            organization = None
        if organization is None:
            raise CommandError(f"No organization with id {options['organization']!r}.")
        try:
            result = staff_member_set(
                organization=organization, username=options["username"], password=options["password"], role=role
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        user = result.membership.user
        if result.membership_created:
            what = "Created" if result.user_created else "Added"
            self.stdout.write(f"{what} {user.username}: {role} of {organization.name}.")
        elif result.previous_role != role:
            self.stdout.write(f"{user.username}: {result.previous_role} → {role} of {organization.name}.")
        else:
            self.stdout.write(f"{user.username} is already {role} of {organization.name}.")
