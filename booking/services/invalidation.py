import logging

from django.db import transaction
from django.db.models import F

from tenants.models import Organization
from tenants.shared_cache import generation_pending, generation_rotate, shared_redis

logger = logging.getLogger(__name__)


def availability_invalidate(*, organization_id) -> None:
    """Rule 12: make every cached availability answer of the organization unreachable.

    Bumps the organization's ``availability_version``, which is part of every cache key. Called
    as the LAST statement of a write's transaction, so the new version becomes visible in the same
    commit as the data it covers (no window where new data hides behind an old key), before the
    write's response is sent, and across processes and machines (the version lives in the database).

    With a Redis cache the keys carry the organization's generation in Redis instead (read without
    a query, ``tenants.shared_cache``): the write marks itself pending there first (answers are
    then neither read from nor stored in the cache), and a fresh generation replaces the old one
    once it has committed.
    """
    client = shared_redis()
    token = generation_pending(client, organization_id) if client is not None else None
    Organization.objects.filter(pk=organization_id).update(availability_version=F("availability_version") + 1)
    if client is not None:
        transaction.on_commit(lambda: generation_rotate(client, organization_id, token), robust=True)
