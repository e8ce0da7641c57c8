"""JSON parsing that turns every malformed body into a 4xx instead of a 500 further down.

Rejects NaN/Infinity and overflowing floats, characters the database cannot store (NUL, lone
surrogates: ``tenants.api.storable``), absurd nesting, and bodies over ``MAX_BODY_BYTES``.
``StrictFormParser`` refuses the same characters in a form body.
"""

from __future__ import annotations

import json

from rest_framework import exceptions
from rest_framework.parsers import BaseParser, FormParser

from tenants.api.storable import storable, unstorable_names

MAX_BODY_BYTES = 1_000_000
MAX_DEPTH = 32


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = f"Request body is larger than {MAX_BODY_BYTES} bytes."
    default_code = "payload_too_large"


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _parse_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("number out of range")
    return value


def _check(value, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise ValueError("JSON nested too deeply")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("strings may not contain NUL characters")
        if not storable(value):
            raise ValueError("strings may not contain lone surrogates")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key, depth + 1)
            _check(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth + 1)


def loads_strict(raw: bytes | str):
    try:
        data = json.loads(raw, parse_constant=_reject_constant, parse_float=_parse_float)
        _check(data)
    except (ValueError, RecursionError, UnicodeError) as exc:
        raise exceptions.ParseError(f"Malformed JSON body: {exc}") from None
    return data


class StrictJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read(MAX_BODY_BYTES + 1) if stream is not None else b""
        if len(raw) > MAX_BODY_BYTES:
            raise PayloadTooLarge()
        if not raw.strip():
            return {}
        return loads_strict(raw)


class StrictFormParser(FormParser):
    """``application/x-www-form-urlencoded``, refusing a field whose name or value the database
    cannot store."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        names = unstorable_names(data, key_name="a field name")
        if names:
            raise exceptions.ParseError(f"{names[0]} may not contain NUL characters")
        return data
