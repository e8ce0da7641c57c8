"""``/v1/`` authentication: ``client_id`` + ``client_secret`` name an API client, ``access_token``
one EMR connection of its organization."""

from __future__ import annotations

from rest_framework import exceptions

from emr.models import EmrConnection
from tenants.api.auth import CredentialAuthentication, Principal, api_client_by_secret, request_header, touch_last_used
from tenants.credentials import secret_lookup, secret_matches


class EmrCredentialsAuthentication(CredentialAuthentication):
    """``client_id`` + ``client_secret`` + ``access_token`` headers (the ``/v1/`` family).

    Hyphenated spellings are accepted too. The access token names one EMR connection of the
    client's organization.
    """

    scheme = "ClientCredentials"

    def authenticate(self, request):
        client_id = request_header(request, "client_id")
        client_secret = request_header(request, "client_secret")
        access_token = request_header(request, "access_token")
        if not (client_id or client_secret or access_token):
            return None
        if not (client_id and client_secret and access_token):
            raise exceptions.AuthenticationFailed("Missing client_id, client_secret or access_token header.")
        client = api_client_by_secret(client_id, client_secret)
        lookup = secret_lookup("tok", access_token)
        connection = None
        if client is not None and lookup is not None:
            connection = EmrConnection.objects.filter(
                organization=client.organization, access_token_lookup=lookup, is_active=True
            ).first()
        if connection is None or not secret_matches(access_token, connection.access_token_hash):
            raise exceptions.AuthenticationFailed("Invalid client credentials or access token.")
        connection.organization = client.organization  # the row it was filtered by: views read it without a query
        touch_last_used(client)
        return Principal(organization=client.organization, api_client=client, emr_connection=connection), connection
