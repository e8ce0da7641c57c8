"""``GET /v3/availability`` answered from the cache in one Redis round trip, before DRF runs.

A repeated query (the same query string, byte for byte) with an API key this process has seen is
looked up by ``tenants.shared_cache.express_read``, which checks the credential and counts the
rate limit exactly as authentication and throttling would, and reads the answer stored under the
raw query string (``booking.availability.cache``). Whatever it cannot vouch for (an unknown key,
a refused one, a last use due its record, a pending write, no stored answer, a passed
``firstAvailable`` slot, the limit reached) returns None before anything is counted, and the
request takes the usual path, which answers it as it always did.

Nothing else about the request changes the answer: the query string is parsed the same way each
time, its checks (``refuse_unstorable``, the service's) depend on neither the clock nor headers,
``syncExternal`` answers are never stored this way, and only the ``Accept`` values that DRF answers
with JSON are served here.
"""

from __future__ import annotations

import logging
import math

from django.http import HttpResponse
from django.utils import timezone

from booking.availability.cache import availability_express_body, availability_express_key
from tenants.api.auth import api_key_express
from tenants.api.throttling import window_in_cache
from tenants.shared_cache import ExpressRequest, express_read, shared_redis

logger = logging.getLogger(__name__)

# ``Accept`` values DRF's negotiation answers with the JSON renderer (None: no header).
JSON_ACCEPTS = frozenset({None, "*/*", "application/json"})


def availability_express_get(request, *, scope: str) -> HttpResponse | None:
    """The cached answer to ``request`` (a Django request) with ``X-Cache: HIT``, counted in the
    rate limit of ``scope``; None, with nothing counted, for the usual path to answer."""
    meta = request.META
    value = meta.get("HTTP_X_API_KEY")
    if value is None or meta.get("HTTP_ACCEPT") not in JSON_ACCEPTS:
        return None
    client = shared_redis()
    if client is None:
        return None
    moment = timezone.now()
    credential = api_key_express(value.strip(), now=moment)
    if credential is None:
        return None
    window = window_in_cache(scope, credential.api_client_id)
    if window is None:
        return None
    now = math.ceil(moment.timestamp())
    try:
        entry = express_read(
            client,
            ExpressRequest(
                credential=credential.credential, secret_hash=credential.secret_hash, used=credential.used,
                used_since=credential.used_since, organization_id=credential.organization_id,
                answer=availability_express_key(
                    organization_id=credential.organization_id, query_string=meta.get("QUERY_STRING", "")
                ),
                now=now, window=window[0], limit=window[1], period=window[2],
            ),
        )
    except Exception:  # noqa: BLE001 - nothing was counted: the usual path decides
        logger.warning("express availability read failed", exc_info=True)
        return None
    if entry is None:
        return None
    try:
        body = availability_express_body(entry, now=now)
    except ValueError:  # a malformed entry (not one this code wrote): counted once more on the usual path
        logger.warning("express availability entry unreadable", exc_info=True)
        return None
    response = HttpResponse(body, content_type="application/json")
    response["X-Cache"] = "HIT"
    return response


def availability_express_key_of(request, *, organization_id) -> str | None:
    """Where a computed answer to ``request`` is also stored (``availability_cache_set``), with
    Redis; None without it. The caller leaves out ``syncExternal`` queries, whose every request
    syncs first."""
    if shared_redis() is None:
        return None
    return availability_express_key(organization_id=organization_id, query_string=request.META.get("QUERY_STRING", ""))
