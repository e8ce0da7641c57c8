"""What the benchmarks share: a throwaway database, timing, percentiles, the machine's load, and
the statement recorder and raw cursor their floors replay SQL on.

Import it before Django is set up (``throwaway_database`` must run first); the helpers that need
Django import it when called.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import date, timedelta


def throwaway_database(prefix: str) -> tempfile.TemporaryDirectory | None:
    """A SQLite file in a temporary directory unless ``DATABASE_URL`` names a database; keep the
    returned directory referenced for as long as the benchmark runs."""
    if os.environ.get("DATABASE_URL"):
        return None
    directory = tempfile.TemporaryDirectory(prefix=prefix)
    os.environ["DATABASE_URL"] = f"sqlite:///{directory.name}/bench.sqlite3"
    return directory


def quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95."""
    return statistics.median(samples), quantile(samples, 0.95)


def timed(fn, repeat: int, before=None) -> tuple[float, float]:
    """p50 and p95 in milliseconds of ``repeat`` calls of ``fn``, each after ``before`` (untimed)."""
    samples = []
    for _ in range(repeat):
        if before:
            before()
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def load_average() -> str:
    """The machine's load average: other processes on a shared machine move every figure."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def next_monday() -> date:
    """A Monday at least a week ahead, so every day of the data is in the future."""
    from django.utils import timezone

    today = timezone.now().date() + timedelta(days=7)
    return today + timedelta(days=(7 - today.weekday()) % 7)


class StatementRecorder:
    """Every statement run, with its parameters, as ``connection.execute_wrapper`` sees it."""

    def __init__(self):
        self.statements: list[tuple[str, tuple]] = []

    def __call__(self, execute, sql, params, many, context):
        self.statements.append((sql, params))
        return execute(sql, params, many, context)


def raw_cursor():
    """The database's own DB-API cursor for PostgreSQL (psycopg takes Django's ``%s`` SQL as it
    is); Django's thin SQLite cursor, which only turns ``%s`` into ``?``."""
    from django.db import connection

    connection.ensure_connection()
    if connection.vendor == "postgresql":
        return connection.connection.cursor()
    return connection.cursor()
