"""Receiving the EMR API's ``client_id``/``client_secret``/``access_token`` headers.

WSGI servers drop header names with underscores, because ``client_id`` and ``client-id`` both
become ``HTTP_CLIENT_ID`` and one could spoof the other. We need exactly these three through, so
the development server keeps them (and only them) and refuses the request's copy of the header if
both spellings arrive with different values. gunicorn is configured in ``config/gunicorn.conf.py``.
"""

from __future__ import annotations

from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer

UNDERSCORE_HEADERS = frozenset({"client_id", "client_secret", "access_token"})


class UnderscoreHeaderRequestHandler(WSGIRequestHandler):
    def get_environ(self):
        keep = {}
        for name in list(self.headers.keys()):
            lowered = name.lower()
            if lowered in UNDERSCORE_HEADERS:
                values = self.headers.get_all(name)
                hyphenated = self.headers.get_all(lowered.replace("_", "-")) or []
                if len(set(values) | set(hyphenated)) == 1:
                    keep[lowered.replace("_", "-")] = values[0]
                # ambiguous (both spellings, different values): drop both below
                del self.headers[name]
                if hyphenated and lowered.replace("_", "-") not in keep:
                    del self.headers[lowered.replace("_", "-")]
        environ = super().get_environ()
        for name, value in keep.items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        return environ


class UnderscoreHeaderWSGIServer(WSGIServer):
    def __init__(self, server_address, handler_class, *args, **kwargs):
        super().__init__(server_address, UnderscoreHeaderRequestHandler, *args, **kwargs)
