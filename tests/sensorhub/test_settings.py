"""A missing or malformed setting stops the process with a message naming the variable."""
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def start_django(**overrides: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "SECRET_KEY_FILE")}
    env["SECRET_KEY"] = "test-only-not-secret"
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "sensorhub.settings"}, capture_output=True, text=True,
        timeout=60,
    )


def test_it_starts_with_a_complete_environment():
    result = start_django()
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"SECRET_KEY": None}, "SECRET_KEY is not set"),
        ({"DATABASE_URL": None}, "DATABASE_URL is not set"),
        ({"REDIS_URL": None}, "REDIS_URL is not set"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL must be a PostgreSQL URL"),
        ({"DATABASE_URL": "postgres://u@h:5432"}, "DATABASE_URL names no database"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must look like redis://"),
        ({"SENSORHUB_DEBUG": "maybe"}, "SENSORHUB_DEBUG='maybe' is not a boolean"),
        ({"SENSORHUB_DB_CONNECT_TIMEOUT": "soon"}, "SENSORHUB_DB_CONNECT_TIMEOUT='soon' is not a whole number"),
        ({"SENSORHUB_STORAGE": "mongodb"}, "SENSORHUB_STORAGE='mongodb' is not one of: auto, timescaledb, plain"),
        ({"SECRET_KEY": "   "}, "SECRET_KEY is set but empty"),
        ({"SENSORHUB_FORECAST_STEP_SECONDS": "7000"}, "does not divide a day"),
        ({"SENSORHUB_FORECAST_INTERVAL": "1.5"}, "SENSORHUB_FORECAST_INTERVAL=1.5 is above the maximum of 0.99"),
    ],
)
def test_it_refuses_to_start_and_names_the_variable(overrides, expected):
    result = start_django(**overrides)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert expected in result.stderr


def test_it_reads_a_secret_from_a_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-a-file-" + "x" * 40)
    ok = start_django(SECRET_KEY=None, SECRET_KEY_FILE=str(secret))
    assert ok.returncode == 0, ok.stderr
    missing = start_django(SECRET_KEY=None, SECRET_KEY_FILE=str(tmp_path / "nope"))
    assert missing.returncode != 0
    assert "SECRET_KEY_FILE points to" in missing.stderr and "cannot be read" in missing.stderr


def test_every_variable_the_settings_read_is_documented_in_env_example():
    settings_source = (ROOT / "sensorhub" / "settings.py").read_text()
    read = set(re.findall(r'env_[a-z_]+\(\s*"([A-Z][A-Z0-9_]+)"', settings_source))
    read |= set(re.findall(r'_every\([^)]*"([A-Z][A-Z0-9_]+)"', settings_source))
    assert len(read) > 30  # the patterns still find the settings
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+?)(?:_FILE)?=", (ROOT / ".env.example").read_text(), re.M))
    assert not read - documented, f".env.example does not document {sorted(read - documented)}"
