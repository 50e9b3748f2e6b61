import json

import pytest
from django.db import connection

from sensorhub.models import StorageBackend
from sensorhub.storage import timescaledb_version

pytestmark = pytest.mark.django_db


def extension_present() -> bool:
    with connection.cursor() as cursor:
        return bool(timescaledb_version(cursor))


def test_the_migration_records_one_storage_strategy_matching_the_server():
    backend = StorageBackend.objects.get()
    expected = "timescaledb" if extension_present() else "plain"
    assert backend.strategy == expected
    assert backend.postgres_version
    assert backend.reason


def test_plain_postgresql_gets_a_brin_index_on_time():
    if extension_present():
        pytest.skip("TimescaleDB is present: the plain-PostgreSQL layout is not used")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'ingestion_sensorreading' AND indexdef ILIKE '%brin%'"
        )
        [(indexdef,)] = cursor.fetchall()
    assert "(\"time\")" in indexdef or "(time)" in indexdef


@pytest.mark.timescaledb
def test_timescaledb_makes_readings_a_hypertable_with_one_day_chunks():
    if not extension_present():
        pytest.skip("the TimescaleDB extension is not installed on this PostgreSQL server (plain PostgreSQL path)")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT d.time_interval FROM timescaledb_information.dimensions d "
            "WHERE d.hypertable_name = 'ingestion_sensorreading' AND d.column_name = 'time'"
        )
        [(interval,)] = cursor.fetchall()
    assert interval.days == 1


def test_a_flushed_record_is_restored_from_the_live_schema():
    from sensorhub.storage import current_storage

    expected = StorageBackend.objects.get().strategy
    StorageBackend.objects.all().delete()
    report = current_storage()
    assert report["strategy"] == expected
    assert "re-detected" in report["reason"]
    assert StorageBackend.objects.get().strategy == expected


@pytest.mark.timescaledb
def test_timescaledb_compresses_after_seven_days_and_keeps_continuous_aggregates():
    if not extension_present():
        pytest.skip("the TimescaleDB extension is not installed on this PostgreSQL server (plain PostgreSQL path)")
    with connection.cursor() as cursor:
        cursor.execute("SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates "
                       "ORDER BY view_name")
        assert cursor.fetchall() == [("ingestion_reading_1h", False), ("ingestion_reading_1m", False)]
        cursor.execute("SELECT proc_name, hypertable_name, config FROM timescaledb_information.jobs "
                       "WHERE proc_name IN ('policy_compression', 'policy_refresh_continuous_aggregate')")
        jobs = cursor.fetchall()
        cursor.execute("SELECT segmentby_column_index IS NOT NULL FROM timescaledb_information.compression_settings "
                       "WHERE hypertable_name = 'ingestion_sensorreading' AND attname = 'sensor_id'")
        assert cursor.fetchone() == (True,)
    compression = [json.loads(config) for name, table, config in jobs if name == "policy_compression"]
    assert compression and compression[0]["compress_after"] == "7 days"
    assert sum(name == "policy_refresh_continuous_aggregate" for name, _, _ in jobs) == 2


def test_plain_postgresql_keeps_rollup_tables_of_the_same_shape():
    if extension_present():
        pytest.skip("TimescaleDB is present: rollups are continuous aggregates there")
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name, string_agg(column_name, ',' ORDER BY ordinal_position) "
                       "FROM information_schema.columns WHERE table_name LIKE 'ingestion_reading_1_' "
                       "GROUP BY table_name ORDER BY table_name")
        assert cursor.fetchall() == [("ingestion_reading_1h", "sensor_id,bucket,n,total,vmin,vmax"),
                                     ("ingestion_reading_1m", "sensor_id,bucket,n,total,vmin,vmax")]
