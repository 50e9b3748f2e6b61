"""Typed readers for settings from the environment.

Every reader raises ImproperlyConfigured naming the variable and what is wrong, so a bad deployment refuses to start
instead of running half-configured. ``NAME_FILE`` may hold a path to a file with the value (Docker/Kubernetes secrets).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_MISSING = object()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str, default=_MISSING):
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE points to {file_name!r}, which cannot be read: {exc.strerror}.")
    value = os.environ.get(name)
    if value is None:
        if default is _MISSING:
            raise ImproperlyConfigured(
                f"{name} is not set. Set it in the environment (or {name}_FILE to a file holding it); "
                f".env.example documents every variable."
            )
        return default
    return value


def env_str(name: str, default=_MISSING) -> str:
    value = _raw(name, default)
    if value is not default and not str(value).strip():
        raise ImproperlyConfigured(f"{name} is set but empty. Give it a value or unset it.")
    return value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name, None)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean. Use one of: true, false, 1, 0, yes, no, on, off.")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _raw(name, None)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum of {minimum}.")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is above the maximum of {maximum}.")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None, maximum: float | None = None) -> float:
    value = _raw(name, None)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum of {minimum}.")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is above the maximum of {maximum}.")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name, None)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _raw(name, default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of: {', '.join(choices)}.")
    return value


def env_database(name: str = "DATABASE_URL") -> dict:
    import dj_database_url

    url = env_str(name)
    if not url.startswith(("postgres://", "postgresql://")):
        raise ImproperlyConfigured(
            f"{name} must be a PostgreSQL URL such as postgres://user:password@host:5432/sensorhub; got scheme "
            f"{url.split(':', 1)[0]!r}. Sensor Hub needs PostgreSQL (or TimescaleDB)."
        )
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} cannot be parsed: {exc}") from None
    if not config.get("NAME"):
        raise ImproperlyConfigured(f"{name} names no database: add it to the path, e.g. .../sensorhub.")
    config.setdefault("OPTIONS", {})["connect_timeout"] = env_int("SENSORHUB_DB_CONNECT_TIMEOUT", 3, minimum=1)
    return config


def env_redis_url(name: str = "REDIS_URL") -> str:
    url = env_str(name)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"{name} must look like redis://host:6379/0; got {url!r}.")
    return url


def env_rates(name: str, default: list[str], *, keys: tuple[str, ...]) -> dict[str, str]:
    """``key=count/period`` items, comma-separated, e.g. ``readings:write=1200/m``; period s, m, h or d."""
    rates = {}
    for item in env_list(name, default):
        key, _, rate = item.partition("=")
        if key not in keys:
            raise ImproperlyConfigured(f"{name}: {key!r} is not one of: {', '.join(keys)}.")
        if not re.fullmatch(r"\d+/\d*[smhd]", rate):
            raise ImproperlyConfigured(f"{name}: {rate!r} for {key} is not a rate like 600/m (count/period).")
        rates[key] = rate
    return rates
