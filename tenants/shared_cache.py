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
  write: with ``REDIS_URL`` Redis is a hard dependency already (rate limits count in it). An
  entry is headed by the key's SHA-256, whether its organization is active and which organization
  it is, so Lua can check it too.
- **The organization's data generation** (``generation_read``), the part of every availability
  cache key that a write changes (rule 12), instead of the database's ``availability_version``
  (which would cost a query per request). A write marks itself *pending* before it commits
  (``generation_pending``) and replaces the generation with a fresh random one after
  (``generation_rotate``); while any write is pending, readers get None and neither read nor
  write cached answers. A pending mark that outlives ``PENDING_SECONDS`` (its writer died, or
  Redis failed it after the commit) is dropped by the next reader, which rotates the generation
  itself. A lost hash (eviction, flush) starts a fresh random generation, so no answer stored
  before can be reached again.
- **The express read** (``express_read``, for ``booking.api.express``): one transaction that
  accepts an API key, reads the generation, checks a stored answer and counts the request in its
  rate-limit window, all in Redis. It stays exact because it reads the same things the usual path
  reads, in the same Redis: a revoked or rotated key, or a deactivated organization, has its entry
  replaced by a tombstone before the write commits, so the next check fails and the request goes
  the usual way (a 401); a new entry carries the presented key's hash, which must match; the
  answer is served only under the current generation; the ``used`` key must show the last use
  recorded within ``LAST_USED_RESOLUTION``, else the usual path records it; and the count uses the
  rate limiter's own key, increment and expiry, so both paths share one window. Any check that
  fails counts nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import NoScriptError

REDIS_BACKENDS = ("django_redis.cache.RedisCache",)
LEASE_SECONDS = 30  # longer than any credential read takes
TOMBSTONE_SECONDS = 600  # longer than any request in flight when the credential changed
CREDENTIAL_SECONDS = 3600
PENDING_SECONDS = 120  # longer than any write transaction

_TOMBSTONE = b"T"
_LEASE = b"L:"
_ENTRY = b"E:"  # then the pickled client: the entries of earlier versions, still read
# Then the SHA-256 of the key (64 hex digits), 1 or 0 for an active or inactive organization, a
# colon, the organization's id, a colon and the pickled client: the header is what
# ``express_read`` checks without Python. The organization is in it because a client can be moved
# to another one (the admin allows it): a worker that knew it under the old one must not serve it
# that organization's answers once its entry is filled anew.
_HEADED_ENTRY = b"O:"
_FIXED_HEADER = len(_HEADED_ENTRY) + 64 + 2  # then the organization's id and a colon

# KEYS[1]; ARGV: expected value, new value, seconds. Stores only over the expected value.
_COMPARE_AND_SET = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""

# The organization's generation in its hash ``key``; ``fresh`` becomes it when the hash has none or
# a pending mark has expired. Answers false while a write is pending.
_GENERATION_FUNCTION = """
local function generation_of(key, fresh)
  local now = tonumber(redis.call('TIME')[1])
  local fields = redis.call('HGETALL', key)
  local generation, live, expired = nil, 0, 0
  for i = 1, #fields, 2 do
    local name, value = fields[i], fields[i + 1]
    if name == 'g' then
      generation = value
    elseif string.sub(name, 1, 2) == 'p:' then
      if tonumber(value) <= now then
        redis.call('HDEL', key, name)
        expired = expired + 1
      else
        live = live + 1
      end
    end
  end
  if generation == nil or expired > 0 then
    generation = fresh
    redis.call('HSET', key, 'g', generation)
  end
  if live > 0 then
    return false
  end
  return generation
end
"""

# KEYS[1] the organization's hash; ARGV[1] a fresh generation.
_GENERATION_READ = _GENERATION_FUNCTION + "return generation_of(KEYS[1], ARGV[1])"

