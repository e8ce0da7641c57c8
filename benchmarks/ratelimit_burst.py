"""How many requests of a concurrent burst get through a rate limit (issue 13's probe).

gunicorn with ``BENCH_WORKERS`` (4) workers on a fresh SQLite file; a limit of 60 a minute on
``/v3/`` and on the provider directory; ``BENCH_REQUESTS`` (150) GETs from ``BENCH_THREADS`` (8)
concurrent clients released at once. Prints the answers that were not 429 (exact: 60) and the
largest ``Retry-After``. With ``REDIS_URL`` the count is kept in Redis (under a key prefix of its
own, so nothing else there is touched), without it in the database.

    python benchmarks/ratelimit_burst.py
    REDIS_URL=redis://127.0.0.1:6379/11 python benchmarks/ratelimit_burst.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from tests.servers import burst, gunicorn_running, tenant_in_database  # noqa: E402

LIMIT = 60


def main() -> None:
    requests = int(os.environ.get("BENCH_REQUESTS", "150"))
    threads = int(os.environ.get("BENCH_THREADS", "8"))
    workers = int(os.environ.get("BENCH_WORKERS", "4"))
    redis_url = os.environ.get("REDIS_URL", "")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp}/burst.sqlite3", "DJANGO_SETTINGS_MODULE": "config.settings",
               "REDIS_URL": redis_url, "CACHE_KEY_PREFIX": f"burst-{uuid.uuid4().hex[:12]}", "V3_RATE_LIMIT": f"{LIMIT}/min", "PROVIDER_DIRECTORY_RATE_LIMIT": f"{LIMIT}/min"}
        tenant = tenant_in_database(env, migrate=True)
        with gunicorn_running(env, workers=workers) as url:
            for name, path, headers in [
                ("/v3/locations", "/v3/locations", {"x-api-key": tenant["api_key"]}),
                ("provider directory", "/api/v1/provider-availability?provider_states=CA", {"cv-api-key": tenant["api_key"]}),
            ]:
                answers = burst(url, path, headers, requests=requests, threads=threads)
                statuses = Counter(getattr(a, "status_code", "error") for a in answers)
                waits = [int(a.headers["Retry-After"]) for a in answers if getattr(a, "status_code", None) == 429]
                passed = sum(n for status, n in statuses.items() if status != 429)
                print(f"{name}: {passed} of {requests} not 429 at {LIMIT}/min ({threads} threads, {workers} workers, "
                      f"{'Redis' if redis_url else 'database'}); statuses {dict(statuses)}; max Retry-After "
                      f"{max(waits) if waits else '-'}")


if __name__ == "__main__":
    main()
