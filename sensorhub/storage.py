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


def recorded_backend(cursor):
    """The StorageBackend row. If it is gone (``manage.py flush`` empties every table) it is re-recorded from the
    live schema, since migrate would not run again to restore it. None before the readings table is migrated."""
    from sensorhub.models import StorageBackend

    backend = StorageBackend.objects.filter(pk=1).first()
    if backend is None and (detected := detect_storage(cursor)):
        backend, _ = StorageBackend.objects.get_or_create(
            pk=1,
            defaults={"strategy": detected, "timescaledb_version": timescaledb_version(cursor) or "",
                      "postgres_version": _scalar(cursor, "SHOW server_version"),
                      "reason": "re-detected from the live schema (the record was missing)"},
        )
    return backend


def current_storage() -> dict:
    """What /health/ready reports: the recorded strategy and the live TimescaleDB version."""
    from django.db import connection

    with connection.cursor() as cursor:
        live_version = timescaledb_version(cursor)
        backend = recorded_backend(cursor)
    if backend is None:
        return {"strategy": None, "detail": "not chosen yet: run manage.py migrate"}
    return {
        "strategy": backend.strategy,
        "timescaledb": live_version or "plain PostgreSQL",
        "postgres": backend.postgres_version,
        "chosen_at": backend.chosen_at.isoformat(),
        "reason": backend.reason,
    }


# --- rollups (continuous aggregates on TimescaleDB, tables kept by a beat task on plain PostgreSQL) ---------------

# name -> width. Both strategies expose the same relation and columns: sensor_id, bucket, n, total, vmin, vmax.
ROLLUPS = {"ingestion_reading_1m": "1 minute", "ingestion_reading_1h": "1 hour"}
DIRTY_TABLE = "ingestion_rollup_dirty"
BUCKET_ORIGIN = "2000-01-01 00:00:00+00"  # date_bin origin: buckets align to UTC midnight
ROLLUP_LOCK = 7_314_001  # pg advisory lock id: one refresher at a time
COMPRESS_AFTER = "7 days"


def apply_rollups(schema_editor) -> None:
    """Called from a migration: the aggregate relations and the policies of the recorded strategy."""
    with schema_editor.connection.cursor() as cursor:
        chosen = _scalar(cursor, "SELECT strategy FROM sensorhub_storagebackend WHERE id = 1")
        # Marks of ranges that changed since the plain rollups were last refreshed (unused on TimescaleDB).
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {DIRTY_TABLE} (sensor_id bigint NOT NULL, start_time timestamptz NOT NULL, "
            "end_time timestamptz NOT NULL)"
        )
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {DIRTY_TABLE}_sensor ON {DIRTY_TABLE} (sensor_id, start_time)")
        for name, width in ROLLUPS.items():
            if chosen == StorageStrategy.TIMESCALEDB:
                cursor.execute(
                    f"CREATE MATERIALIZED VIEW IF NOT EXISTS {name} "
                    "WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS "
                    f"SELECT sensor_id, time_bucket(INTERVAL '{width}', time) AS bucket, count(*) AS n, "
                    f"sum(value) AS total, min(value) AS vmin, max(value) AS vmax FROM {READINGS_TABLE} "
                    "GROUP BY sensor_id, bucket WITH NO DATA"
                )
                lag = "1 minute" if width == "1 minute" else "1 hour"
                cursor.execute(
                    "SELECT add_continuous_aggregate_policy(%s, start_offset => NULL, end_offset => INTERVAL %s, "
                    "schedule_interval => INTERVAL %s, if_not_exists => true)",
                    [name, lag, lag],
                )
            else:
                cursor.execute(
                    f"CREATE TABLE IF NOT EXISTS {name} (sensor_id bigint NOT NULL, bucket timestamptz NOT NULL, "
                    "n bigint NOT NULL, total double precision NOT NULL, vmin double precision NOT NULL, "
                    # Covering key: a chart reads one sensor's buckets by index alone, without visiting heap pages
                    # that hold every other sensor's rows too.
                    "vmax double precision NOT NULL, PRIMARY KEY (sensor_id, bucket) INCLUDE (n, total, vmin, vmax))"
                )
        if chosen == StorageStrategy.PLAIN:
            # Readings stored before the rollups existed: the next refresh computes their buckets.
            cursor.execute(
                f"INSERT INTO {DIRTY_TABLE} (sensor_id, start_time, end_time) "
                f"SELECT sensor_id, min(time), max(time) FROM {READINGS_TABLE} GROUP BY sensor_id"
            )
        if chosen == StorageStrategy.TIMESCALEDB:
            cursor.execute(
                f"ALTER TABLE {READINGS_TABLE} SET (timescaledb.compress, timescaledb.compress_segmentby = "
                "'sensor_id', timescaledb.compress_orderby = 'time DESC')"
            )
            cursor.execute("SELECT add_compression_policy(%s, INTERVAL %s, if_not_exists => true)",
                           [READINGS_TABLE, COMPRESS_AFTER])


