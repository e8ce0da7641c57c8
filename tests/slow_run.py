"""A pytest plugin for ``tests/test_run_independence.py``: once collection is over, the clock jumps
ahead, as if collecting had taken ``SLOW_RUN_SECONDS`` (default 600). A test that prepared a
time-limited value (a signed token) at collection fails under it; one that prepares it when it runs
does not."""

from __future__ import annotations

import os
import time
from datetime import datetime


def pytest_collection_finish(session):
    shift = float(os.environ.get("SLOW_RUN_SECONDS", "600"))
    real_time = time.time

    class ShiftedDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.fromtimestamp(real_time() + shift, tz)

    import jwt.api_jwt

    time.time = lambda: real_time() + shift
    jwt.api_jwt.datetime = ShiftedDatetime  # PyJWT checks exp against datetime.now()
