import csv
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from ingestion.demo import demo_sensors, series
from ingestion.models import Sensor, SensorReading
from tests.conftest import ROOT

END = datetime(2026, 12, 1, tzinfo=UTC)


def generate_files(tmp_path, name="a"):
    readings, labels = tmp_path / f"{name}-data.csv", tmp_path / f"{name}-labels.csv"
    call_command("generate_demo_data", no_db=True, end=END, csv=readings, labels=labels, stdout=open("/dev/null", "w"))
    return readings, labels


def test_the_committed_demo_files_are_what_the_generator_makes(tmp_path):
    readings, labels = generate_files(tmp_path)
    assert readings.read_bytes() == (ROOT / "data" / "sensor_data.csv").read_bytes(), "run make demo-data"
    assert labels.read_bytes() == (ROOT / "data" / "anomaly_labels.csv").read_bytes(), "run make demo-data"


def test_the_demo_is_deterministic_and_varied(tmp_path):
    first, first_labels = generate_files(tmp_path, "a")
    second, second_labels = generate_files(tmp_path, "b")
    assert first.read_bytes() == second.read_bytes() and first_labels.read_bytes() == second_labels.read_bytes()
    rows = list(csv.DictReader(open(first)))
    per_sensor = {}
    for row in rows:
        per_sensor.setdefault(row["sensor"], []).append(row)
    assert len(per_sensor) == 15 and min(len(v) for v in per_sensor.values()) >= 500
    assert first.stat().st_size < 10_000_000
    kinds = {row["kind"] for row in csv.DictReader(open(first_labels))}
    assert kinds == {"spike", "level_shift", "stuck", "variance_burst", "drift"}
    types = {sensor.profile.type for sensor in demo_sensors(15)}
    assert len(types) >= 6


def test_a_sensor_series_has_irregular_times_gaps_and_its_labelled_anomalies():
    sensor = demo_sensors(15)[0]
    start = END - timedelta(days=30)
    readings, labels = series(sensor, start=start, end=END, seed=42)
    deltas = [(b[0] - a[0]).total_seconds() for a, b in zip(readings, readings[1:])]
    interval = sensor.profile.interval_min * 60
    assert len(set(deltas)) > 10, "timestamps should be irregular"
    assert max(deltas) > 3 * interval, "there should be missing stretches"
    stuck = [label for label in labels if label.kind == "stuck"]
    if stuck:
        inside = [v for t, v in readings if stuck[0].start <= t < stuck[0].end]
        assert len(set(inside)) == 1, "a stuck sensor repeats one value"
    low, high = sensor.profile.valid
    assert all(low <= v <= high for _, v in readings)


@pytest.mark.django_db
def test_it_writes_through_the_ingestion_service(tmp_path):
    readings = tmp_path / "data.csv"
    call_command("generate_demo_data", sensors=3, days=2, end=datetime.now(UTC), csv=readings,
                 stdout=open("/dev/null", "w"))
    rows = sum(1 for _ in open(readings)) - 1
    assert Sensor.objects.count() == 3
    assert SensorReading.objects.count() == rows > 500
    call_command("generate_demo_data", sensors=3, days=2, if_empty=True, stdout=open("/dev/null", "w"))
    assert SensorReading.objects.count() == rows
