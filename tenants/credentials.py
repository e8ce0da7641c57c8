"""Secrets handed to API clients: generated once, shown once, stored only as SHA-256 hashes.

A secret is ``<kind>_<lookup><secret>``: the 12-character lookup part is stored in clear and
indexed so a credential is found without scanning; the whole string is hashed and compared in
constant time. The secrets are 256-bit random values, so a fast hash is the right tool (a slow
password hash would only add latency to every API call).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

LOOKUP_LENGTH = 12
_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class NewSecret:
    value: str  # shown to the client once
    lookup: str  # stored in clear, indexed
    hash: str  # stored


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def secret_new(kind: str) -> NewSecret:
    lookup = "".join(secrets.choice(_ALPHABET) for _ in range(LOOKUP_LENGTH))
    value = f"{kind}_{lookup}{secrets.token_urlsafe(32)}"
    return NewSecret(value=value, lookup=lookup, hash=hash_secret(value))


def secret_lookup(kind: str, value: str) -> str | None:
    """The lookup part of a presented secret, or None when it cannot be one of ours."""
    prefix = f"{kind}_"
    if not value.startswith(prefix) or len(value) < len(prefix) + LOOKUP_LENGTH + 16 or len(value) > 200:
        return None
    lookup = value[len(prefix) : len(prefix) + LOOKUP_LENGTH]
    if any(ch not in _ALPHABET for ch in lookup):
        return None
    return lookup


def secret_matches(value: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(value), stored_hash)


def public_id_new(kind: str) -> str:
    """A non-secret identifier (``client_id``, ``evt_…``, ``job_…``)."""
    return f"{kind}_{secrets.token_hex(12)}"
