"""No test depends on how long the run takes: the modules that sign time-limited tokens pass when
the clock jumps ten minutes between collection and the run (``tests/slow_run.py``). Order is
covered by running the whole suite in random order (pytest-randomly, see ``.ci/run``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_sandbox_token_tests_pass_when_collection_was_long_ago():
    env = {**os.environ, "SLOW_RUN_SECONDS": "600"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "0", "-q", "-p", "tests.slow_run", "-p", "no:randomly", "-p", "no:cacheprovider",
         "tests/emr/test_sandbox.py", "-k", "token_endpoint or replayed"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
