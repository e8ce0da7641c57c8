"""Writes that change a credential make the shared cache forget it (``tenants.shared_cache``).

Revocation and rotation go through ``tenants.services``, which forgets the key itself (they are
queryset updates, which send no signal); these receivers cover every save and delete of an API
client or an organization (the admin's included): a deactivated organization's keys stop at once.
"""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from tenants.api.auth import api_key_lookups_locked, api_keys_forget
from tenants.models import ApiClient, Organization


@receiver(pre_save, sender=ApiClient, dispatch_uid="tenants.api_client_key_forget_before")
def _api_client_changing(sender, instance: ApiClient, raw=False, **kwargs):
    if raw or instance._state.adding:
        return
    # The key it had: a save may be replacing it.
    api_keys_forget([*api_key_lookups_locked(ApiClient.objects.filter(pk=instance.pk)), instance.api_key_lookup])


@receiver(post_delete, sender=ApiClient, dispatch_uid="tenants.api_client_key_forget_deleted")
def _api_client_deleted(sender, instance: ApiClient, **kwargs):
    api_keys_forget([instance.api_key_lookup])


@receiver(post_save, sender=Organization, dispatch_uid="tenants.organization_keys_forget")
def _organization_saved(sender, instance: Organization, created=False, raw=False, **kwargs):
    if raw or created:
        return
    api_keys_forget(api_key_lookups_locked(ApiClient.objects.filter(organization=instance)))
