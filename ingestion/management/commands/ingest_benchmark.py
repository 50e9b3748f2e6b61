"""Ingest and query benchmark against the real server (gunicorn, production settings) and the real database.

Reports readings/s end to end and batch latency, the raw COPY rate into the same table as the ceiling, and the time
to answer a 30-day, 1-minute chart. It measures; it asserts nothing. Its data is removed at the end.
"""
from __future__ import annotations

import http.client
import json
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection

from ingestion.models import Sensor, SensorReading, Site
from sensorhub.apikeys import api_key_create
from sensorhub.benchmarking import default_web_layout, gunicorn_server
from sensorhub.models import ApiKey
from sensorhub.storage import rollups_refresh

BENCH_SITE = "benchmark"
ROOT = Path(settings.BASE_DIR)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--readings", type=int, default=1_000_000)
        parser.add_argument("--batch", type=int, default=5_000)
        parser.add_argument("--clients", type=int, default=4)
        parser.add_argument("--sensors", type=int, default=100)
        workers, threads = default_web_layout()
        parser.add_argument("--web-workers", type=int, default=workers, help="gunicorn processes (as make run)")
        parser.add_argument("--web-threads", type=int, default=threads, help="gunicorn threads per process (as make run)")
        parser.add_argument("--query-repeats", type=int, default=20)
        parser.add_argument("--json", dest="json_out", help="Also write the results to this JSON file.")

    def handle(self, *args, readings, batch, clients, sensors, web_workers, web_threads, query_repeats, json_out,
               **options):
        self._cleanup()
        site = Site.objects.create(slug=BENCH_SITE, name="Benchmark (temporary)")
        slugs = [f"bench-{i:04d}" for i in range(sensors)]
        Sensor.objects.bulk_create([Sensor(slug=s, name=s, type="other", unit="", site=site) for s in slugs])
        key, secret = api_key_create(name="benchmark", scopes=["readings:write", "readings:read"])
        results = {"machine": {"cores": os.cpu_count()}, "web_workers": web_workers, "web_threads": web_threads,
                   "clients": clients, "batch": batch, "readings": readings}
        limits = "readings:write=1000000/m,readings:read=1000000/m"
        try:
            with gunicorn_server(workers=web_workers, threads=web_threads, rate_limits=limits) as port:
                results["ingest"] = self._ingest(port, secret, slugs, readings, batch, clients)
                results["copy_ceiling"] = self._copy_ceiling(slugs, readings)
                results["ratio_to_copy"] = round(results["ingest"]["readings_per_s"]
                                                 / results["copy_ceiling"]["readings_per_s"], 3)
                results["query_30d_1m"] = self._query(port, secret, slugs[0], query_repeats)
        finally:
            ApiKey.objects.filter(pk=key.pk).delete()
            self._cleanup()
        self._report(results)
        if json_out:
            Path(json_out).write_text(json.dumps(results, indent=2))

    # --- pieces ---------------------------------------------------------------------------------------------------

    def _bodies(self, slugs, readings, batch, start):
        """Pre-built request bodies, so the client's own JSON encoding is not what gets measured."""
        bodies = []
        step = timedelta(seconds=1)
        for offset in range(0, readings, batch):
            n = min(batch, readings - offset)
            times, sensors, values = [], [], []
            for i in range(offset, offset + n):
                sensors.append(slugs[i % len(slugs)])
                times.append((start + step * (i // len(slugs))).isoformat())
                values.append(round(20 + (i % 97) * 0.1, 3))
            bodies.append(json.dumps({"sensor": sensors, "time": times, "value": values}).encode())
        return bodies

    def _ingest(self, port, secret, slugs, readings, batch, clients) -> dict:
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=20)
        bodies = self._bodies(slugs, readings, batch, start)
        latencies: list[float] = []
        accepted = [0]
        lock = threading.Lock()
        local = threading.local()

        def send(body: bytes) -> None:
            if not hasattr(local, "conn"):
                local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            began = time.perf_counter()
            local.conn.request("POST", "/api/v1/readings/", body=body, headers={
                "Authorization": f"Bearer {secret}", "Content-Type": "application/json"})
            response = local.conn.getresponse()
            payload = json.loads(response.read())
            elapsed = time.perf_counter() - began
            if response.status != 200:
                raise RuntimeError(f"batch failed with {response.status}: {str(payload)[:300]}")
            with lock:
                latencies.append(elapsed)
                accepted[0] += payload["accepted"]

        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            list(pool.map(send, bodies))
        wall = time.perf_counter() - began
        stored = SensorReading.objects.filter(sensor__site__slug=BENCH_SITE).count()
        return {"seconds": round(wall, 2), "readings_per_s": round(accepted[0] / wall), "accepted": accepted[0],
                "stored": stored, "batch_p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
                "batch_p95_ms": round(percentile(latencies, 0.95) * 1000, 1)}

    def _copy_ceiling(self, slugs, readings) -> dict:
        """COPY the same number of rows straight into the readings table: the fastest any ingest path could be."""
        ids = list(Sensor.objects.filter(slug__in=slugs).order_by("slug").values_list("id", flat=True))
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=40)
        rows = [(ids[i % len(ids)], start + timedelta(seconds=i // len(ids)), 20 + (i % 97) * 0.1)
                for i in range(readings)]
        began = time.perf_counter()
        with connection.cursor() as cursor:
            with cursor.copy("COPY ingestion_sensorreading (sensor_id, time, value) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "timestamptz", "float8"])
                for row in rows:
                    copy.write_row(row)
        wall = time.perf_counter() - began
        return {"seconds": round(wall, 2), "readings_per_s": round(readings / wall)}

    def _query(self, port, secret, slug, repeats) -> dict:
        """A 30-day chart at 1-minute buckets for one sensor with one reading a minute (43,200 buckets)."""
        sensor = Sensor.objects.get(slug=slug)
        end = datetime(2026, 1, 31, tzinfo=UTC)
        start = end - timedelta(days=30)
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM ingestion_sensorreading WHERE sensor_id = %s", [sensor.pk])
            with cursor.copy("COPY ingestion_sensorreading (sensor_id, time, value) FROM STDIN") as copy:
                for i in range(43_200):
                    copy.write_row((sensor.pk, start + timedelta(minutes=i), 20 + (i % 60) * 0.05))
            cursor.execute("INSERT INTO ingestion_rollup_dirty VALUES (%s, %s, %s)", [sensor.pk, start, end])
        rollups_refresh()
        # Steady state: autovacuum would have set the visibility map and statistics of a rollup written minutes ago;
        # a freshly written one cannot use index-only scans yet. Stated in docs/PERFORMANCE.md.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE ingestion_reading_1m")
        path = (f"/api/v1/sensors/{slug}/readings/?bucket=1m&agg=avg,min,max&max_points=50000"
                f"&start={start.isoformat().replace('+', '%2B')}&end={end.isoformat().replace('+', '%2B')}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        timings, points = [], None
        for _ in range(repeats + 1):
            began = time.perf_counter()
            conn.request("GET", path, headers={"Authorization": f"Bearer {secret}"})
            response = conn.getresponse()
            body = json.loads(response.read())
            timings.append(time.perf_counter() - began)
            points = body.get("points")
        timings = timings[1:]  # the first request warms the worker's connection and caches
        return {"buckets": points, "source": body.get("source"), "p50_ms": round(statistics.median(timings) * 1000, 1),
                "p95_ms": round(percentile(timings, 0.95) * 1000, 1), "repeats": repeats}

    def _cleanup(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM ingestion_sensorreading r USING ingestion_sensor s, ingestion_site t "
                           "WHERE r.sensor_id = s.id AND s.site_id = t.id AND t.slug = %s", [BENCH_SITE])
            for table in ("ingestion_reading_1m", "ingestion_reading_1h", "ingestion_rollup_dirty"):
                cursor.execute(f"DELETE FROM {table} x USING ingestion_sensor s, ingestion_site t "
                               "WHERE x.sensor_id = s.id AND s.site_id = t.id AND t.slug = %s", [BENCH_SITE])
        Sensor.objects.filter(site__slug=BENCH_SITE).delete()
        Site.objects.filter(slug=BENCH_SITE).delete()

    def _report(self, r: dict) -> None:
        i, c, q = r["ingest"], r["copy_ceiling"], r["query_30d_1m"]
        self.stdout.write(
            f"Ingest: {r['readings']:,} readings in {r['batch']:,}-reading batches from {r['clients']} clients, "
            f"gunicorn with {r['web_workers']} workers × {r['web_threads']} threads on {r['machine']['cores']} cores\n"
            f"  end to end      {i['readings_per_s']:>10,} readings/s   ({i['seconds']} s; accepted {i['accepted']:,}, "
            f"stored {i['stored']:,})\n"
            f"  batch latency   P50 {i['batch_p50_ms']} ms, P95 {i['batch_p95_ms']} ms\n"
            f"  raw COPY        {c['readings_per_s']:>10,} readings/s   ({c['seconds']} s, same table)\n"
            f"  ratio           {r['ratio_to_copy']:.2f} of raw COPY\n"
            f"Query: 30 days at 1-minute buckets ({q['buckets']:,} buckets, from {q['source']}), "
            f"{q['repeats']} requests: P50 {q['p50_ms']} ms, P95 {q['p95_ms']} ms"
        )
