"""EMR services, by sub-domain: ``connections`` (connections, credentials, keys, health),
``appointments`` (the bulk upsert into the appointment cache), ``live_fetch`` (jobs and events),
``providers`` (the provider/location sync and ``/v1/`` management), ``demo`` (``demo_sync``)."""

from emr.services.connections import (  # noqa: F401
    IssuedConnection,
    connection_adapter,
    connection_config,
    emr_connection_access_token_rotate,
    emr_connection_create,
    emr_connection_credentials,
    emr_connection_credentials_update,
    emr_connection_keypair_ensure,
    sandbox_base_url,
    sandbox_client_ensure,
)


def demo_sync(*, organization, run_now: bool = False, days: int = 7):
    """See ``emr.services.demo.demo_sync``."""
    from emr.services.demo import demo_sync as run

    return run(organization=organization, run_now=run_now, days=days)
