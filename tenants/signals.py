"""Writes that change a credential make the shared cache forget it (``tenants.shared_cache``).

Revocation and rotation go through ``tenants.services``, which forgets the key itself (they are
queryset updates, which send no signal); these receivers cover every save and delete of an API
client or an organization (the admin's included): a deactivated organization's keys stop at once.
"""

from __future__ import annotations

from django.db import connection
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from tenants.api.auth import api_keys_forget
from tenants.models import ApiClient, Organization


def _clients_locked(clients):
    """Inside a transaction, the rows locked until it ends, so a rotation cannot commit a key this
    write never forgets (``tenants.services._api_key_lookups``); outside one, the write has
    committed already and any later rotation forgets its own old key."""
    return clients.select_for_update() if connection.in_atomic_block else clients


@receiver(pre_save, sender=ApiClient, dispatch_uid="tenants.api_client_key_forget_before")
def _api_client_changing(sender, instance: ApiClient, raw=False, **kwargs):
    if raw or instance._state.adding:
        return
    # The key it had: a save may be replacing it.
    old = _clients_locked(ApiClient.objects.filter(pk=instance.pk)).values_list("api_key_lookup", flat=True).first()
    api_keys_forget([old, instance.api_key_lookup])


@receiver(post_delete, sender=ApiClient, dispatch_uid="tenants.api_client_key_forget_deleted")
def _api_client_deleted(sender, instance: ApiClient, **kwargs):
    api_keys_forget([instance.api_key_lookup])


@receiver(post_save, sender=Organization, dispatch_uid="tenants.organization_keys_forget")
def _organization_saved(sender, instance: Organization, created=False, raw=False, **kwargs):
    if raw or created:
        return
    api_keys_forget(_clients_locked(ApiClient.objects.filter(organization=instance)).values_list("api_key_lookup", flat=True))
