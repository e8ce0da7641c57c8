"""Settings: everything comes from the environment through one ``environ.Env``.

Defaults give the embedded set-up (SQLite, django-q2's ORM broker, local-memory cache) so the
project runs on a bare machine; production sets ``DATABASE_URL``, ``REDIS_URL`` and friends.
"""

import secrets

import environ

from config.local import BASE_DIR, dev_secret_read, env_file_read, var_dir

# Reading the settings writes nothing: var/ and the development secret are made by the commands
# that run the product (config/local.py).
env = environ.Env()
# Variables already in the environment win over the file. ENV_FILE names another file (or a
# missing one, to read none).
env_file_read()
VAR_DIR = var_dir()

SECRET_KEY = env.str("SECRET_KEY", default="")
# No SECRET_KEY: the checkout's generated one (a random one until a run command made it).
# System check config.W001 warns when DEBUG is off.
SECRET_KEY_GENERATED = not SECRET_KEY
if SECRET_KEY_GENERATED:
    SECRET_KEY = dev_secret_read() or secrets.token_urlsafe(50)
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    # ours first: our runserver (keeps the EMR API's underscore headers) wins over staticfiles'
    "tenants",
    "booking",
    "emr",
    "config.apps.ProjectConfig",  # the project's own system checks
    "whitenoise.runserver_nostatic",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tenants.admin_time.AdminTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web server and django-q2 workers share the file: WAL lets readers run beside a writer,
    # IMMEDIATE transactions take the write lock up front instead of failing on upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and rate limits -------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="sched"),
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "scheduling",
            "OPTIONS": {"MAX_ENTRIES": 20000},
        }
    }

