"""GET /api/v1/sensors/{id}/readings/: raw rows, buckets, rollups, automatic bucket choice and CSV."""
import csv
import io
import statistics
from datetime import UTC, datetime, timedelta

import pytest

from ingestion.parsing import Columns
from ingestion.services import readings_ingest
from sensorhub.choices import StorageStrategy
from sensorhub.storage import rollups_refresh, strategy
from tests.factories import make_api_key, make_sensor

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 30, tzinfo=UTC)


@pytest.fixture
def sensor():
    return make_sensor(slug="boiler", expected_interval=timedelta(minutes=1))


@pytest.fixture
def reader():
    return make_api_key("readings:read")


def ingest(slug, start, values, step=timedelta(minutes=1)):
    columns = Columns(sensors=[slug] * len(values), times=[(start + step * i).isoformat() for i in range(len(values))],
                      values=list(values))
    return readings_ingest(columns=columns).body


def get(client, key, slug, **params):
    return client.get(f"/api/v1/sensors/{slug}/readings/", params, headers={"X-API-Key": key})


VALUES = [float((i * 37) % 101) for i in range(180)]  # three hours of one-minute readings, no pattern to luck into


def expected_buckets(width_minutes: int) -> dict:
    chunks = [VALUES[i:i + width_minutes] for i in range(0, len(VALUES), width_minutes)]
    return {"avg": [statistics.fmean(c) for c in chunks], "min": [min(c) for c in chunks],
            "max": [max(c) for c in chunks], "count": [len(c) for c in chunks]}


def test_it_returns_raw_readings_in_time_order(client, sensor, reader):
    ingest("boiler", T0, VALUES)
    body = get(client, reader, "boiler", start=T0.isoformat(), end=(T0 + timedelta(minutes=10)).isoformat(),
               bucket="raw").json()
    assert body["bucket"] == "raw" and body["value"] == VALUES[:10]
    assert body["time"][0] == "2026-11-30T00:00:00+00:00"


@pytest.mark.parametrize("refresh", [False, True], ids=["from-raw-and-pending-marks", "from-rollups"])
def test_buckets_match_the_raw_data_whether_or_not_rollups_are_fresh(client, sensor, reader, refresh):
    ingest("boiler", T0, VALUES)
    if refresh and strategy() == StorageStrategy.PLAIN:  # TimescaleDB refreshes by policy, outside transactions
        assert rollups_refresh() == 1
    body = get(client, reader, "boiler", start=T0.isoformat(), end=(T0 + timedelta(hours=3)).isoformat(),
               bucket="15m", agg="avg,min,max,count").json()
    expected = expected_buckets(15)
    assert body["points"] == 12
    assert body["count"] == expected["count"] and body["min"] == expected["min"] and body["max"] == expected["max"]
    assert body["avg"] == pytest.approx(expected["avg"])
    assert body["source"] == "ingestion_reading_1m"


def test_late_data_after_a_refresh_is_counted_exactly_once(client, sensor, reader):
    ingest("boiler", T0, VALUES[:120])
    rollups_refresh()
    ingest("boiler", T0 + timedelta(minutes=120), VALUES[120:])  # not yet in the rollups
    body = get(client, reader, "boiler", start=T0.isoformat(), end=(T0 + timedelta(hours=3)).isoformat(),
               bucket="1h", agg="count,avg").json()
    assert body["count"] == [60, 60, 60]
    assert body["avg"] == pytest.approx(expected_buckets(60)["avg"])


def test_p95_is_computed_from_raw_rows(client, sensor, reader):
    ingest("boiler", T0, VALUES)
    body = get(client, reader, "boiler", start=T0.isoformat(), end=(T0 + timedelta(hours=1)).isoformat(),
               bucket="1h", agg="p95").json()
    ordered = sorted(VALUES[:60])
    rank = 0.95 * 59
    expected = ordered[int(rank)] + (ordered[int(rank) + 1] - ordered[int(rank)]) * (rank - int(rank))
    assert body["source"] == "raw" and body["p95"] == [pytest.approx(expected)]


def test_it_chooses_a_coarser_bucket_when_the_range_exceeds_max_points(client, sensor, reader):
    ingest("boiler", T0, VALUES)
    body = get(client, reader, "boiler", start=T0.isoformat(), end=(T0 + timedelta(hours=3)).isoformat(),
               max_points=20).json()
    assert (body["bucket"], body["auto_bucket"]) == ("15m", True)
    assert sum(body["avg"]) == pytest.approx(sum(expected_buckets(15)["avg"]))


def test_bad_query_parameters_are_400_with_the_reason(client, sensor, reader):
    assert "unknown aggregate" in str(get(client, reader, "boiler", agg="median").json())
    assert get(client, reader, "boiler", bucket="7m").status_code == 400
    assert "before end" in str(get(client, reader, "boiler", start="2026-12-02T00:00:00Z",
                                   end="2026-12-01T00:00:00Z").json())


def test_csv_streams_every_raw_reading(client, sensor, reader):
    ingest("boiler", T0, VALUES)
    response = get(client, reader, "boiler", start=T0.isoformat(), end=(T0 + timedelta(hours=3)).isoformat(),
                   format="csv")
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["sensor", "time", "value"]
    assert [float(r[2]) for r in rows[1:]] == VALUES


def test_a_key_limited_to_one_sensor_cannot_read_another(client, sensor):
    other = make_sensor(slug="other")
    key = make_api_key("readings:read", sensors=[other])
    assert get(client, key, "boiler").status_code == 404
    assert get(client, key, "other").status_code == 200
    listed = client.get("/api/v1/sensors/", headers={"X-API-Key": key}).json()["results"]
    assert [s["slug"] for s in listed] == ["other"]
