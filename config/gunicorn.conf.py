"""gunicorn settings for production: ``gunicorn -c config/gunicorn.conf.py config.wsgi``.

Everything can be overridden by environment variables (``GUNICORN_*``, ``PORT``).
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
accesslog = "-"
errorlog = "-"
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = 200
# Long query strings (GET /v3/availability with 150+ ResourceIds) reach the application, which
# answers them in the API's own shape; 8190 is gunicorn's maximum (the default is 4094).
limit_request_line = int(os.environ.get("GUNICORN_LIMIT_REQUEST_LINE", "8190"))
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# The EMR API (/v1/) authenticates with headers named client_id, client_secret and access_token.
# gunicorn drops header names containing underscores by default; "dangerous" maps them like their
# hyphenated spelling (HTTP_CLIENT_ID). If a client sends both spellings, gunicorn joins the values
# and authentication fails, which is the safe outcome. Behind nginx, also set
# `underscores_in_headers on;`.
header_map = "dangerous"

# gunicorn 27 opens a control socket under $HOME by default; a web worker has no use for it.
control_socket_disable = os.environ.get("GUNICORN_CONTROL_SOCKET", "").lower() not in ("1", "true", "yes")


def on_starting(server):
    """``var/`` and, unless ``SECRET_KEY`` is set, the generated development secret, before any
    worker reads the settings: otherwise each worker would make up a secret of its own."""
    from config.local import local_state_ensure

    local_state_ensure()
