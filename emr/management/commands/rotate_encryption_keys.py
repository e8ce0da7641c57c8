"""Re-encrypt every stored secret under the first of ``FIELD_ENCRYPTION_KEYS``.

Rotation: put a new key first in ``FIELD_ENCRYPTION_KEYS`` (keep the old ones after it), deploy,
run this command, then remove the old keys. Every model field named ``*_encrypted`` is covered
(EMR connection credentials, external calendar passwords, and any added later).
"""

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import models, transaction

from tenants.crypto import reencrypt

BATCH = 500


def encrypted_fields() -> list[tuple[type[models.Model], str]]:
    return [
        (model, field.name)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if field.name.endswith("_encrypted") and isinstance(field, models.TextField)
    ]


class Command(BaseCommand):
    help = "Re-encrypt stored secrets under the first FIELD_ENCRYPTION_KEYS key (run after adding a new key first)."

    def handle(self, *args, **options):
        from cryptography.fernet import InvalidToken

        total = 0
        failures = []
        with transaction.atomic():
            for model, name in encrypted_fields():
                changed = []
                for pk, token in model._default_manager.exclude(**{name: ""}).values_list("pk", name).iterator():
                    try:
                        changed.append(model(pk=pk, **{name: reencrypt(token)}))
                    except InvalidToken:
                        failures.append(f"{model._meta.label} {pk}")
                model._default_manager.bulk_update(changed, [name], batch_size=BATCH)
                total += len(changed)
                self.stdout.write(f"{model._meta.label}.{name}: {len(changed)} re-encrypted")
            if failures:
                raise CommandError(
                    "These secrets cannot be decrypted with any configured key (nothing was changed): "
                    + ", ".join(failures[:20])
                    + (" …" if len(failures) > 20 else "")
                )
        self.stdout.write(self.style.SUCCESS(f"{total} secret(s) now encrypted under the first key."))
