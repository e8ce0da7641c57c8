"""What a checkout keeps on disk for itself: ``var/`` (the SQLite database, collected static
files, demo credentials) and the generated development secret ``var/secret_key``.

Importing the settings only reads these; the commands that run the product make them
(``manage.py``, every command, ``demo`` included; gunicorn through its config), so web server,
workers and commands of one checkout share one secret. A process that starts before any of them
has run (a test session in a fresh clone) gets a random secret of its own for its lifetime.
A deployment sets ``SECRET_KEY``; the system check ``config.W001`` names one that does not.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent


def env_file_read() -> None:
    """Variables from ``.env`` (or the file ``ENV_FILE`` names, or none when it is missing);
    those already in the environment win."""
    environ.Env.read_env(os.environ.get("ENV_FILE") or BASE_DIR / ".env", overwrite=False)


def var_dir() -> Path:
    return Path(os.environ.get("VAR_DIR") or BASE_DIR / "var")


def dev_secret_path() -> Path:
    return var_dir() / "secret_key"


def dev_secret_read() -> str:
    """The generated development secret, or "" when none was made yet."""
    try:
        return dev_secret_path().read_text().strip()
    except FileNotFoundError:
        return ""


def local_state_ensure() -> None:
    """Make ``var/``, ``var/static`` and, unless ``SECRET_KEY`` is set, the development secret."""
    env_file_read()
    var = var_dir()
    (var / "static").mkdir(parents=True, exist_ok=True)
    if os.environ.get("SECRET_KEY"):
        return
    try:
        descriptor = os.open(dev_secret_path(), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # made before, or by a process starting at the same moment
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_urlsafe(50))
