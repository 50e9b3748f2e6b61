import math
import random
from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from ingestion.choices import SensorType
from ingestion.models import Sensor, Site
from ingestion.parsing import Columns
from ingestion.services import readings_ingest

DEMO_SITE = "demo-plant"
# slug, name, type, unit, base level, daily amplitude, noise, valid range
DEMO_SENSORS = [
    ("sensor-001", "Boiler room temperature", SensorType.TEMPERATURE, "°C", 21.0, 3.0, 0.3, (-40, 125)),
    ("sensor-002", "Boiler room humidity", SensorType.HUMIDITY, "%", 45.0, 8.0, 1.0, (0, 100)),
    ("sensor-003", "Main line pressure", SensorType.PRESSURE, "hPa", 1013.0, 2.0, 0.5, (800, 1200)),
    ("sensor-004", "Pump P1 vibration", SensorType.VIBRATION, "mm/s", 2.5, 0.6, 0.2, (0, 50)),
    ("sensor-005", "Feeder power", SensorType.POWER, "kW", 35.0, 12.0, 1.5, (0, 500)),
]


class Command(BaseCommand):
    help = "Load a small deterministic demo: one site, a few sensors and some days of readings."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=3)
        parser.add_argument("--interval-minutes", type=int, default=5)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when any sensor exists.")

    def handle(self, *args, days, interval_minutes, seed, if_empty, **options):
        if if_empty and Sensor.objects.exists():
            self.stdout.write("Sensors exist; demo data not loaded.")
            return
        rng = random.Random(seed)
        end = timezone.now().replace(second=0, microsecond=0)
        step = timedelta(minutes=interval_minutes)
        count = int(timedelta(days=days) / step)
        with transaction.atomic():
            site, _ = Site.objects.get_or_create(slug=DEMO_SITE, defaults={"name": "Demo plant"})
            columns = Columns()
            for slug, name, kind, unit, base, amplitude, noise, (low, high) in DEMO_SENSORS:
                Sensor.objects.get_or_create(
                    slug=slug,
                    defaults={"name": name, "type": kind, "unit": unit, "site": site, "expected_interval": step,
                              "valid_min": low, "valid_max": high},
                )
                for i in range(count):
                    at = end - step * (count - i)
                    day_phase = 2 * math.pi * (at.hour * 60 + at.minute) / 1440
                    value = base + amplitude * math.sin(day_phase - math.pi / 2) + rng.gauss(0, noise)
                    columns.sensors.append(slug)
                    columns.times.append(at.isoformat())
                    columns.values.append(round(value, 3))
            # Through the real ingestion service, so validation, rollups and scoring see the demo like device data.
            result = readings_ingest(columns=columns)
        self.stdout.write(self.style.SUCCESS(
            f"Demo loaded: site {DEMO_SITE!r}, {len(DEMO_SENSORS)} sensors, {result.body['accepted']} readings."
        ))
