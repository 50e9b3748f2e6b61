"""Sensor Hub settings. Everything that differs between machines comes from the environment (see .env.example)."""
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from sensorhub.env import (
    env_bool,
    env_choice,
    env_database,
    env_float,
    env_int,
    env_list,
    env_rates,
    env_redis_url,
    env_str,
)
from sensorhub.choices import Scope

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = env_str("SECRET_KEY")
DEBUG = env_bool("SENSORHUB_DEBUG", False)
ALLOWED_HOSTS = env_list("SENSORHUB_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("SENSORHUB_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_prometheus",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "sensorhub",
    "ingestion",
    "anomalies",
    "forecasting",
    "reports",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "sensorhub.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "sensorhub.urls"
WSGI_APPLICATION = "sensorhub.wsgi.application"

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

DATABASES = {"default": env_database("DATABASE_URL")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_redis_url("REDIS_URL")
CACHES = {
    "default": {
        "BACKEND": "sensorhub.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "sensorhub",
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/admin/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# The launcher runs collectstatic before serving; with DEBUG on, files are also found without it.
WHITENOISE_USE_FINDERS = DEBUG

# --- time-series storage -------------------------------------------------------------------------------------------
# auto: TimescaleDB when the extension can be created, plain PostgreSQL otherwise. Decided once, at migrate time.
SENSORHUB_STORAGE = env_choice("SENSORHUB_STORAGE", "auto", ("auto", "timescaledb", "plain"))

# Raw readings older than this are deleted (a sensor's retention_days overrides it).
SENSORHUB_RETENTION_DAYS = env_int("SENSORHUB_RETENTION_DAYS", 180, minimum=1)

# --- ingestion ---------------------------------------------------------------------------------------------------------
SENSORHUB_MAX_BATCH_READINGS = env_int("SENSORHUB_MAX_BATCH_READINGS", 50_000, minimum=1)
# Largest accepted body (after gzip decompression).
SENSORHUB_MAX_BODY_BYTES = env_int("SENSORHUB_MAX_BODY_BYTES", 16 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = SENSORHUB_MAX_BODY_BYTES
# Readings stamped further than this in the future are rejected (a device clock is wrong).
SENSORHUB_MAX_FUTURE_SECONDS = env_int("SENSORHUB_MAX_FUTURE_SECONDS", 300, minimum=0)
# Readings for unknown sensors create them, for API keys that have may_register_sensors.
SENSORHUB_AUTO_REGISTER_SENSORS = env_bool("SENSORHUB_AUTO_REGISTER_SENSORS", False)
# Idempotency keys: answered from Redis for this long, and kept in the database (the guarantee) this many days.
SENSORHUB_IDEMPOTENCY_CACHE_SECONDS = env_int("SENSORHUB_IDEMPOTENCY_CACHE_SECONDS", 24 * 3600, minimum=60)
SENSORHUB_IDEMPOTENCY_RETENTION_DAYS = env_int("SENSORHUB_IDEMPOTENCY_RETENTION_DAYS", 7, minimum=1)
# The Celery task that scores new readings, by name (ingestion never imports the ML apps).
SENSORHUB_SCORING_TASK = env_str("SENSORHUB_SCORING_TASK", "anomalies.score_new_readings")
# A sensor with a scoring task already waiting gets no second one; the mark expires after this many seconds.
SENSORHUB_SCORING_DEBOUNCE_SECONDS = env_int("SENSORHUB_SCORING_DEBOUNCE_SECONDS", 30, minimum=1)

# --- ML ------------------------------------------------------------------------------------------------------------
SENSORHUB_MODEL_DIR = env_str("SENSORHUB_MODEL_DIR", str(BASE_DIR / "var" / "models"))
# Readings scoring at or above this become AnomalyEvents (alert rules decide what notifies).
SENSORHUB_ANOMALY_EVENT_THRESHOLD = env_float("SENSORHUB_ANOMALY_EVENT_THRESHOLD", 0.3, minimum=0.0)
# How much history a sensor's detector learns from.
SENSORHUB_ANOMALY_TRAIN_DAYS = env_int("SENSORHUB_ANOMALY_TRAIN_DAYS", 30, minimum=1)
# Forecasts are made on steps of this many seconds (each value the mean of the readings in the step); must divide a day.
SENSORHUB_FORECAST_STEP_SECONDS = env_int("SENSORHUB_FORECAST_STEP_SECONDS", 3600, minimum=60, maximum=86400)
if 86400 % SENSORHUB_FORECAST_STEP_SECONDS:
    raise ImproperlyConfigured(f"SENSORHUB_FORECAST_STEP_SECONDS={SENSORHUB_FORECAST_STEP_SECONDS} does not divide a "
                               "day (86400 s); use e.g. 900, 1800 or 3600.")
# Steps forecast by default and at most (/predict's `horizon`); models are chosen by backtest at the default.
SENSORHUB_FORECAST_HORIZON = env_int("SENSORHUB_FORECAST_HORIZON", 24, minimum=1)
SENSORHUB_FORECAST_MAX_HORIZON = env_int("SENSORHUB_FORECAST_MAX_HORIZON", 168, minimum=SENSORHUB_FORECAST_HORIZON)
SENSORHUB_FORECAST_INTERVAL = env_float("SENSORHUB_FORECAST_INTERVAL", 0.9, minimum=0.5, maximum=0.99)
SENSORHUB_FORECAST_TRAIN_DAYS = env_int("SENSORHUB_FORECAST_TRAIN_DAYS", 60, minimum=2)
# Recent history a stored model forecasts from (models conditioned on the latest values read them from it).
SENSORHUB_FORECAST_HISTORY_DAYS = env_int("SENSORHUB_FORECAST_HISTORY_DAYS", 14, minimum=1)
# Past forecasts kept to measure realised accuracy (their aggregates stay on the model version for good).
SENSORHUB_FORECAST_KEEP_DAYS = env_int("SENSORHUB_FORECAST_KEEP_DAYS", 30, minimum=1)

# --- notifications -------------------------------------------------------------------------------------------------
EMAIL_HOST = env_str("SENSORHUB_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("SENSORHUB_EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("SENSORHUB_EMAIL_USER", "") or ""
EMAIL_HOST_PASSWORD = env_str("SENSORHUB_EMAIL_PASSWORD", "") or ""
EMAIL_USE_TLS = env_bool("SENSORHUB_EMAIL_TLS", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("SENSORHUB_EMAIL_FROM", "sensorhub@localhost")
SENSORHUB_WEBHOOK_TIMEOUT = env_int("SENSORHUB_WEBHOOK_TIMEOUT", 10, minimum=1)

# --- API ---
# Per-key rate limits by scope, "scope=count/period" (period s, m, h or d); the strictest scope of an endpoint applies.
SENSORHUB_RATE_LIMITS = env_rates(
    "SENSORHUB_RATE_LIMITS",
    ["readings:write=1200/m", "readings:read=600/m", "ml:read=1200/m", "ml:admin=60/m", "admin=120/m"],
    keys=tuple(Scope.values),
)
RATELIMIT_USE_CACHE = "default"

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "sensorhub.apikeys.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["sensorhub.apikeys.HasScope"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "sensorhub.pagination.ViewOrderedCursorPagination",
    # `format` is an ordinary query parameter of ours (e.g. ?format=csv), not DRF's renderer override.
    "URL_FORMAT_OVERRIDE": None,
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Sensor Hub API",
    "DESCRIPTION": "Ingest sensor readings, query them, detect anomalies and forecast every sensor.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Self-hosted: Swagger UI is served from our own static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Celery ----------------------------------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("SENSORHUB_TASK_SOFT_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("SENSORHUB_TASK_TIME_LIMIT", 360, minimum=1)
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # keep our JSON log lines (with request and task ids) in workers
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Every periodic job is defined here, each period overridable from the environment; django-celery-beat copies the
# schedule into the database, where admins can see and pause it. ``expires`` is just under the period so a backlog
# after downtime runs once, not many times.
def _every(task: str, variable: str, default_s: int) -> dict:
    period = env_int(variable, default_s, minimum=10)
    return {"task": task, "schedule": period, "options": {"expires": period * 0.9}}


CELERY_BEAT_SCHEDULE = {
    "refresh-rollups": _every("ingestion.refresh_rollups", "SENSORHUB_ROLLUP_PERIOD_S", 60),
    "enforce-retention": _every("ingestion.enforce_retention", "SENSORHUB_RETENTION_PERIOD_S", 3600),
    "expire-idempotency-keys": _every("ingestion.expire_idempotency_keys", "SENSORHUB_IDEMPOTENCY_PERIOD_S", 3600),
    "retrain-anomaly-models": _every("anomalies.retrain_models", "SENSORHUB_RETRAIN_PERIOD_S", 24 * 3600),
    "refresh-forecasts": _every("forecasting.refresh_forecasts", "SENSORHUB_FORECAST_REFRESH_PERIOD_S", 600),
    "retrain-forecast-models": _every("forecasting.train_models", "SENSORHUB_FORECAST_RETRAIN_PERIOD_S", 24 * 3600),
}

# --- health ----------------------------------------------------------------------------------------------------------
SENSORHUB_HEALTH_WORKER_TIMEOUT = env_int("SENSORHUB_HEALTH_WORKER_TIMEOUT", 2, minimum=1)

# --- logging: JSON lines with the request id (and task id in workers) ------------------------------------------------
LOG_LEVEL = env_choice("SENSORHUB_LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation": {"()": "sensorhub.logging.CorrelationFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s %(request_id)s %(task_id)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO 8601, UTC
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["correlation"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "celery": {"level": LOG_LEVEL},
    },
}

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    X_FRAME_OPTIONS = "DENY"
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SESSION_COOKIE_SECURE = env_bool("SENSORHUB_SECURE_COOKIES", False)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
