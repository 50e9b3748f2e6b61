"""Time-series storage strategy: TimescaleDB when the extension is available, plain PostgreSQL otherwise.

The choice is made once, by the migration that creates the readings table, and recorded in ``StorageBackend`` so that
/health/ready and the query layer report and use the same thing. DESIGN.md lists the plain-PostgreSQL equivalents.
"""
from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from sensorhub.choices import StorageStrategy

logger = logging.getLogger(__name__)

READINGS_TABLE = "ingestion_sensorreading"
CHUNK_INTERVAL = "1 day"


def _scalar(cursor, sql: str, params=None):
    cursor.execute(sql, params or [])
    row = cursor.fetchone()
    return row[0] if row else None


def timescaledb_version(cursor) -> str | None:
    return _scalar(cursor, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")


def _try_create_extension(cursor) -> tuple[str | None, str]:
    """Returns (version, reason). Creating the extension fails unless it is installed and preloaded."""
    if not _scalar(cursor, "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"):
        return None, "the timescaledb extension is not installed on this PostgreSQL server"
    cursor.execute("SAVEPOINT sensorhub_tsdb")
    try:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except Exception as exc:  # the driver's error type depends on the failure; all mean "not usable here"
        cursor.execute("ROLLBACK TO SAVEPOINT sensorhub_tsdb")
        return None, f"CREATE EXTENSION timescaledb failed: {exc}".strip()
    cursor.execute("RELEASE SAVEPOINT sensorhub_tsdb")
    return timescaledb_version(cursor), "the timescaledb extension is available"


def apply_readings_storage(schema_editor) -> str:
    """Called from the readings migration: turns the table into a hypertable or gives it the plain indexes."""
    wanted = settings.SENSORHUB_STORAGE
    with schema_editor.connection.cursor() as cursor:
        pg_version = _scalar(cursor, "SHOW server_version")
        version, reason = (None, "SENSORHUB_STORAGE=plain") if wanted == "plain" else _try_create_extension(cursor)
        if version is None and wanted == "timescaledb":
            raise ImproperlyConfigured(f"SENSORHUB_STORAGE=timescaledb but {reason}.")
        if version:
            cursor.execute(
                "SELECT create_hypertable(%s, 'time', chunk_time_interval => INTERVAL '1 day', migrate_data => true)",
                [READINGS_TABLE],
            )
            strategy = StorageStrategy.TIMESCALEDB
        else:
            # BRIN on time: tiny, and cheap to keep on an append-mostly table; serves time-range scans across sensors
            # (retention, rollups). Per-sensor range queries use the (sensor_id, time) primary key.
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS ingestion_sensorreading_time_brin ON {READINGS_TABLE} "
                "USING brin (time) WITH (pages_per_range = 32)"
            )
            strategy = StorageStrategy.PLAIN
        cursor.execute(
            "INSERT INTO sensorhub_storagebackend (id, strategy, timescaledb_version, postgres_version, reason, chosen_at) "
            "VALUES (1, %s, %s, %s, %s, now()) ON CONFLICT (id) DO UPDATE SET strategy = EXCLUDED.strategy, "
            "timescaledb_version = EXCLUDED.timescaledb_version, postgres_version = EXCLUDED.postgres_version, "
            "reason = EXCLUDED.reason, chosen_at = EXCLUDED.chosen_at",
            [strategy, version or "", pg_version, reason],
        )
    logger.info("readings storage: %s (%s)", strategy, reason)
    return strategy


def detect_storage(cursor) -> str | None:
    """The strategy the live schema shows: a hypertable, the plain BRIN layout, or None (not migrated)."""
    if timescaledb_version(cursor) and _scalar(
        cursor, "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = %s", [READINGS_TABLE]
    ):
        return StorageStrategy.TIMESCALEDB
    if _scalar(cursor, "SELECT 1 FROM pg_indexes WHERE indexname = 'ingestion_sensorreading_time_brin'"):
        return StorageStrategy.PLAIN
    return None


def current_storage() -> dict:
    """What /health/ready reports: the recorded strategy and the live TimescaleDB version.

    If the record is gone (``manage.py flush`` empties every table) it is re-recorded from the live schema, since
    migrate would not run again to restore it.
    """
    from django.db import connection

    from sensorhub.models import StorageBackend

    with connection.cursor() as cursor:
        live_version = timescaledb_version(cursor)
        backend = StorageBackend.objects.filter(pk=1).first()
        if backend is None and (strategy := detect_storage(cursor)):
            backend, _ = StorageBackend.objects.get_or_create(
                pk=1,
                defaults={"strategy": strategy, "timescaledb_version": live_version or "",
                          "postgres_version": _scalar(cursor, "SHOW server_version"),
                          "reason": "re-detected from the live schema (the record was missing)"},
            )
    if backend is None:
        return {"strategy": None, "detail": "not chosen yet: run manage.py migrate"}
    return {
        "strategy": backend.strategy,
        "timescaledb": live_version or "plain PostgreSQL",
        "postgres": backend.postgres_version,
        "chosen_at": backend.chosen_at.isoformat(),
        "reason": backend.reason,
    }
