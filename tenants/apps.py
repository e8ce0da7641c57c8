from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_migrate


def _webhook_schedule_ensure(sender, using="default", **kwargs):
    """After every migrate (and test-database flush): the periodic delivery sweep exists."""
    from django.db import connections

    if "django_q_schedule" not in connections[using].introspection.table_names():
        return
    from tenants.webhooks.services import webhook_schedule_ensure

    webhook_schedule_ensure(using=using)


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Organizations and access"

    def ready(self):
        from tenants import signals  # noqa: F401 - connects the credential cache's receivers
        from tenants.webhooks.checks import webhook_settings_check

        checks.register(webhook_settings_check)
        post_migrate.connect(_webhook_schedule_ensure, sender=self, dispatch_uid="tenants.webhook_schedule_ensure")
