"""Secrets at rest (EMR credentials, calendar passwords): Fernet with rotatable keys.

``FIELD_ENCRYPTION_KEYS`` lists Fernet keys; the first encrypts and all decrypt, so a key is
rotated by putting a new one first and running ``manage.py rotate_encryption_keys``. With no keys
configured, one is derived from ``SECRET_KEY``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class DecryptionError(Exception):
    pass


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not keys:
        derived = base64.urlsafe_b64encode(hashlib.sha256(f"field-encryption:{secret_key}".encode()).digest())
        return MultiFernet([Fernet(derived)])
    return MultiFernet([Fernet(key.encode()) for key in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt_text(value: str) -> str:
    if not value:
        return ""
    return _current().encrypt(value.encode()).decode()


def decrypt_text(token: str) -> str:
    if not token:
        return ""
    try:
        return _current().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("Stored secret cannot be decrypted with the configured keys.") from exc


def encrypt_json(value: dict) -> str:
    return encrypt_text(json.dumps(value)) if value else ""


def decrypt_json(token: str) -> dict:
    return json.loads(decrypt_text(token)) if token else {}


def reencrypt(token: str) -> str:
    """The same secret under the current first key."""
    return _current().rotate(token.encode()).decode() if token else ""
