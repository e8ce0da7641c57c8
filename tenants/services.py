"""Writes for organizations and their credentials."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from tenants.api.auth import api_key_lookups_locked, api_keys_forget
from tenants.credentials import public_id_new, secret_new
from tenants.models import ApiClient, Membership, OAuthToken, Organization, default_hours


@dataclass(frozen=True)
class IssuedApiClient:
    api_client: ApiClient
    client_secret: str  # shown once
    api_key: str  # shown once


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int


def _unique_slug(name: str) -> str:
    base = slugify(name)[:80] or "organization"
    slug, n = base, 2
    while Organization.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def organization_create(*, name: str, timezone_name: str = "UTC", slug: str | None = None) -> Organization:
    org = Organization(name=name, slug=slug or _unique_slug(name), timezone=timezone_name, default_hours=default_hours())
    org.full_clean()
    org.save()
    return org


def api_client_create(*, organization: Organization, name: str = "API client") -> IssuedApiClient:
    secret = secret_new("cs")
    key = secret_new("sk")
    client = ApiClient.objects.create(
        organization=organization,
        name=name,
        client_id=public_id_new("cli"),
        client_secret_lookup=secret.lookup,
        client_secret_hash=secret.hash,
        api_key_lookup=key.lookup,
        api_key_hash=key.hash,
    )
    return IssuedApiClient(api_client=client, client_secret=secret.value, api_key=key.value)


def api_client_revoke(*, api_client: ApiClient) -> None:
    """Revoke the client: its key and tokens stop working at once, in every worker."""
    with transaction.atomic():
        api_keys_forget(api_key_lookups_locked(ApiClient.objects.filter(pk=api_client.pk)))
        ApiClient.objects.filter(pk=api_client.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        OAuthToken.objects.filter(api_client=api_client).delete()


def api_client_rotate_key(*, api_client: ApiClient) -> str:
    """A new API key for the client; the old one stops working at once, in every worker."""
    key = secret_new("sk")
    with transaction.atomic():
        api_keys_forget(api_key_lookups_locked(ApiClient.objects.filter(pk=api_client.pk)))
        ApiClient.objects.filter(pk=api_client.pk).update(api_key_lookup=key.lookup, api_key_hash=key.hash)
    return key.value


def oauth_token_issue(*, api_client: ApiClient) -> IssuedToken:
    token = secret_new("at")
    OAuthToken.objects.filter(api_client=api_client, expires_at__lte=timezone.now()).delete()
    OAuthToken.objects.create(
        api_client=api_client, lookup=token.lookup, token_hash=token.hash, expires_at=OAuthToken.expiry_from_now()
    )
    from django.conf import settings

    return IssuedToken(access_token=token.value, expires_in=settings.API_TOKEN_TTL_SECONDS)


@dataclass(frozen=True)
class StaffMembership:
    membership: Membership
    user_created: bool
    membership_created: bool
    previous_role: str | None  # the role it had before, when it existed


def staff_member_set(*, organization: Organization, username: str, password: str, role: str) -> StaffMembership:
    """A staff user with ``role`` in ``organization``: creates the user (staff, active, with
    ``password``), or adds the membership to an existing one (made staff; its password is left as
    it is), or changes an existing membership's role. Raises ``ValueError`` (nothing written) for an
    empty name or password or an unknown role."""
    username = (username or "").strip()
    if not username:
        raise ValueError("The username must not be empty.")
    if not password:
        raise ValueError("The password must not be empty.")
    if role not in Membership.Role.values:
        raise ValueError(f"Unknown role {role!r}; known: {', '.join(Membership.Role.values)}.")
    User = get_user_model()
    with transaction.atomic():
        user = User.objects.filter(username=username).first()
        user_created = user is None
        if user_created:
            user = User.objects.create_user(username=username, password=password, is_staff=True, is_active=True)
        elif not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        membership = Membership.objects.filter(user=user, organization=organization).first()
        previous = membership.role if membership else None
        if membership is None:
            membership = Membership.objects.create(user=user, organization=organization, role=role)
        elif membership.role != role:
            membership.role = role
            membership.save(update_fields=["role", "updated_at"])
    return StaffMembership(membership, user_created, previous is None, previous)
