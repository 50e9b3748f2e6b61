"""Load for the ML endpoints, driven by `manage.py ml_api_benchmark` (which sets the environment below and names
the user class: DetectAnomalyUser or PredictUser).

Each simulated client waits a random 0–2 s (mean 1 s) between requests, so N users give about N requests a second
arriving independently, as real clients' do. With a fixed 1 s pace (constant_throughput) locust kept all users in
step: the N requests came as one burst each second, and the figures measured that burst's queue (for /predict at 20
users: P50 54 ms with the fixed pace, 10 ms with random waits). FastHttpUser (geventhttpclient) keeps the load
generator's own CPU use low: it shares the 2 cores with the server."""
import os
import random
from datetime import UTC, datetime, timedelta

from locust import FastHttpUser, between, task

KEY = os.environ["BENCH_API_KEY"]
SENSOR = os.environ["BENCH_SENSOR"]
POINTS = int(os.environ.get("BENCH_POINTS", "100"))


class DetectAnomalyUser(FastHttpUser):
    wait_time = between(0, 2)

    @task
    def detect(self):
        start = datetime.now(UTC)
        values = [{"time": (start + timedelta(minutes=i)).isoformat(), "value": 20 + random.gauss(0, 0.5)}
                  for i in range(POINTS)]
        self.client.post("/api/v1/detect_anomaly", json={"sensor": SENSOR, "values": values},
                         headers={"X-API-Key": KEY}, name="/api/v1/detect_anomaly (100 points)")


class PredictUser(FastHttpUser):
    wait_time = between(0, 2)

    @task
    def predict(self):
        self.client.post("/api/v1/predict", json={"sensor": SENSOR, "horizon": 24},
                         headers={"X-API-Key": KEY}, name="/api/v1/predict (24 steps)")