# KEYS: the credential, its ``used`` key, the organization's generation hash, the rate-limit window
# (any key when there is no limit), the answer. ARGV: the SHA-256 of the presented key, the
# earliest last use that needs no new record, a fresh generation, now (epoch seconds, rounded
# up), the limit (0: none), the window's seconds, the organization the caller takes the key for. The answer starts with the generation it was
# computed under, then ``<firstAvailable 0|1>:<slots>:<first start>:``; only that head is read
# here (a long string through Lua costs more than the round trip). An answer of an older
# generation is deleted: no request can be served it again, and the read that follows this script
# in its transaction then carries nothing back. Answers 1 once the request is counted against the
# limit, else 0 with nothing counted.
_EXPRESS_CHECK = _GENERATION_FUNCTION + """
local entry = redis.call('GET', KEYS[1])
if not entry or string.sub(entry, 1, 2) ~= 'O:' or string.sub(entry, 3, 66) ~= ARGV[1]
    or string.sub(entry, 67, 68) ~= '1:' then
  return 0
end
local organization_end = string.find(entry, ':', 69, true)
if not organization_end or string.sub(entry, 69, organization_end - 1) ~= ARGV[7] then
  return 0
end
local used = redis.call('GET', KEYS[2])
if not used or tonumber(used) < tonumber(ARGV[2]) then
  return 0
end
local generation = generation_of(KEYS[3], ARGV[3])
if not generation then
  return 0
end
local head = redis.call('GETRANGE', KEYS[5], 0, 127)
local stored, first_available, count, first = string.match(head, '^([^:]*):([01]):(%d+):(%d+):')
if stored ~= generation then
  if stored then
    redis.call('UNLINK', KEYS[5])  -- unreachable for good (freed off the main thread); the read queued after this finds nothing
  end
  return 0
end
if first_available == '1' and tonumber(count) > 0 and tonumber(first) < tonumber(ARGV[4]) then
  return 0
end
local limit = tonumber(ARGV[5])
if limit > 0 then
  if tonumber(redis.call('GET', KEYS[4]) or '0') >= limit then
    return 0
  end
  if redis.call('INCRBY', KEYS[4], 1) == 1 then
    redis.call('EXPIRE', KEYS[4], ARGV[6])
  end
end
return 1
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
    if value is not None and value.startswith(_HEADED_ENTRY):
        read.entry = value[value.index(b":", _FIXED_HEADER) + 1 :]
    elif value is not None and value.startswith(_ENTRY):
        read.entry = value[len(_ENTRY) :]
    elif value is None:
        lease = _LEASE + _token().encode()
        if client.set(key, lease, nx=True, ex=LEASE_SECONDS):
            read.lease = lease.decode()
    return read


def credential_fill(
    client, key: str, lease: str, entry: bytes, *, secret_hash: str, active: bool, organization_id
) -> bool:
    """Store ``entry`` if this reader's lease is still there (no tombstone, no eviction since),
    headed by the credential's stored hash, whether its organization is active, and which it is."""
    if len(secret_hash) != 64:
        raise ValueError("secret_hash must be a SHA-256 hex digest")
    organization = str(organization_id).encode()
    if b":" in organization:
        raise ValueError("an organization id must not hold a colon")
    value = _HEADED_ENTRY + secret_hash.encode() + (b"1:" if active else b"0:") + organization + b":" + entry
    return bool(_script(client, _COMPARE_AND_SET)(keys=[key], args=[lease, value, CREDENTIAL_SECONDS]))


def credential_tombstone(client, keys: list[str]) -> None:
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.set(key, _TOMBSTONE, ex=TOMBSTONE_SECONDS)
        pipe.execute()


def used_key(kind: str, lookup: str) -> str:
    """Where the last use of the credential is kept (``tenants.api.auth.api_client_touch``)."""
    return _key(f"credential:used:{kind}:{lookup}")


# --- the express read -------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpressRequest:
    """What ``express_read`` checks and reads, as keys and values (see ``_EXPRESS_CHECK``)."""

    credential: str  # ``credential_key``
    secret_hash: str  # the SHA-256 of the presented secret, hex
    used: str  # ``used_key``
    used_since: float  # a last use before this (epoch seconds) is due a new record
    organization_id: object
    answer: str  # the answer's key
    now: int  # epoch seconds, rounded up
    window: str = ""  # the rate-limit window's key ("" with ``limit`` 0: no limit)
    limit: int = 0
    period: int = 0


def express_read(client, request: ExpressRequest) -> bytes | None:
    """A stored answer and everything that lets it be served, in one round trip: the credential is
    a live entry (not a lease or a tombstone) for exactly this secret, of an active organization,
    whose last use needs no new record; no write to the organization is pending; the answer was
    stored under its current generation; then the request is counted in its rate-limit window as
    ``limits``' fixed window counts it. None, with nothing counted, when any of it fails: the
    caller then takes its usual path, which decides (and counts) as always.

    The check and the read of the answer are one transaction (``MULTI``/``EXEC``), so the answer
    read is the one checked. The script is called by its digest, loaded when Redis lacks it (a
    pipeline's own script handling would ask Redis first on every call)."""
    script = _script(client, _EXPRESS_CHECK)
    keys = [request.credential, request.used, _generation_key(request.organization_id), request.window or request.used,
            request.answer]
    args = [request.secret_hash, repr(request.used_since), _token(), request.now, request.limit, request.period,
            str(request.organization_id)]
    for attempt in (1, 2):
        try:
            with client.pipeline(transaction=True) as pipe:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
                pipe.get(request.answer)
                checked, answer = pipe.execute()
        except NoScriptError:
            if attempt == 2:
                raise
            client.script_load(_EXPRESS_CHECK)
            continue
        return answer if checked == 1 and answer is not None else None
    return None


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
