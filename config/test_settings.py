"""Test settings: the real settings, plus what only makes tests faster or hermetic."""

from config.settings import *  # noqa: F401,F403
from config.settings import LOGGING

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
WEBHOOK_ALLOW_PRIVATE_URLS = True
LOGGING["loggers"]["django.request"] = {"level": "ERROR"}
