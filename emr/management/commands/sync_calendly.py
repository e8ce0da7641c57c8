import json

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from emr.management.commands.connect_calendly import organization_get
from emr.models import CalendlyConnection, Job
from emr.services.live_fetch import job_run


class Command(BaseCommand):
    help = (
        "Sync the organization's Calendly users and event types now, in this process, as a job "
        "(shown in the admin like any other). Prints the job as JSON; exits 1 when it failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--organization", required=True, help="Organization id.")

    def handle(self, *args, **options):
        organization = organization_get(options["organization"])
        connection = CalendlyConnection.objects.filter(organization=organization).first()
        if connection is None:
            raise CommandError("The organization has no Calendly connection: run connect_calendly first.")
        with transaction.atomic():
            job = Job.objects.create(organization=organization, calendly_connection=connection,
                                     kind=Job.Kind.CALENDLY_SYNC, params={})
        job = job_run(job_id=job.pk)
        self.stdout.write(json.dumps({"job_id": job.pk, "status": job.status, "counts": job.counts, "error": job.error}))
        if job.status != Job.Status.SUCCEEDED:
            raise CommandError(f"Calendly sync failed: {job.error}")
