"""Live scoring: readings in, a trained detector per sensor, events out through the API."""
import json
import math
import random
import time
import urllib.request
from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from anomalies.models import Alert, AlertRule, AnomalyEvent, AnomalyModel, Delivery, NotificationChannel
from anomalies.services import anomaly_model_train, readings_score
from ingestion.parsing import Columns
from ingestion.services import readings_ingest
from sensorhub.ml.store import artifact_load
from tests.anomalies.fakes import WebhookReceiver
from tests.factories import make_api_key, make_sensor


def history(n: int, end, seed=3):
    rng = random.Random(seed)
    times = [end - timedelta(minutes=n - i) for i in range(n)]
    return times, [20 + 2 * math.sin(2 * math.pi * i / 288) + rng.gauss(0, 0.2) for i in range(n)]


def ingest(slug, times, values):
    return readings_ingest(columns=Columns(sensors=[slug] * len(times), times=[t.isoformat() for t in times],
                                           values=values)).body


@pytest.mark.django_db
def test_training_saves_a_verified_artifact_and_does_not_repeat_on_the_same_data():
    sensor = make_sensor(slug="trainee")
    ingest("trainee", *history(600, timezone.now() - timedelta(minutes=5)))
    model = anomaly_model_train(sensor=sensor)
    assert model.version == 1 and model.readings == 600 and len(model.sha256) == 64
    assert artifact_load(model.artifact, model.sha256).seen == 600
    assert anomaly_model_train(sensor=sensor) == model  # same window, same data: nothing new
    assert AnomalyModel.objects.count() == 1


@pytest.mark.django_db
def test_a_sensor_with_little_history_is_warming_up():
    sensor = make_sensor(slug="newcomer")
    ingest("newcomer", *history(50, timezone.now()))
    assert anomaly_model_train(sensor=sensor) is None
    assert readings_score(sensor=sensor) == []


@pytest.mark.django_db
def test_scoring_continues_from_the_last_scored_reading_and_records_the_spike():
    sensor = make_sensor(slug="spiky")
    now = timezone.now().replace(second=0, microsecond=0)
    ingest("spiky", *history(800, now - timedelta(minutes=30)))
    assert readings_score(sensor=sensor) == []  # trains on what is there
    times = [now - timedelta(minutes=29 - i) for i in range(25)]
    values = [20.0 + 0.1 * (i % 3) for i in range(25)]
    values[20] = 45.0
    ingest("spiky", times, values)
    events = readings_score(sensor=sensor)
    assert [e.time for e in events][:1] == [times[20]]
    event = AnomalyEvent.objects.get(sensor=sensor, time=times[20])
    assert event.kind == "spike" and "observed 45" in event.explanation and event.model.version == 1
    assert readings_score(sensor=sensor) == []  # nothing new, nothing scored twice


@pytest.mark.django_db
def test_the_readings_that_end_the_warm_up_are_scored_and_only_recent_events_alert():
    now = timezone.now().replace(second=0, microsecond=0)
    for slug, spike_at, end in (("old-spike", 600, now), ("new-spike", 799, now),
                                ("imported", 799, now - timedelta(hours=2))):
        sensor = make_sensor(slug=slug)
        times, values = history(800, end)
        values[spike_at] = 45.0
        ingest(slug, times, values)  # one batch takes the sensor past its warm-up
        events = readings_score(sensor=sensor)
        assert times[spike_at] in [e.time for e in events], slug
        assert AnomalyEvent.objects.get(sensor=sensor, time=times[spike_at]).kind == "spike"
    assert not Alert.objects.filter(sensor__slug="old-spike").exists()  # 3 hours ago: history, not an alert
    assert not Alert.objects.filter(sensor__slug="imported").exists()  # the latest of old readings: not an alert
    [alert] = Alert.objects.filter(sensor__slug="new-spike")
    assert alert.trigger_value == 45.0


@pytest.mark.django_db
def test_a_minimum_duration_lets_a_lasting_shift_alert_and_a_brief_spike_not():
    now = timezone.now().replace(second=0, microsecond=0)
    spiky, shifted = make_sensor(slug="brief"), make_sensor(slug="lasting")
    for sensor in (spiky, shifted):
        AlertRule.objects.create(sensor=sensor, min_duration=timedelta(minutes=10))
        ingest(sensor.slug, *history(800, now - timedelta(minutes=30)))
        readings_score(sensor=sensor)
    # a spike, over a reading later, scored minute by minute as it arrives
    for i in range(16):
        ingest("brief", [now - timedelta(minutes=29 - i)], [45.0 if i == 3 else 20.0 + 0.1 * (i % 3)])
        readings_score(sensor=spiky)
    assert AnomalyEvent.objects.filter(sensor=spiky).exists()  # the spike is an event...
    assert not Alert.objects.filter(sensor=spiky).exists()  # ...but not an alert
    # a shift that stays: one event, then readings that stay far from the usual range
    shift = [now - timedelta(minutes=29 - i) for i in range(16)]
    rng = random.Random(5)
    for at in shift:
        ingest("lasting", [at], [35.0 + 0.1 * rng.random()])
        readings_score(sensor=shifted)
    assert AnomalyEvent.objects.filter(sensor=shifted).count() < 3  # the detector does not repeat itself
    [alert] = Alert.objects.filter(sensor=shifted)
    assert alert.first_event_at == shift[0] and alert.trigger_value >= 35
    assert alert.status == "open" and alert.last_event_at == shift[-1]  # still going on


