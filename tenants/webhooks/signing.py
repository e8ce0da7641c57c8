"""Webhook secrets and signatures.

Standard Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``) through the
``standardwebhooks`` library: the signature is ``v1,<base64 HMAC-SHA256 of "<id>.<ts>.<body>">``
keyed with the base64-decoded part of the ``whsec_`` secret; during a rotation there is one such
signature per valid secret, space-separated, current secret first.

``cobalt-verification`` is the hex HMAC-SHA256 of the body keyed with the whole secret string
(``whsec_`` included) as UTF-8, which is what a client written against Cobalt computes. It is one
value, so it uses the current secret only; the overlap after a rotation is carried by
``webhook-signature``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def secret_generate() -> str:
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def signature_header(*, msg_id: str, timestamp: datetime, body: bytes, secrets: Sequence[str]) -> str:
    text = body.decode("utf-8")
    return " ".join(Webhook(secret).sign(msg_id=msg_id, timestamp=timestamp, data=text) for secret in secrets)


def cobalt_verification(*, body: bytes, secret: str) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def headers_build(*, event_id: str, body: bytes, secrets: Sequence[str], attempt: int, timestamp: datetime) -> dict[str, str]:
    """The headers of one attempt. ``secrets``: the valid secrets, current first; ``timestamp``:
    when the attempt is sent (whole seconds, so the header and the signed value agree)."""
    if not secrets:
        raise ValueError("at least one secret is needed to sign")
    timestamp = timestamp.astimezone(UTC).replace(microsecond=0)
    return {
        "content-type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature_header(msg_id=event_id, timestamp=timestamp, body=body, secrets=secrets),
        "webhook-attempt": str(attempt),
        "cobalt-verification": cobalt_verification(body=body, secret=secrets[0]),
    }
