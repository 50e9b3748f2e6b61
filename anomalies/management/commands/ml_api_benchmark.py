"""Latency of POST /api/v1/detect_anomaly (100 points) or /api/v1/predict (24 steps) under load: gunicorn as
`make run` starts it, locust at a fixed rate. Users start over 5 s and the figures count from when all are running
(--reset-stats): steady state at the given rate, not 100 clients' first requests arriving in the same instant.

Measures and reports; asserts nothing. Its sensor, model and key are removed at the end."""
import csv
import math
import os
import random
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from anomalies.models import AnomalyModel
from anomalies.services import anomaly_model_train
from forecasting.models import ForecastModel
from forecasting.services import forecast_model_train
from ingestion.models import Sensor, SensorReading, Site
from ingestion.parsing import Columns
from ingestion.services import readings_ingest
from sensorhub.apikeys import api_key_create
from sensorhub.benchmarking import default_web_layout, gunicorn_server
from sensorhub.models import ApiKey

ROOT = Path(settings.BASE_DIR)
SLUG = "bench-ml-api"


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--rate", type=int, default=100, help="requests per second (one per simulated user)")
        parser.add_argument("--seconds", type=int, default=30)
        workers, threads = default_web_layout()
        parser.add_argument("--web-workers", type=int, default=workers, help="gunicorn processes (as make run)")
        parser.add_argument("--web-threads", type=int, default=threads, help="gunicorn threads per process (as make run)")
        parser.add_argument("--endpoint", choices=["detect", "predict"], default="detect")

    def handle(self, *args, rate, seconds, web_workers, web_threads, endpoint, **options):
        self._cleanup()
        site, _ = Site.objects.get_or_create(slug="benchmark", defaults={"name": "Benchmark (temporary)"})
        sensor = Sensor.objects.create(slug=SLUG, name=SLUG, type="other", unit="", site=site)
        end = timezone.now() - timedelta(minutes=5)
        rng = random.Random(1)
        # 2,000 readings a minute apart for the detector; 10 days every 10 minutes for the forecaster.
        n, every = (2000, 1) if endpoint == "detect" else (1440, 10)
        times = [(end - timedelta(minutes=every * (n - i))).isoformat() for i in range(n)]
        values = [20 + 2 * math.sin(2 * math.pi * every * i / 1440) + rng.gauss(0, 0.5) for i in range(n)]
        readings_ingest(columns=Columns(sensors=[SLUG] * n, times=times, values=values))
        if endpoint == "detect":
            anomaly_model_train(sensor=sensor)
        elif forecast_model_train(sensor=sensor) is None:
            raise CommandError("the benchmark sensor's forecaster did not train")
        key, secret = api_key_create(name="ml benchmark", scopes=["ml:read"])
        out_dir = ROOT / "var" / "locust"
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            with gunicorn_server(workers=web_workers, threads=web_threads, rate_limits="ml:read=1000000/m") as port:
                result = subprocess.run(
                    [str(Path(sys.executable).parent / "locust"), "-f", str(ROOT / "scripts" / "locustfile.py"),
                     "DetectAnomalyUser" if endpoint == "detect" else "PredictUser",
                     "--headless", "--users", str(rate), "--spawn-rate", str(max(1, rate // 5)), "--reset-stats", "--run-time", f"{seconds}s",
                     "--host", f"http://127.0.0.1:{port}", "--csv", str(out_dir / endpoint), "--only-summary"],
                    env={**os.environ, "BENCH_API_KEY": secret, "BENCH_SENSOR": SLUG}, capture_output=True,
                    text=True)
            if result.returncode not in (0, 1):  # 1: some requests failed, reported below
                raise CommandError(f"locust failed:\n{result.stderr[-2000:]}")
            stats = next(row for row in csv.DictReader(open(out_dir / f"{endpoint}_stats.csv")) if row["Name"] != "Aggregated")
        finally:
            ApiKey.objects.filter(pk=key.pk).delete()
            self._cleanup()
        self.stdout.write(
            f"{'POST /api/v1/detect_anomaly with 100 points' if endpoint == 'detect' else 'POST /api/v1/predict, 24 steps'}, {rate} users × 1 request/s for {seconds} s, gunicorn "
            f"{web_workers} workers × {web_threads} threads on {os.cpu_count()} cores:\n"
            f"  requests {stats['Request Count']}, failures {stats['Failure Count']}, "
            f"achieved {float(stats['Requests/s']):.1f} req/s\n"
            f"  latency P50 {stats['50%']} ms, P95 {stats['95%']} ms, P99 {stats['99%']} ms, max "
            f"{float(stats['Max Response Time']):.0f} ms"
        )

    def _cleanup(self):
        AnomalyModel.objects.filter(sensor__slug=SLUG).delete()
        ForecastModel.objects.filter(sensor__slug=SLUG).delete()
        SensorReading.objects.filter(sensor__slug=SLUG).delete()
        Sensor.objects.filter(slug=SLUG).delete()

