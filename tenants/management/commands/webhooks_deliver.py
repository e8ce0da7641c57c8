"""Send the webhook deliveries that are due now (retries, stalled ones), without a task cluster.

The every-minute django-q2 schedule does the same; this is for operations (drain a backlog by
hand, run from cron where no cluster runs) and it is safe beside running workers.
"""

from django.core.management.base import BaseCommand

from tenants.webhooks.services import deliveries_due_count, deliveries_process_due


class Command(BaseCommand):
    help = "Attempt every webhook delivery that is due now."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=None, help="Stop after this many attempts.")
        parser.add_argument("--budget", type=float, default=None, help="Stop after this many seconds.")

    def handle(self, *args, limit=None, budget=None, **options):
        done = deliveries_process_due(limit=limit, budget_seconds=budget)
        self.stdout.write(f"attempted {done} delivery(ies); {deliveries_due_count()} still due")