def strategy() -> str | None:
    """The recorded strategy. Read per call: one primary-key lookup, and a test database may be re-created."""
    from django.db import connection

    with connection.cursor() as cursor:
        backend = recorded_backend(cursor)
    return backend.strategy if backend else None


def rollups_mark_dirty(ranges: dict) -> None:
    """Inside the ingest transaction: remember which ranges the plain rollups must recompute."""
    if strategy() != StorageStrategy.PLAIN or not ranges:
        return
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {DIRTY_TABLE} (sensor_id, start_time, end_time) VALUES (%s, %s, %s)",
            [(sensor_id, start, end) for sensor_id, (start, end) in ranges.items()],
        )


def rollups_refresh() -> int:
    """Plain PostgreSQL: recompute the rollup buckets of every range marked dirty. Returns the sensors refreshed.

    Runs under an advisory lock (a second concurrent call returns 0 at once); claimed marks are deleted in the same
    transaction that rewrites the buckets, so a crash leaves them for the next run.
    """
    from django.db import connection, transaction

    if strategy() != StorageStrategy.PLAIN:
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        if not _scalar(cursor, "SELECT pg_try_advisory_xact_lock(%s)", [ROLLUP_LOCK]):
            return 0
        cursor.execute(
            f"CREATE TEMP TABLE rollup_ranges ON COMMIT DROP AS "
            f"WITH claimed AS (DELETE FROM {DIRTY_TABLE} RETURNING sensor_id, start_time, end_time) "
            "SELECT sensor_id, min(start_time) AS lo, max(end_time) AS hi FROM claimed GROUP BY sensor_id"
        )
        refreshed = _scalar(cursor, "SELECT count(*) FROM rollup_ranges")
        for name, width in ROLLUPS.items():
            bounds = (f"date_bin(INTERVAL '{width}', g.lo, TIMESTAMPTZ '{BUCKET_ORIGIN}')",
                      f"date_bin(INTERVAL '{width}', g.hi, TIMESTAMPTZ '{BUCKET_ORIGIN}') + INTERVAL '{width}'")
            cursor.execute(
                f"DELETE FROM {name} r USING rollup_ranges g WHERE r.sensor_id = g.sensor_id "
                f"AND r.bucket >= {bounds[0]} AND r.bucket < {bounds[1]}"
            )
            cursor.execute(
                f"INSERT INTO {name} (sensor_id, bucket, n, total, vmin, vmax) "
                f"SELECT r.sensor_id, date_bin(INTERVAL '{width}', r.time, TIMESTAMPTZ '{BUCKET_ORIGIN}'), count(*), "
                f"sum(r.value), min(r.value), max(r.value) FROM {READINGS_TABLE} r JOIN rollup_ranges g "
                f"ON r.sensor_id = g.sensor_id AND r.time >= {bounds[0]} AND r.time < {bounds[1]} GROUP BY 1, 2"
            )
    return refreshed


def readings_drop_expired(cursor, *, older_than) -> int:
    """TimescaleDB: drop whole chunks older than ``older_than`` (fast); returns the readings they held.

    drop_chunks only removes chunks entirely before ``older_than``, so the rows counted are exactly the rows dropped.
    No-op on plain PostgreSQL, where the caller's DELETE does the work."""
    if strategy() != StorageStrategy.TIMESCALEDB:
        return 0
    from psycopg import sql

    cursor.execute(
        "SELECT chunk_schema, chunk_name FROM timescaledb_information.chunks "
        "WHERE hypertable_name = %s AND range_end <= %s",
        [READINGS_TABLE, older_than],
    )
    rows = 0
    for schema, name in cursor.fetchall():
        cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name)))
        rows += cursor.fetchone()[0]
    cursor.execute("SELECT count(*) FROM drop_chunks(%s, older_than => %s)", [READINGS_TABLE, older_than])
    return rows