@pytest.mark.django_db
def test_detect_anomaly_scores_given_points_without_changing_the_live_state(client):
    sensor = make_sensor(slug="probe")
    ingest("probe", *history(600, timezone.now() - timedelta(minutes=5)))
    anomaly_model_train(sensor=sensor)
    key = make_api_key("ml:read")
    t0 = timezone.now()
    points = [{"time": (t0 + timedelta(minutes=i)).isoformat(), "value": v}
              for i, v in enumerate([20.4, 20.6, 20.5, 60, 20.3])]
    response = client.post("/api/v1/detect_anomaly", {"sensor": "probe", "values": points},
                           content_type="application/json", headers={"X-API-Key": key})
    body = response.json()
    assert response.status_code == 200, body
    assert body["model_version"] == 1
    assert [p["is_anomaly"] for p in body["points"]] == [False, False, False, True, False]
    assert "observed 60" in body["points"][3]["explanation"]
    # The shared forest is used, not consumed: the same request scores the same, and the model keeps its forest.
    again = client.post("/api/v1/detect_anomaly", {"sensor": "probe", "values": points},
                        content_type="application/json", headers={"X-API-Key": key}).json()
    assert again["points"] == body["points"]
    model = AnomalyModel.objects.get(sensor__slug="probe")
    assert artifact_load(model.artifact, model.sha256).forest is not None
    # Scored in time order, answered in the order sent.
    shuffled = client.post("/api/v1/detect_anomaly", {"sensor": "probe", "values": points[::-1]},
                           content_type="application/json", headers={"X-API-Key": key}).json()
    assert [p["time"] for p in shuffled["points"]] == [p["time"] for p in body["points"]][::-1]
    assert [p["score"] for p in shuffled["points"]] == [p["score"] for p in body["points"]][::-1]


@pytest.mark.django_db
def test_detect_anomaly_does_not_count_the_time_since_training_as_a_silence(client):
    sensor = make_sensor(slug="trained-earlier")
    now = timezone.now().replace(microsecond=0)
    ingest("trained-earlier", *history(800, now - timedelta(hours=6)))
    anomaly_model_train(sensor=sensor)
    key = make_api_key("ml:read")
    points = [{"time": (now + timedelta(minutes=i)).isoformat(), "value": v} for i, v in enumerate([20.3, 20.5])]
    body = client.post("/api/v1/detect_anomaly", {"sensor": "trained-earlier", "values": points},
                       content_type="application/json", headers={"X-API-Key": key}).json()
    assert [p["is_anomaly"] for p in body["points"]] == [False, False], body
    assert body["points"][0]["score"] < 0.1 and "silence" not in body["points"][0]["explanation"]
    assert (body["threshold"], body["alert_threshold"]) == (0.3, 0.5)  # no alert rule yet: the defaults
    AlertRule.objects.create(sensor=sensor, threshold=0.8)
    assert client.post("/api/v1/detect_anomaly", {"sensor": "trained-earlier", "values": points},
                       content_type="application/json", headers={"X-API-Key": key}).json()["alert_threshold"] == 0.8


@pytest.mark.django_db
def test_detect_anomaly_scores_stored_readings_between_start_and_end(client):
    sensor = make_sensor(slug="stored")
    now = timezone.now().replace(second=0, microsecond=0)
    ingest("stored", *history(800, now - timedelta(minutes=30)))
    anomaly_model_train(sensor=sensor)
    times = [now - timedelta(minutes=20 - i) for i in range(10)]
    values = [20.0, 20.1, 20.2, 20.1, 48.0, 20.0, 20.1, 20.2, 20.0, 20.1]
    ingest("stored", times, values)
    key = make_api_key("ml:read")
    body = client.post("/api/v1/detect_anomaly", {"sensor": "stored", "start": times[0].isoformat(),
                                                  "end": (times[-1] + timedelta(seconds=1)).isoformat()},
                       content_type="application/json", headers={"X-API-Key": key}).json()
    assert [p["value"] for p in body["points"]] == values
    assert [p["is_anomaly"] for p in body["points"]].index(True) == 4
    assert "observed 48" in body["points"][4]["explanation"]
    both = client.post("/api/v1/detect_anomaly", {"sensor": "stored", "values": [], "start": times[0].isoformat()},
                       content_type="application/json", headers={"X-API-Key": key})
    assert both.status_code == 400 and "either values or start/end" in json.dumps(both.json())


