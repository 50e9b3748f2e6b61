import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from ingestion.demo import generate
from ingestion.models import Sensor, Site
from ingestion.parsing import Columns
from ingestion.services import readings_ingest

DEMO_SITE = "demo-plant"
CHUNK = 50_000  # the API's batch limit: the demo goes through ingestion exactly as device data does


def _utc(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise CommandError(f"--end {value!r} has no UTC offset; add Z, e.g. 2026-12-01T00:00:00Z")
    return parsed.astimezone(UTC)


class Command(BaseCommand):
    help = (
        "Generate the demo: sensors of several types with seasonality, trends, noise, gaps, irregular timestamps, "
        "labelled anomalies (spike, level_shift, stuck, variance_burst) and drift periods. Writes the readings "
        "through the ingestion service and/or to CSV files. Same --seed and --end, same data."
    )

    def add_arguments(self, parser):
        parser.add_argument("--sensors", type=int, default=15)
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--end", type=_utc, help="Last instant of the demo (default: now, to the hour).")
        parser.add_argument("--csv", type=Path, help="Also write the readings here (sensor,time,value).")
        parser.add_argument("--labels", type=Path, help="Also write the anomaly labels here.")
        parser.add_argument("--no-db", action="store_true", help="Only write the CSV files.")
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when any sensor exists.")

    def handle(self, *args, sensors, days, seed, end, csv, labels, no_db, if_empty, **options):
        if sensors < 1 or days < 1:
            raise CommandError("--sensors and --days must be at least 1")
        if no_db and not (csv or labels):
            raise CommandError("--no-db writes nothing without --csv or --labels")
        if if_empty and not no_db and Sensor.objects.exists():
            self.stdout.write("Sensors exist; demo data not loaded.")
            return
        end = end or timezone.now().replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(days=days)
        rows, all_labels, accepted = [], [], 0
        progress = tqdm(generate(sensors=sensors, start=start, end=end, seed=seed), total=sensors, unit="sensor",
                        desc="demo", disable=None)
        for sensor, readings, sensor_labels in progress:
            if not no_db:
                accepted += self._ingest(sensor, readings)
            rows.extend((sensor.slug, t, v) for t, v in readings)
            all_labels.extend(sensor_labels)
        if csv:
            self._write_readings(csv, rows)
        if labels:
            self._write_labels(labels, all_labels)
        where = "" if no_db else f", {accepted:,} stored"
        self.stdout.write(self.style.SUCCESS(
            f"Demo: {sensors} sensors, {days} days to {end.isoformat()}, {len(rows):,} readings{where}, "
            f"{len(all_labels)} labelled events."
        ))

    def _ingest(self, sensor, readings) -> int:
        profile = sensor.profile
        with transaction.atomic():
            site, _ = Site.objects.get_or_create(slug=DEMO_SITE, defaults={"name": "Demo plant"})
            Sensor.objects.get_or_create(slug=sensor.slug, defaults={
                "name": sensor.name, "type": profile.type, "unit": profile.unit, "site": site,
                "expected_interval": timedelta(minutes=profile.interval_min),
                "valid_min": profile.valid[0], "valid_max": profile.valid[1],
            })
        accepted = 0
        for offset in range(0, len(readings), CHUNK):
            chunk = readings[offset:offset + CHUNK]
            columns = Columns(sensors=[sensor.slug] * len(chunk), times=[t.isoformat() for t, _ in chunk],
                              values=[v for _, v in chunk])
            result = readings_ingest(columns=columns)
            if result.body["rejected"]:
                first = result.body["errors"][0]
                raise CommandError(f"the ingestion service rejected demo readings: {first['reason']}")
            accepted += result.body["accepted"]
        return accepted

    def _write_readings(self, path: Path, rows) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        rows.sort(key=lambda row: (row[1], row[0]))
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["sensor", "time", "value"])
            writer.writerows((slug, t.isoformat(), repr(float(v))) for slug, t, v in rows)

    def _write_labels(self, path: Path, labels) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["sensor", "start", "end", "kind"])
            for label in sorted(labels, key=lambda label: (label.sensor, label.start)):
                writer.writerow([label.sensor, label.start.isoformat(), label.end.isoformat(), label.kind])
