"""SMART Backend Services on the sandbox EMR's side: verifying client assertions and issuing
short-lived access tokens.

Pure functions (no Django): the sandbox views pass the registered JWKS, the expected audience (the
token endpoint's own URL), a replay check and the signing secret.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable

import jwt

ASSERTION_MAX_LIFETIME = 300  # SMART: exp no more than five minutes in the future
LEEWAY = 30
ACCESS_TOKEN_ISSUER = "sandbox-emr"


class TokenError(Exception):
    """``error`` is the OAuth error code; ``str()`` the description."""

    def __init__(self, error: str, description: str):
        super().__init__(description)
        self.error = error
        self.description = description


def assertion_client_id(assertion: str) -> str:
    """The ``iss`` of an assertion, read before its signature is checked (to find its keys)."""
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise TokenError("invalid_client", f"client_assertion is not a JWT: {exc}") from None
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise TokenError("invalid_client", "client_assertion has no iss.")
    return issuer


def _key_for(header: dict, jwks: dict):
    keys = [k for k in (jwks or {}).get("keys", []) if isinstance(k, dict)]
    kid = header.get("kid")
    if kid:
        keys = [k for k in keys if k.get("kid") == kid]
    if not keys:
        raise TokenError("invalid_client", f"No registered key{' with kid ' + repr(kid) if kid else ''} for this client.")
    if len(keys) > 1 and not kid:
        raise TokenError("invalid_client", "client_assertion has no kid and the client has several keys.")
    try:
        return jwt.PyJWK(keys[0], algorithm="RS384").key
    except jwt.PyJWTError as exc:
        raise TokenError("invalid_client", f"The registered key is unusable: {exc}") from None


def verify_client_assertion(
    assertion: str,
    *,
    client_id: str,
    jwks: dict,
    audience: str,
    now: float,
    remember_jti: Callable[[str, float], bool],
) -> dict:
    """Check an RS384 client assertion against the client's registered keys; returns its claims.

    ``remember_jti(jti, exp)`` stores the jti until ``exp`` and returns False when it was already
    seen (a replayed assertion).
    """
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError as exc:
        raise TokenError("invalid_client", f"client_assertion is not a JWT: {exc}") from None
    if header.get("alg") != "RS384":
        raise TokenError("invalid_client", f"client_assertion must be signed RS384, not {header.get('alg')!r}.")
    key = _key_for(header, jwks)
    try:
        claims = jwt.decode(
            assertion,
            key,
            algorithms=["RS384"],
            audience=audience,
            issuer=client_id,
            leeway=LEEWAY,
            options={"require": ["iss", "sub", "aud", "exp", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("invalid_client", "client_assertion has expired.") from None
    except jwt.InvalidAudienceError:
        raise TokenError("invalid_client", f"client_assertion aud must be the token endpoint {audience}.") from None
    except jwt.InvalidSignatureError:
        raise TokenError("invalid_client", "client_assertion signature does not verify with the registered key.") from None
    except jwt.PyJWTError as exc:
        raise TokenError("invalid_client", f"client_assertion is invalid: {exc}") from None
    if claims.get("sub") != client_id:
        raise TokenError("invalid_client", "client_assertion sub must equal iss (the client id).")
    if claims["exp"] > now + ASSERTION_MAX_LIFETIME + LEEWAY:
        raise TokenError("invalid_client", "client_assertion exp is more than five minutes in the future.")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 255:
        raise TokenError("invalid_client", "client_assertion needs a jti.")
    if not remember_jti(jti, float(claims["exp"])):
        raise TokenError("invalid_client", "client_assertion jti was already used.")
    return claims


def signing_key(secret: str) -> bytes:
    return hashlib.sha256(f"sandbox-emr-access-token:{secret}".encode()).digest()


def access_token_issue(*, client_id: str, scope: str, secret: str, now: float, ttl: int, extra: dict | None = None) -> str:
    claims = {
        "iss": ACCESS_TOKEN_ISSUER,
        "sub": client_id,
        "scope": scope,
        "iat": int(now),
        "exp": int(now) + ttl,
        "jti": secrets.token_hex(8),
        **(extra or {}),
    }
    return jwt.encode(claims, signing_key(secret), algorithm="HS256")


def access_token_verify(token: str, *, secret: str, now: float) -> dict:
    """The token's claims; ``TokenError("invalid_token", …)`` when it is bad or expired."""
    try:
        claims = jwt.decode(
            token,
            signing_key(secret),
            algorithms=["HS256"],
            issuer=ACCESS_TOKEN_ISSUER,
            options={"require": ["exp", "sub"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise TokenError("invalid_token", f"Access token is invalid: {exc}") from None
    if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] <= now:
        raise TokenError("invalid_token", "Access token has expired.")
    return claims


def scope_granted(requested: str) -> str:
    """The sandbox grants read scopes only."""
    scopes = [s for s in (requested or "").split() if s]
    if not scopes:
        return "system/*.read"
    bad = [s for s in scopes if not (s.startswith("system/") and (s.endswith(".read") or s.endswith(".rs")))]
    if bad:
        raise TokenError("invalid_scope", f"Only system read scopes are granted, not {', '.join(bad)}.")
    return " ".join(scopes)


CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def token_request_handle(
    form,
    *,
    audience: str,
    jwks_for: Callable[[str], dict | None],
    now: float,
    remember_jti: Callable[[str, float], bool],
    secret: str,
    ttl: int,
    extra: dict | None = None,
) -> tuple[int, dict]:
    """A token endpoint request (form fields) → (status, JSON body) per SMART Backend Services."""
    if form.get("grant_type") != "client_credentials":
        return 400, {"error": "unsupported_grant_type", "error_description": "grant_type must be client_credentials."}
    if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
        return 400, {"error": "invalid_request", "error_description": f"client_assertion_type must be {CLIENT_ASSERTION_TYPE}."}
    assertion = form.get("client_assertion")
    if not assertion:
        return 400, {"error": "invalid_request", "error_description": "client_assertion is required."}
    try:
        client_id = assertion_client_id(assertion)
        jwks = jwks_for(client_id)
        if jwks is None:
            raise TokenError("invalid_client", f"Unknown client {client_id!r}.")
        verify_client_assertion(
            assertion, client_id=client_id, jwks=jwks, audience=audience, now=now, remember_jti=remember_jti
        )
        scope = scope_granted(form.get("scope", ""))
    except TokenError as exc:
        return (401 if exc.error == "invalid_client" else 400), {"error": exc.error, "error_description": exc.description}
    token = access_token_issue(client_id=client_id, scope=scope, secret=secret, now=now, ttl=ttl, extra=extra)
    return 200, {"access_token": token, "token_type": "bearer", "expires_in": ttl, "scope": scope}