# --- Background work (django-q2) ------------------------------------------------------------
Q_BROKER = env.str("Q_BROKER", default="orm")  # "orm" (default) or "redis" (needs REDIS_URL)
Q_CLUSTER = {
    "name": env.str("Q_CLUSTER_NAME", default="scheduling"),
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=300),
    "retry": env.int("Q_RETRY", default=360),
    "max_attempts": env.int("Q_MAX_ATTEMPTS", default=3),
    "queue_limit": 50,
    "bulk": 10,
    "catch_up": False,
    "save_limit": env.int("Q_SAVE_LIMIT", default=1000),
    "poll": env.float("Q_POLL", default=0.2),
    "label": "Task queue",
}
if Q_BROKER == "redis":
    if not REDIS_URL:
        raise environ.ImproperlyConfigured("Q_BROKER=redis needs REDIS_URL")
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Auth, i18n, static ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# 24-hour times with the zone named (the admin shows every instant in a named zone).
FORMAT_MODULE_PATH = ["config.formats"]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the apps' static folders when collectstatic has not run (tests, demo).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=SITE_URL.startswith("https://"))
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- APIs -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["tenants.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_RATES": {
        "v3": env.str("V3_RATE_LIMIT", default="1200/min"),
        "v1": env.str("V1_RATE_LIMIT", default="1200/min"),
        "oauth": env.str("OAUTH_RATE_LIMIT", default="60/min"),
        "provider_directory": env.str("PROVIDER_DIRECTORY_RATE_LIMIT", default="60/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Scheduling backend API",
    "DESCRIPTION": (
        "Booking API (`/v3/`, shaped after OnSched v3), EMR API (`/v1/`, shaped after Cobalt) "
        "and the provider directory. Every family keeps its vendor's field names and error shapes."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/(v1|v3|api/v1)",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ActiveStatusEnum": "booking.models.ActiveStatus",
        "AppointmentStatusEnum": "booking.models.Appointment.Status",
    },
}

API_TOKEN_TTL_SECONDS = 3600
AVAILABILITY_CACHE_SECONDS = env.int("AVAILABILITY_CACHE_SECONDS", default=3600)
# External calendars: how far ahead a sync reads, how long one fetch may take, and how long
# `syncExternal=true` may spend syncing before answering from the last synced data.
EXTERNAL_CALENDAR_SYNC_DAYS = env.int("EXTERNAL_CALENDAR_SYNC_DAYS", default=90)
EXTERNAL_CALENDAR_TIMEOUT_SECONDS = env.float("EXTERNAL_CALENDAR_TIMEOUT_SECONDS", default=10.0)
SYNC_EXTERNAL_BUDGET_SECONDS = env.float("SYNC_EXTERNAL_BUDGET_SECONDS", default=5.0)
EXTERNAL_CALENDAR_SYNC_MINUTES = env.int("EXTERNAL_CALENDAR_SYNC_MINUTES", default=15)

# --- Webhooks, EMR, sandbox -----------------------------------------------------------------
WEBHOOK_ALLOW_PRIVATE_URLS = env.bool("WEBHOOK_ALLOW_PRIVATE_URLS", default=False)
# Networks (CIDR) that webhooks and external calendars may reach although they are not public, when
# private addresses are not allowed altogether: an intranet CalDAV server, say. Every redirect hop
# is held to the same rule (tenants/url_guard.py).
OUTBOUND_ALLOWED_NETWORKS = env.list("OUTBOUND_ALLOWED_NETWORKS", default=[])
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
# How long a worker owns a delivery it claimed; past this, another worker takes it over (the first
# one died). The timeout bounds a whole attempt, name resolution included; the lease must exceed
# it by at least 10 seconds (system check tenants.E002).
WEBHOOK_LEASE_SECONDS = env.int("WEBHOOK_LEASE_SECONDS", default=60)
# A worker claims up to WEBHOOK_BATCH_SIZE due deliveries at once and sends them concurrently, at
# most WEBHOOK_CONCURRENCY_PER_URL at a time to any one URL; an attempt whose turn would come too
# late in the lease is given back unsent (tenants/webhooks/services/attempts.py).
WEBHOOK_BATCH_SIZE = env.int("WEBHOOK_BATCH_SIZE", default=64)
WEBHOOK_CONCURRENCY_PER_URL = env.int("WEBHOOK_CONCURRENCY_PER_URL", default=16)
# Fernet keys (urlsafe base64, 32 bytes) for credentials at rest; the first encrypts, all decrypt,
# so a key is rotated by putting the new one first. Default: one derived from SECRET_KEY.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
SANDBOX_ENABLED = env.bool("SANDBOX_ENABLED", default=True)
# The sandbox EMR: how many providers its demo practice has (6 named ones, more are made up for
# load tests) and how long its access tokens live.
SANDBOX_PROVIDERS = env.int("SANDBOX_PROVIDERS", default=6)
SANDBOX_TOKEN_TTL_SECONDS = env.int("SANDBOX_TOKEN_TTL_SECONDS", default=300)
# EMR calls: request timeout, page cap per search, and how far ahead provider schedules are read.
EMR_TIMEOUT_SECONDS = env.float("EMR_TIMEOUT_SECONDS", default=30.0)
EMR_MAX_PAGES = env.int("EMR_MAX_PAGES", default=200)
EMR_PAGE_SIZE = env.int("EMR_PAGE_SIZE", default=100)
EMR_SCHEDULE_HORIZON_DAYS = env.int("EMR_SCHEDULE_HORIZON_DAYS", default=28)
# Calendly (the provider directory): per-request timeout, the deadline of one directory request
# or sync (429 waits included), calls in flight at once, the longest span one available-times call
# asks (Calendly accepts 31 days since 2026-07-09, 7 before; system check config.E002), how long
# available times are reused, the sync's cadence, and latency the sandbox Calendly adds to each
# answer (benchmarks).
CALENDLY_TIMEOUT_SECONDS = env.float("CALENDLY_TIMEOUT_SECONDS", default=10.0)
CALENDLY_DEADLINE_SECONDS = env.float("CALENDLY_DEADLINE_SECONDS", default=20.0)
CALENDLY_CONCURRENCY = env.int("CALENDLY_CONCURRENCY", default=20)
CALENDLY_CHUNK_DAYS = env.int("CALENDLY_CHUNK_DAYS", default=31)
CALENDLY_CACHE_SECONDS = env.int("CALENDLY_CACHE_SECONDS", default=180)
CALENDLY_SYNC_MINUTES = env.int("CALENDLY_SYNC_MINUTES", default=60)
SANDBOX_CALENDLY_LATENCY_MS = env.int("SANDBOX_CALENDLY_LATENCY_MS", default=0)

def _not_sandbox_request(record) -> bool:
    """The development server logs every request; the site's own calls to its sandbox EMR (the
    demo's sync) would bury everything else."""
    args = record.args if isinstance(record.args, tuple) else ()
    return not (args and isinstance(args[0], str) and " /sandbox/" in args[0])


LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"not_sandbox": {"()": "django.utils.log.CallbackFilter", "callback": _not_sandbox_request}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "server": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["not_sandbox"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "django.server": {"handlers": ["server"], "level": "INFO", "propagate": False},
    },
}
