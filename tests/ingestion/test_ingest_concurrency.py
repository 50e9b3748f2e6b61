"""Against the live server, from many threads at once: nothing accepted is lost and nothing is stored twice."""
import json
import random
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from ingestion.models import SensorReading
from tests.factories import make_api_key, make_sensor

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("settled_worker")]


def post(url: str, key: str, payload: dict, idempotency_key: str | None = None) -> tuple[int, dict, dict]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    request = urllib.request.Request(f"{url}/api/v1/readings/", data=json.dumps(payload).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response), dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err), dict(err.headers)


def batch(slug: str, start, minutes: range, value=lambda i: float(i)) -> dict:
    return {"readings": [{"sensor": slug, "time": (start + timedelta(minutes=i)).astimezone(UTC).isoformat(),
                          "value": value(i)} for i in minutes]}


def test_twenty_concurrent_replays_of_one_key_store_exactly_one_copy(live_server):
    sensor = make_sensor(slug="sensor-001")
    key = make_api_key("readings:write")
    payload = batch("sensor-001", timezone.now() - timedelta(hours=3), range(100))

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: post(live_server.url, key, payload, "same-batch"), range(20)))

    assert {status for status, _, _ in answers} == {200}
    assert all(body == answers[0][1] for _, body, _ in answers), "every replay must get the first answer"
    assert answers[0][1]["accepted"] == 100
    assert sum(headers.get("Idempotent-Replayed") == "true" for _, _, headers in answers) == 19
    assert SensorReading.objects.filter(sensor=sensor).count() == 100


def test_overlapping_batches_posted_concurrently_never_double_store(live_server):
    sensor = make_sensor(slug="sensor-002")
    key = make_api_key("readings:write")
    start = timezone.now() - timedelta(days=1)
    # 12 batches of 300 minutes, each starting 100 minutes after the previous: every minute is in up to 3 batches.
    batches = [batch("sensor-002", start, range(k * 100, k * 100 + 300)) for k in range(12)]

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda p: post(live_server.url, key, p), batches))

    distinct = 11 * 100 + 300
    assert sum(body["accepted"] for _, body, _ in answers) == distinct
    assert sum(body["duplicates"] for _, body, _ in answers) == 12 * 300 - distinct
    assert SensorReading.objects.filter(sensor=sensor).count() == distinct


def test_after_a_mixed_run_the_stored_count_equals_the_accepted_count(live_server):
    make_sensor(slug="mixed-a", valid_min=0, valid_max=100)
    make_sensor(slug="mixed-b", valid_min=0, valid_max=100)
    make_sensor(slug="mixed-off", active=False)
    key = make_api_key("readings:write")
    rng = random.Random(7)
    start = timezone.now() - timedelta(days=2)
    payloads = []
    for n in range(16):
        items = []
        for _ in range(200):
            slug = rng.choice(["mixed-a", "mixed-b", "mixed-off", "nobody"])
            at = start + timedelta(minutes=rng.randrange(600))  # collisions across and within batches
            value = rng.choice([rng.uniform(0, 100), rng.uniform(100, 200), "n/a", float("nan")])
            items.append({"sensor": slug, "time": at.isoformat(),
                          "value": value if value == value else "NaN"})
        payloads.append({"readings": items})

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda p: post(live_server.url, key, p, None), payloads))

    accepted = sum(body["accepted"] for _, body, _ in answers)
    assert accepted > 0
    assert all(body["accepted"] + body["duplicates"] + body["rejected"] == 200 for _, body, _ in answers)
    assert SensorReading.objects.count() == accepted


def test_scoring_is_enqueued_after_commit_and_traced_by_request_id(live_server, celery_worker_process):
    traced = make_sensor(slug="traced")
    key = make_api_key("readings:write")
    request = urllib.request.Request(
        f"{live_server.url}/api/v1/readings/",
        data=json.dumps(batch("traced", timezone.now() - timedelta(hours=1), range(3))).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", "X-Request-ID": "trace-me-42"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["X-Request-ID"] == "trace-me-42"

    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in celery_worker_process["log"].read_text().splitlines()
                 if line.startswith("{")]
        scored = [line for line in lines
                  if line.get("message") == "new readings to score" and line.get("sensor_id") == traced.pk]
        if scored:
            break
        time.sleep(0.2)
    assert len(scored) == 1, "the worker should receive exactly one scoring task for the sensor"
    assert scored[-1]["request_id"] == "trace-me-42"
    assert scored[-1]["task_id"]
