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
