from django.apps import AppConfig


class EmrConfig(AppConfig):
    name = "emr"
    verbose_name = "EMR integration"

    def ready(self):
        from emr.services.calendly import calendly_jobs_register

        calendly_jobs_register()
