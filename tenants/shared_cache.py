"""What may be cached only in a cache every web worker shares (Redis), and how it stays exact.

Two things are kept here, each only when the default cache is Redis (``shared_redis``); with a
per-process cache (the embedded default's local memory) nothing is cached and the callers read
the database, so a revocation or a write seen by one process is seen by all.

- **Credentials** (``tenants.api.auth``): an entry per secret lookup. A reader that finds no entry
  takes a *lease* (``SET NX``) before it reads the database, and stores what it read only if its
  lease is still there (``credential_fill``: a compare-and-set). A write that changes a credential
  (revocation, rotation, any save or delete of the client or its organization) puts a *tombstone*
  over the entry before its transaction commits and again after (``credential_forget``): a reader
  that read the database before the commit then finds its lease gone and stores nothing, and a
  reader after the tombstone reads the database. An evicted lease is just as gone, so an eviction
  can never let a stale read in. The pre-commit tombstone failing (Redis unreachable) fails the
  write: with ``REDIS_URL`` Redis is a hard dependency already (rate limits count in it).
- **The organization's data generation** (``generation_read``), the part of every availability
  cache key that a write changes (rule 12), instead of the database's ``availability_version``
  (which would cost a query per request). A write marks itself *pending* before it commits
  (``generation_pending``) and replaces the generation with a fresh random one after
  (``generation_rotate``); while any write is pending, readers get None and neither read nor
  write cached answers. A pending mark that outlives ``PENDING_SECONDS`` (its writer died, or
  Redis failed it after the commit) is dropped by the next reader, which rotates the generation
  itself. A lost hash (eviction, flush) starts a fresh random generation, so no answer stored
  before can be reached again.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

REDIS_BACKENDS = ("django_redis.cache.RedisCache",)
LEASE_SECONDS = 30  # longer than any credential read takes
TOMBSTONE_SECONDS = 600  # longer than any request in flight when the credential changed
CREDENTIAL_SECONDS = 3600
PENDING_SECONDS = 120  # longer than any write transaction

_TOMBSTONE = b"T"
_LEASE = b"L:"
_ENTRY = b"E:"

# KEYS[1]; ARGV: expected value, new value, seconds. Stores only over the expected value.
_COMPARE_AND_SET = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""

# KEYS[1] the organization's hash; ARGV[1] a fresh generation, used when it has none or a pending
# mark has expired. Answers the generation, or false while a write is pending.
_GENERATION_READ = """
local now = tonumber(redis.call('TIME')[1])
local fields = redis.call('HGETALL', KEYS[1])
local generation, live, expired = nil, 0, 0
for i = 1, #fields, 2 do
  local name, value = fields[i], fields[i + 1]
  if name == 'g' then
    generation = value
  elseif string.sub(name, 1, 2) == 'p:' then
    if tonumber(value) <= now then
      redis.call('HDEL', KEYS[1], name)
      expired = expired + 1
    else
      live = live + 1
    end
  end
end
if generation == nil or expired > 0 then
  generation = ARGV[1]
  redis.call('HSET', KEYS[1], 'g', generation)
end
if live > 0 then
  return false
end
return generation
"""

# KEYS[1]; ARGV: the writer's token, seconds.
_GENERATION_PENDING = """
local now = tonumber(redis.call('TIME')[1])
redis.call('HSET', KEYS[1], 'p:' .. ARGV[1], now + tonumber(ARGV[2]))
return 1
"""

# KEYS[1]; ARGV: the writer's token, a fresh generation.
_GENERATION_ROTATE = """
redis.call('HDEL', KEYS[1], 'p:' .. ARGV[1])
redis.call('HSET', KEYS[1], 'g', ARGV[2])
return 1
"""


def shared_redis():
    """The raw Redis client behind the default cache, or None when that cache is not Redis (then it
    is not shared between processes)."""
    if settings.CACHES.get("default", {}).get("BACKEND") not in REDIS_BACKENDS:
        return None
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def _script(client, source: str):
    scripts = client.__dict__.setdefault("_shared_cache_scripts", {})
    if source not in scripts:
        scripts[source] = client.register_script(source)
    return scripts[source]


def _key(name: str) -> str:
    return cache.make_key(name)


def _token() -> str:
    return secrets.token_hex(12)


# --- credentials -------------------------------------------------------------------------------


def credential_key(kind: str, lookup: str) -> str:
    return _key(f"credential:{kind}:{lookup}")


@dataclass
class CredentialRead:
    entry: bytes | None  # the stored entry (None when absent or tombstoned)
    lease: str | None  # else a lease this reader holds (None: another reader's, or a tombstone)
    used: bytes | None  # the value of the ``used`` key
    generation: str | None = None  # ``generation_read`` of the ``organization_id`` asked for
    generation_known: bool = False  # whether it was asked for


def credential_read(client, key: str, *, used: str, organization_id=None) -> CredentialRead:
    """The credential's entry and its last use, and when the caller knows the organization the
    key belongs to, its generation too: one round trip."""
    with client.pipeline(transaction=False) as pipe:
        pipe.mget([key, used])
        if organization_id is not None:
            _script(client, _GENERATION_READ)(keys=[_generation_key(organization_id)], args=[_token()], client=pipe)
        answers = pipe.execute()
    (value, last_used), generation = answers[0], (answers[1] if organization_id is not None else None)
    read = CredentialRead(None, None, last_used, generation.decode() if generation else None, organization_id is not None)
    if value is not None and value.startswith(_ENTRY):
        read.entry = value[len(_ENTRY) :]
    elif value is None:
        lease = _LEASE + _token().encode()
        if client.set(key, lease, nx=True, ex=LEASE_SECONDS):
            read.lease = lease.decode()
    return read


def credential_fill(client, key: str, lease: str, entry: bytes) -> bool:
    """Store ``entry`` if this reader's lease is still there (no tombstone, no eviction since)."""
    return bool(_script(client, _COMPARE_AND_SET)(keys=[key], args=[lease, _ENTRY + entry, CREDENTIAL_SECONDS]))


def credential_tombstone(client, keys: list[str]) -> None:
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.set(key, _TOMBSTONE, ex=TOMBSTONE_SECONDS)
        pipe.execute()


def used_key(kind: str, lookup: str) -> str:
    """Where the last use of the credential is kept (``tenants.api.auth.api_client_touch``)."""
    return _key(f"credential:used:{kind}:{lookup}")


# --- the organization's data generation --------------------------------------------------------


def _generation_key(organization_id) -> str:
    return _key(f"availability:generation:{organization_id}")


def generation_read(client, organization_id) -> str | None:
    value = _script(client, _GENERATION_READ)(keys=[_generation_key(organization_id)], args=[_token()])
    return value.decode() if value else None


def generation_pending(client, organization_id) -> str:
    token = _token()
    _script(client, _GENERATION_PENDING)(keys=[_generation_key(organization_id)], args=[token, PENDING_SECONDS])
    return token


def generation_rotate(client, organization_id, token: str) -> None:
    _script(client, _GENERATION_ROTATE)(keys=[_generation_key(organization_id)], args=[token, _token()])
