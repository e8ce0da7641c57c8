from django.apps import AppConfig


class EmrConfig(AppConfig):
    name = "emr"
    verbose_name = "EMR integration"

    def ready(self):
        # Job kinds register their runners with ``job_run`` (workers and the admin's retry).
        from emr.services import availability_fetch  # noqa: F401
        from emr.services.calendly import calendly_jobs_register

        calendly_jobs_register()

        from emr.selectors import jobs_started_between
        from tenants.webhooks.selectors import monitoring_jobs_register

        monitoring_jobs_register(jobs_started_between)