@pytest.mark.django_db
def test_detect_anomaly_errors_say_what_to_do(client):
    key = make_api_key("ml:read")
    post = lambda payload: client.post("/api/v1/detect_anomaly", payload, content_type="application/json",
                                       headers={"X-API-Key": key})
    assert post({"sensor": "ghost", "values": []}).status_code == 404
    make_sensor(slug="fresh")
    no_model = post({"sensor": "fresh", "values": [{"time": "2026-12-01T00:00:00Z", "value": 1}]})
    assert no_model.status_code == 409 and "no trained model" in no_model.json()["detail"]
    bad = post({"sensor": "fresh", "values": [{"time": "later", "value": 1}, {"time": "2026-12-01T00:00:00Z",
                                                                                "value": "x"}]})
    assert bad.status_code == 400 and [e["index"] for e in bad.json()["errors"]] == [0, 1]
    not_objects = post({"sensor": "fresh", "values": [{"time": "2026-12-01T00:00:00Z", "value": 1}, 21.5, None]})
    assert not_objects.status_code == 400, not_objects.content
    assert [e["index"] for e in not_objects.json()["errors"]] == [1, 2]
    assert "expected an object" in not_objects.json()["errors"][0]["reason"]
    many = post({"sensor": "fresh", "values": [{"time": "2026-12-01T00:00:00Z", "value": 1}] * 10_001})
    assert many.status_code == 413
    assert client.post("/api/v1/detect_anomaly", {"sensor": "fresh"}, content_type="application/json",
                       headers={"X-API-Key": make_api_key("readings:read")}).status_code == 403


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("settled_worker")
def test_a_posted_spike_is_an_event_and_one_alert_within_seconds(live_server, celery_worker_process, receiver):
    make_sensor(slug="live-demo")
    NotificationChannel.objects.create(name="ops hook", kind="webhook", target=receiver.url, secret="k")
    key = make_api_key("readings:write", "readings:read")
    now = timezone.now().replace(second=0, microsecond=0)

    def post(times, values):
        body = json.dumps({"sensor": "live-demo", "time": [t.astimezone(UTC).isoformat() for t in times],
                           "value": values}).encode()
        request = urllib.request.Request(f"{live_server.url}/api/v1/readings/", data=body, headers={
            "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.load(response)["accepted"] == len(times)

    post(*history(600, now - timedelta(minutes=10)))
    deadline = time.monotonic() + 30
    while not AnomalyModel.objects.filter(sensor__slug="live-demo").exists():
        assert time.monotonic() < deadline, "the worker did not train a model"
        time.sleep(0.2)
    spike_at = now - timedelta(minutes=5)
    posted = time.monotonic()
    post([spike_at], [50.0])
    while True:
        request = urllib.request.Request(f"{live_server.url}/api/v1/anomalies/?sensor=live-demo",
                                         headers={"X-API-Key": key})
        with urllib.request.urlopen(request, timeout=10) as response:
            events = json.load(response)["results"]
        if events:
            break
        assert time.monotonic() - posted < 5, "no AnomalyEvent within 5 seconds of the POST"
        time.sleep(0.1)
    assert events[0]["kind"] == "spike" and events[0]["value"] == 50.0 and events[0]["model_version"] == 1
    while not receiver.received:
        assert time.monotonic() - posted < 15, "the webhook was not called"
        time.sleep(0.1)
    [alert] = Alert.objects.filter(sensor__slug="live-demo")
    assert alert.kind == "spike" and "observed 50" in alert.explanation
    assert receiver.received[0][1]["alert"] == alert.pk
    assert Delivery.objects.get(alert=alert).status == "sent"


@pytest.mark.django_db
def test_retraining_happens_only_when_the_data_changed_and_skips_no_reading():
    sensor = make_sensor(slug="retrained")
    now = timezone.now().replace(second=0, microsecond=0)
    ingest("retrained", *history(600, now - timedelta(hours=2)))
    readings_score(sensor=sensor)
    from anomalies.services import anomaly_models_retrain

    assert anomaly_models_retrain() == 0  # nothing changed since training
    times = [now - timedelta(minutes=60 - i) for i in range(30)]
    values = [20.0 + 0.1 * (i % 4) for i in range(30)]
    values[25] = 48.0
    ingest("retrained", times, values)  # not scored yet
    readings_score(sensor=sensor)  # scores them: the spike is an event
    assert AnomalyEvent.objects.filter(sensor=sensor, time=times[25]).exists()
    assert anomaly_models_retrain() == 1  # the window now holds new readings
    model = AnomalyModel.objects.filter(sensor=sensor).order_by("-version").first()
    assert model.version == 2 and model.data_end == times[-1]
