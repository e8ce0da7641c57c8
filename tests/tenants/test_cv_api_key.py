"""``cv-api-key`` authentication (the provider directory family): the API client's key in that
header resolves to its organization; unknown and revoked keys are refused; its absence leaves
the request to other schemes."""

from __future__ import annotations

import pytest
from rest_framework import exceptions
from rest_framework.test import APIRequestFactory

from tenants.api.auth import CvApiKeyAuthentication
from tenants.models import ApiClient
from tenants.services import api_client_revoke, api_client_rotate_key

factory = APIRequestFactory()


def authenticate(**headers):
    from rest_framework.request import Request

    request = Request(factory.get("/api/v1/provider-availability", **headers))
    return CvApiKeyAuthentication().authenticate(request)


def test_the_key_names_its_organization_and_records_use(tenant, other_tenant):
    principal, client = authenticate(HTTP_CV_API_KEY=tenant.api_key)
    assert principal.organization == tenant.organization and principal.api_client == tenant.api_client
    assert client.pk == tenant.api_client.pk
    assert ApiClient.objects.get(pk=tenant.api_client.pk).last_used_at is not None
    assert authenticate(HTTP_CV_API_KEY=other_tenant.api_key)[0].organization == other_tenant.organization


def test_no_header_is_left_to_other_schemes(tenant):
    assert authenticate() is None
    assert authenticate(HTTP_X_API_KEY=tenant.api_key) is None  # the other family's header is not this one


@pytest.mark.parametrize("value", ["sk_unknown", "", "x" * 5000, None], ids=["unknown", "empty", "huge", "other-secret"])
def test_unknown_keys_are_refused(tenant, value):
    value = tenant.client_secret if value is None else value  # a real secret of another kind is no key
    with pytest.raises(exceptions.AuthenticationFailed):
        authenticate(HTTP_CV_API_KEY=value)


def test_revoked_and_rotated_keys_are_refused(tenant):
    old = tenant.api_key
    new = api_client_rotate_key(api_client=tenant.api_client)
    with pytest.raises(exceptions.AuthenticationFailed):
        authenticate(HTTP_CV_API_KEY=old)
    assert authenticate(HTTP_CV_API_KEY=new)[0].organization == tenant.organization
    api_client_revoke(api_client=ApiClient.objects.get(pk=tenant.api_client.pk))
    with pytest.raises(exceptions.AuthenticationFailed):
        authenticate(HTTP_CV_API_KEY=new)
