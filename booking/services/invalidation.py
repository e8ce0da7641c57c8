from django.db.models import F

from tenants.models import Organization


def availability_invalidate(*, organization_id) -> None:
    """Rule 12: make every cached availability answer of the organization unreachable.

    Bumps the organization's ``availability_version``, which is part of every cache key. Called
    as the LAST statement of a write's transaction, so the new version becomes visible in the same
    commit as the data it covers (no window where new data hides behind an old key), before the
    write's response is sent, and across processes and machines (the version lives in the database).
    """
    Organization.objects.filter(pk=organization_id).update(availability_version=F("availability_version") + 1)
