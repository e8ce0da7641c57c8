from django.apps import AppConfig
from django.core import checks


class ProjectConfig(AppConfig):
    name = "config"
    label = "config"
    verbose_name = "Project settings"

    def ready(self):
        from config.checks import calendly_settings_check, generated_secret_check, outbound_networks_check

        checks.register(generated_secret_check, checks.Tags.security)
        checks.register(outbound_networks_check, checks.Tags.security)
        checks.register(calendly_settings_check)
