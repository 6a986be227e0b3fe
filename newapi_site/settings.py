"""Django settings: the only module that reads os.environ.

Environment names and defaults follow New API (see shared/spec/management.md §6.4 and relay.md §14).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

from .dsn import database_from_dsn
from .env import ConfigError, env_bool, env_float, env_int, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "data")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

# --- process / secrets -------------------------------------------------------------
PORT = env_int("PORT", 3000)
SESSION_SECRET = env_str("SESSION_SECRET")
if SESSION_SECRET == "random_string":
    raise ConfigError("SESSION_SECRET=random_string is the example value: set a real secret")
if not SESSION_SECRET:
    # New API uses a random per-process secret; we persist one in the data dir so that
    # several worker processes (and restarts) share sessions.
    secret_file = DATA_DIR / ".session_secret"
    try:  # created owner-only and never world-readable, even for an instant
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    if secret_file.stat().st_mode & 0o077:
        secret_file.chmod(0o600)
    SESSION_SECRET = secret_file.read_text().strip()
SECRET_KEY = SESSION_SECRET
CRYPTO_SECRET = env_str("CRYPTO_SECRET") or SESSION_SECRET
DEBUG = env_bool("DEBUG", False)
NODE_TYPE = env_str("NODE_TYPE", "master")  # "slave" skips migrations and task polling
IS_MASTER_NODE = NODE_TYPE != "slave"
ALLOWED_HOSTS = ["*"]
TIME_ZONE = env_str("TZ", "UTC") or "UTC"
USE_TZ = True
LANGUAGE_CODE = "en"
# The console speaks English and Simplified Chinese, chosen by Accept-Language or the switcher's cookie.
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_NAME = "language"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600

# --- database ----------------------------------------------------------------------
SQL_DSN = env_str("SQL_DSN")
SQLITE_PATH = env_str("SQLITE_PATH", str(DATA_DIR / "one-api.db"))
DATABASES = {"default": database_from_dsn(SQL_DSN, SQLITE_PATH, BASE_DIR)}
LOG_SQL_DSN = env_str("LOG_SQL_DSN")
if LOG_SQL_DSN:
    DATABASES["logs"] = database_from_dsn(LOG_SQL_DSN, SQLITE_PATH, BASE_DIR)
    DATABASE_ROUTERS = ["billing.db_router.LogsRouter"]  # the logs table there, everything else here
if DATABASES["default"]["ENGINE"].endswith("mysql"):
    import pymysql

    pymysql.version_info = (2, 2, 1, "final", 0)  # Django checks mysqlclient's version
    pymysql.install_as_MySQLdb()
DATABASE_ENGINE = DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]  # sqlite3 | postgresql | mysql
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache, Redis, Celery ----------------------------------------------------------
REDIS_CONN_STRING = env_str("REDIS_CONN_STRING")
REDIS_POOL_SIZE = env_int("REDIS_POOL_SIZE", 10)
# The relay's in-process snapshots of tokens, users and channels (kept current through the bus,
# reloaded after SYNC_FREQUENCY s at the latest). On by default here, since the bus keeps them right;
# false (honoured only without Redis, as in New API) reads those rows from the database per request.
MEMORY_CACHE_ENABLED = env_bool("MEMORY_CACHE_ENABLED", True) or bool(REDIS_CONN_STRING)
SYNC_FREQUENCY = env_int("SYNC_FREQUENCY", 60)
if REDIS_CONN_STRING:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_CONN_STRING,
            "KEY_PREFIX": "newapi",
            "OPTIONS": {"CONNECTION_POOL_KWARGS": {"max_connections": max(REDIS_POOL_SIZE or 10, 10)}},
        }
    }
    CELERY_BROKER_URL = REDIS_CONN_STRING
    CELERY_RESULT_BACKEND: str | None = REDIS_CONN_STRING
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # The embedded default needs no broker server: kombu's filesystem transport.
    _broker_dir = DATA_DIR / "celery-broker"
    for sub in ("out", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "data_folder_processed": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
    }
    # Nothing reads task results in production; tests point this at a `file://` folder to read them.
    CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ALWAYS_EAGER = False
# The queue workers consume and beat sends to: lets several deployments (or test runs) share one broker.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "celery")
# Seconds between the Midjourney / Suno task polls (tasks-special.md §0.4: 15 s).
TASK_POLL_INTERVAL = env_float("TASK_POLL_INTERVAL", 15.0)
CELERY_TASK_ACKS_LATE = True
CELERY_TIMEZONE = "UTC"
# Redis key prefix for everything the gateway stores itself (ledger, invalidation, limits).
REDIS_KEY_PREFIX = env_str("REDIS_KEY_PREFIX", "newapi")

# --- relay behaviour ---------------------------------------------------------------
RELAY_TIMEOUT = env_int("RELAY_TIMEOUT", 0)  # seconds; 0 = no total timeout
STREAMING_TIMEOUT = env_int("STREAMING_TIMEOUT", 60)  # idle seconds between SSE lines
# Open connections per upstream host and process; requests past it wait their turn (0 = no cap).
UPSTREAM_MAX_CONNECTIONS_PER_HOST = env_int("UPSTREAM_MAX_CONNECTIONS_PER_HOST", 256)
FORCE_STREAM_OPTION = env_bool("FORCE_STREAM_OPTION", True)
GET_MEDIA_TOKEN = env_bool("GET_MEDIA_TOKEN", True)
GET_MEDIA_TOKEN_NOT_STREAM = env_bool("GET_MEDIA_TOKEN_NOT_STREAM", True)
MAX_FILE_DOWNLOAD_MB = env_int("MAX_FILE_DOWNLOAD_MB", 20)
# Image URLs on loopback/private/link-local addresses are never fetched; only tests (fakes on 127.0.0.1) relax it.
MEDIA_FETCH_ALLOW_PRIVATE = env_bool("MEDIA_FETCH_ALLOW_PRIVATE", False)
# Per request: image URLs fetched for token counting (more count at the flat estimate), how many at
# once, and the deadline for all of them together.
MEDIA_FETCH_MAX_IMAGES = env_int("MEDIA_FETCH_MAX_IMAGES", 16)
MEDIA_FETCH_CONCURRENCY = env_int("MEDIA_FETCH_CONCURRENCY", 4)
MEDIA_FETCH_DEADLINE_SECONDS = env_int("MEDIA_FETCH_DEADLINE_SECONDS", 10)
MAX_REQUEST_BODY_MB = env_int("MAX_REQUEST_BODY_MB", 32)  # ours: a body over this is a 413
AZURE_DEFAULT_API_VERSION = env_str("AZURE_DEFAULT_API_VERSION", "2024-12-01-preview")
GEMINI_VISION_MAX_IMAGE_NUM = env_int("GEMINI_VISION_MAX_IMAGE_NUM", 16)
GEMINI_MODEL_MAP = env_str("GEMINI_MODEL_MAP")
# `model:version,…` (e.g. gemini-1.0-pro:v1): the API version for a model the option
# gemini.version_settings does not name; malformed pairs are skipped, as New API does.
GEMINI_MODEL_VERSIONS: dict[str, str] = {
    model.strip(): version.strip()
    for model, sep, version in (pair.partition(":") for pair in GEMINI_MODEL_MAP.split(","))
    if sep and model.strip() and version.strip() and ":" not in version
}
COHERE_SAFETY_SETTING = env_str("COHERE_SAFETY_SETTING", "NONE")
DIFY_DEBUG = env_bool("DIFY_DEBUG", True)
UPDATE_TASK = env_bool("UPDATE_TASK", True)
GENERATE_DEFAULT_TOKEN = env_bool("GENERATE_DEFAULT_TOKEN", False)
NOTIFY_LIMIT_COUNT = env_int("NOTIFY_LIMIT_COUNT", 2)
NOTIFICATION_LIMIT_DURATION_MINUTE = env_int("NOTIFICATION_LIMIT_DURATION_MINUTE", 10)
CHANNEL_TEST_FREQUENCY = env_int("CHANNEL_TEST_FREQUENCY", None)  # minutes
CHANNEL_UPDATE_FREQUENCY = env_int("CHANNEL_UPDATE_FREQUENCY", None)  # minutes
POLLING_INTERVAL = env_float("POLLING_INTERVAL", 0)
# Cloudflare Turnstile verification endpoint (management.md §3.1); tests point it at a local fake.
TURNSTILE_VERIFY_URL = env_str(
    "TURNSTILE_VERIFY_URL", "https://challenges.cloudflare.com/turnstile/v0/siteverify"
)
# Addresses (IPs or CIDRs, comma-separated) of reverse proxies whose X-Forwarded-For / X-Real-IP /
# X-Forwarded-Proto are believed; from anyone else those headers are ignored.
TRUSTED_PROXIES = [p.strip() for p in env_str("TRUSTED_PROXIES", "").split(",") if p.strip()]
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ConfigError(f"TRUSTED_PROXIES: {_proxy!r} is not an IP address or CIDR") from None
# Only the global /api limit; the per-IP login/registration limit always applies.
GLOBAL_API_RATE_LIMIT_ENABLE = env_bool("GLOBAL_API_RATE_LIMIT_ENABLE", True)
# GitHub's OAuth and API hosts; tests point them at a local fake.
GITHUB_OAUTH_URL = env_str("GITHUB_OAUTH_URL", "https://github.com")
GITHUB_API_URL = env_str("GITHUB_API_URL", "https://api.github.com")
GLOBAL_API_RATE_LIMIT = env_int("GLOBAL_API_RATE_LIMIT", 180)
GLOBAL_API_RATE_LIMIT_DURATION = env_int("GLOBAL_API_RATE_LIMIT_DURATION", 180)
GLOBAL_WEB_RATE_LIMIT_ENABLE = env_bool("GLOBAL_WEB_RATE_LIMIT_ENABLE", True)
GLOBAL_WEB_RATE_LIMIT = env_int("GLOBAL_WEB_RATE_LIMIT", 60)
GLOBAL_WEB_RATE_LIMIT_DURATION = env_int("GLOBAL_WEB_RATE_LIMIT_DURATION", 180)
# Billing writes (log rows and counter deltas) are queued and written in batches.
BATCH_UPDATE_ENABLED = env_bool("BATCH_UPDATE_ENABLED", True)
BATCH_UPDATE_INTERVAL = env_float("BATCH_UPDATE_INTERVAL", 1.0)
# Whether a gateway process writes its own queued billing batches. `manage.py serve` turns it off
# for its web workers and drains in the parent, so the batch writes never hold a worker's GIL.
BILLING_DRAIN_IN_WORKER = env_bool("BILLING_DRAIN_IN_WORKER", True)
# Seconds after which a quota hold nobody settled (its worker was killed) is refunded by the billing
# writer. Generous: a request still running past it is charged in full when it settles.
BILLING_HOLD_SECONDS = env_int("BILLING_HOLD_SECONDS", 900)
# Root bootstrap (One API creates root/123456 at first start; so do we).
INITIAL_ROOT_PASSWORD = env_str("INITIAL_ROOT_PASSWORD", "123456")
INITIAL_ROOT_TOKEN = env_str("INITIAL_ROOT_TOKEN")
INITIAL_ROOT_ACCESS_TOKEN = env_str("INITIAL_ROOT_ACCESS_TOKEN")
# Server processes started by `manage.py serve` (one Daphne per core by default).
WEB_WORKERS = env_int("WEB_WORKERS", 0) or (os.cpu_count() or 1)
# Whether `manage.py serve` also starts a Celery worker with beat; false when they run as their own services.
EMBEDDED_CELERY = env_bool("CELERY_EMBEDDED", True)
# Seconds `manage.py serve` lets in-flight requests and streams run after SIGTERM before it cuts them.
SHUTDOWN_GRACE_SECONDS = env_float("SHUTDOWN_GRACE_SECONDS", 30.0)
# Prometheus metrics at /metrics (404 when off); with a token, scrapes need `Authorization: Bearer <token>`.
METRICS_ENABLED = env_bool("METRICS_ENABLED", False)
METRICS_TOKEN = env_str("METRICS_TOKEN")
# prometheus_client's multiprocess directory; `manage.py serve` sets it for its web workers.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR")

# --- Django plumbing -----------------------------------------------------------------
INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "channels",
    "accounts",
    "relay",
    "billing",
    "tasks",
]
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.UsernameOrEmailBackend"]
MIDDLEWARE = [
    # First: it drops X-Forwarded-Proto unless a trusted proxy sent it, before anything asks is_secure().
    "newapi_site.secure_cookies.SecureCookiesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Last: it sees the caller that DRF authenticated, and records /api writes in the audit trail.
    "newapi_site.audit.AuditMiddleware",
]
ROOT_URLCONF = "newapi_site.urls"
ASGI_APPLICATION = "newapi_site.asgi.application"
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
                "django.template.context_processors.i18n",
                "accounts.pages.context.site",
            ]
        },
    }
]
# Server-side sessions, so a logout really ends one (a signed cookie stays valid until it expires).
# With Redis the cache is shared by every process; without it each process has its own memory
# cache, so sessions live in the database alone.
SESSION_ENGINE = "django.contrib.sessions.backends." + ("cached_db" if REDIS_CONN_STRING else "db")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")  # from TRUSTED_PROXIES only, see above
SESSION_COOKIE_NAME = "session"
SESSION_COOKIE_AGE = 30 * 24 * 3600
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Strict"
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.api_auth.NewApiAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "New API management API",
    "DESCRIPTION": "New API compatible /api/* routes (shared/spec/management.md §3).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "DEBUG" if DEBUG else "WARNING"},
    "loggers": {"newapi": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
