"""Load for the ML endpoints, driven by `manage.py ml_api_benchmark` (which sets the environment below and names
the user class: DetectAnomalyUser or PredictUser).

Each simulated client sends one request a second, so N users give N requests a second."""
import os
import random
from datetime import UTC, datetime, timedelta

from locust import HttpUser, constant_throughput, task

KEY = os.environ["BENCH_API_KEY"]
SENSOR = os.environ["BENCH_SENSOR"]
POINTS = int(os.environ.get("BENCH_POINTS", "100"))


class DetectAnomalyUser(HttpUser):
    wait_time = constant_throughput(1)

    @task
    def detect(self):
        start = datetime.now(UTC)
        values = [{"time": (start + timedelta(minutes=i)).isoformat(), "value": 20 + random.gauss(0, 0.5)}
                  for i in range(POINTS)]
        self.client.post("/api/v1/detect_anomaly", json={"sensor": SENSOR, "values": values},
                         headers={"X-API-Key": KEY}, name="/api/v1/detect_anomaly (100 points)")


class PredictUser(HttpUser):
    wait_time = constant_throughput(1)

    @task
    def predict(self):
        self.client.post("/api/v1/predict", json={"sensor": SENSOR, "horizon": 24},
                         headers={"X-API-Key": KEY}, name="/api/v1/predict (24 steps)")
