"""POST /api/v1/readings/: formats, per-item outcomes, request-level errors and idempotency."""
import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from ingestion.models import IdempotencyKey, SensorReading
from sensorhub.apikeys import api_key_revoke
from sensorhub.models import ApiKey
from tests.factories import make_api_key, make_readings, make_sensor, make_site

pytestmark = pytest.mark.django_db
URL = "/api/v1/readings/"


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def now_minute() -> datetime:
    return timezone.now().replace(second=0, microsecond=0)


@pytest.fixture
def sensor():
    return make_sensor(slug="sensor-001", valid_min=-40, valid_max=125)


@pytest.fixture
def writer():
    return make_api_key("readings:write")


def post(client, key, payload, *, content_type="application/json", **headers):
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    auth = {"Authorization": f"Bearer {key}"} if key else {}
    return client.post(URL, data=body, content_type=content_type, headers={**auth, **headers})


def test_it_accepts_a_json_batch_and_stores_every_reading(client, sensor, writer):
    t0 = now_minute()
    readings = [{"sensor": "sensor-001", "time": iso(t0 - timedelta(minutes=i)), "value": 20 + i} for i in range(5)]
    response = post(client, writer, {"readings": readings})
    assert response.status_code == 200, response.json()
    assert response.json() == {"accepted": 5, "duplicates": 0, "rejected": 0, "duplicate_indexes": [], "errors": []}
    stored = dict(SensorReading.objects.filter(sensor=sensor).values_list("time", "value"))
    assert stored == {t0 - timedelta(minutes=i): 20.0 + i for i in range(5)}


def test_it_accepts_the_columnar_form_and_epoch_seconds(client, sensor, writer):
    t0 = now_minute()
    payload = {"sensor": "sensor-001", "time": [t0.timestamp(), iso(t0 - timedelta(minutes=1))], "value": [1.5, 2]}
    assert post(client, writer, payload).json()["accepted"] == 2
    assert SensorReading.objects.get(sensor=sensor, time=t0).value == 1.5


def test_it_accepts_csv_and_gzip(client, sensor, writer):
    t0 = now_minute()
    csv_body = f"sensor,time,value\nsensor-001,{iso(t0)},21.5\nsensor-001,{iso(t0 - timedelta(minutes=1))},21.0\n"
    response = post(client, writer, gzip.compress(csv_body.encode()), content_type="text/csv",
                    **{"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.json()
    assert response.json()["accepted"] == 2
    assert SensorReading.objects.filter(sensor=sensor).count() == 2


def test_an_existing_reading_is_a_duplicate_and_keeps_its_stored_value(client, sensor, writer):
    t0 = now_minute()
    make_readings(sensor, [10.0], end=t0)
    payload = {"readings": [{"sensor": "sensor-001", "time": iso(t0), "value": 99},
                            {"sensor": "sensor-001", "time": iso(t0 - timedelta(minutes=1)), "value": 5},
                            {"sensor": "sensor-001", "time": iso(t0 - timedelta(minutes=1)), "value": 6}]}
    body = post(client, writer, payload).json()
    assert (body["accepted"], body["duplicates"], body["duplicate_indexes"]) == (1, 2, [0, 2])
    assert SensorReading.objects.get(sensor=sensor, time=t0).value == 10.0
    assert SensorReading.objects.get(sensor=sensor, time=t0 - timedelta(minutes=1)).value == 5.0


@pytest.fixture
def rejections(sensor):
    """One bad item per documented reason, each with the code it must get."""
    t0 = now_minute()
    make_sensor(slug="sleeping", active=False, site=sensor.site)
    make_sensor(slug="short-memory", retention_days=2, site=sensor.site)
    make_sensor(slug="someone-elses", site=make_site())
    good = iso(t0)
    return [
        ({"sensor": "ghost", "time": good, "value": 1}, "unknown_sensor"),
        ({"sensor": "sleeping", "time": good, "value": 1}, "inactive_sensor"),
        ({"sensor": "sensor-001", "time": good, "value": "NaN"}, "invalid_value"),
        ({"sensor": "sensor-001", "time": good, "value": "Infinity"}, "invalid_value"),
        ({"sensor": "sensor-001", "time": good, "value": "warm"}, "invalid_value"),
        ({"sensor": "sensor-001", "time": good, "value": None}, "invalid_value"),
        ({"sensor": "sensor-001", "time": "yesterday", "value": 1}, "invalid_time"),
        ({"sensor": "sensor-001", "time": "2026-01-01T10:00:00", "value": 1}, "invalid_time"),
        ({"sensor": "sensor-001", "time": iso(t0 + timedelta(minutes=6)), "value": 1}, "time_in_future"),
        ({"sensor": "short-memory", "time": iso(t0 - timedelta(days=3)), "value": 1}, "older_than_retention"),
        ({"sensor": "sensor-001", "time": good, "value": 500}, "out_of_range"),
        ({"sensor": "someone-elses", "time": good, "value": 1}, "sensor_not_allowed"),
        ("not an object", "malformed"),
    ]


def test_every_bad_item_is_rejected_with_its_index_and_reason(client, sensor, rejections):
    key = make_api_key("readings:write", sites=[sensor.site])
    with_valid = [{"sensor": "sensor-001", "time": iso(now_minute() - timedelta(hours=1)), "value": 20}]
    items = with_valid + [item for item, _ in rejections]

    response = post(client, key, {"readings": items})

    body = response.json()
    assert response.status_code == 200
    assert (body["accepted"], body["rejected"]) == (1, len(rejections))
    assert [(e["index"], e["code"]) for e in body["errors"]] == [
        (i, code) for i, (_, code) in enumerate(rejections, start=1)]
    assert all(e["reason"] for e in body["errors"])
    assert SensorReading.objects.count() == 1


def test_a_batch_with_nothing_storable_is_422(client, sensor, writer):
    response = post(client, writer, {"readings": [{"sensor": "ghost", "time": iso(now_minute()), "value": 1}]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "unknown_sensor"


def test_a_nan_literal_in_json_is_rejected_not_stored(client, sensor, writer):
    body = '{"readings": [{"sensor": "sensor-001", "time": "%s", "value": NaN}]}' % iso(now_minute())
    response = post(client, writer, body)
    assert response.json()["errors"][0]["code"] == "invalid_value"
    assert not SensorReading.objects.exists()


@pytest.mark.parametrize(
    "body, content_type, headers, status, words",
    [
        ("{not json", "application/json", {}, 400, "Malformed JSON"),
        ('{"rows": []}', "application/json", {}, 400, "Expected"),
        ('{"sensor": "s", "time": [1, 2], "value": [1]}', "application/json", {}, 400, "must match"),
        ("when,what\n1,2\n", "text/csv", {}, 400, "header lacks"),
        ("<xml/>", "application/xml", {}, 415, "not supported"),
        ("not gzip", "application/json", {"Content-Encoding": "gzip"}, 400, "not valid gzip"),
        ('{"readings": []}', "application/json", {}, 400, "no readings"),
    ],
)
def test_malformed_requests_get_a_clear_status_and_message(client, writer, body, content_type, headers, status,
                                                           words):
    response = post(client, writer, body, content_type=content_type, **headers)
    assert response.status_code == status
    assert words in response.json()["detail"]


def test_a_batch_over_the_limit_is_413_with_the_limit(client, sensor, writer, settings):
    settings.SENSORHUB_MAX_BATCH_READINGS = 3
    items = [{"sensor": "sensor-001", "time": iso(now_minute() - timedelta(minutes=i)), "value": 1} for i in range(4)]
    response = post(client, writer, {"readings": items})
    assert response.status_code == 413
    assert "limit is 3" in response.json()["detail"]


def test_a_gzip_bomb_is_413(client, writer, settings):
    settings.SENSORHUB_MAX_BODY_BYTES = 10_000
    response = post(client, writer, gzip.compress(b"[" + b" " * 50_000 + b"]"), **{"Content-Encoding": "gzip"})
    assert response.status_code == 413


def test_keys_are_checked_before_anything_is_read(client, sensor):
    payload = {"readings": [{"sensor": "sensor-001", "time": iso(now_minute()), "value": 1}]}
    assert post(client, None, payload).status_code == 401
    assert post(client, "shk_00000000_" + "x" * 43, payload).status_code == 401
    reader = make_api_key("readings:read")
    forbidden = post(client, reader, payload)
    assert forbidden.status_code == 403 and "readings:write" in forbidden.json()["detail"]
    revoked = make_api_key("readings:write")
    api_key_revoke(key=ApiKey.objects.get(prefix=revoked.split("_")[1]))
    assert post(client, revoked, payload).status_code == 401
    expired = make_api_key("readings:write", expires_at=timezone.now() - timedelta(seconds=1))
    assert post(client, expired, payload).status_code == 401
    x_api_key = client.post(URL, data=json.dumps(payload), content_type="application/json",
                            headers={"X-API-Key": make_api_key("readings:write")})
    assert x_api_key.status_code == 200
    assert not SensorReading.objects.exclude(value=1).exists()


def test_a_key_over_its_rate_gets_429_with_retry_after(client, sensor, writer, settings):
    settings.SENSORHUB_RATE_LIMITS = {**settings.SENSORHUB_RATE_LIMITS, "readings:write": "2/m"}
    cache.clear()
    payload = {"readings": [{"sensor": "sensor-001", "time": iso(now_minute()), "value": 1}]}
    statuses = [post(client, writer, payload).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = post(client, writer, payload)
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert "2/m" in limited.json()["detail"]
    assert post(client, make_api_key("readings:write"), payload).status_code == 200  # limits are per key


def test_a_replay_returns_the_first_answer_and_stores_nothing(client, sensor, writer):
    payload = {"readings": [{"sensor": "sensor-001", "time": iso(now_minute()), "value": 7}]}
    first = post(client, writer, payload, **{"Idempotency-Key": "batch-1"})
    SensorReading.objects.all().delete()  # were the replay to write, this row would come back

    replay = post(client, writer, payload, **{"Idempotency-Key": "batch-1"})

    assert replay.json() == first.json() and replay.status_code == first.status_code
    assert replay["Idempotent-Replayed"] == "true"
    assert not SensorReading.objects.exists()


def test_a_replay_is_caught_by_the_database_when_redis_lost_the_key(client, sensor, writer):
    payload = {"readings": [{"sensor": "sensor-001", "time": iso(now_minute()), "value": 7}]}
    first = post(client, writer, payload, **{"Idempotency-Key": "batch-2"})
    cache.clear()
    SensorReading.objects.all().delete()
    replay = post(client, writer, payload, **{"Idempotency-Key": "batch-2"})
    assert replay.json() == first.json()
    assert not SensorReading.objects.exists()
    assert IdempotencyKey.objects.filter(key="batch-2").count() == 1


def test_the_same_key_with_another_body_is_422_and_stores_nothing(client, sensor, writer):
    t0 = now_minute()
    post(client, writer, {"readings": [{"sensor": "sensor-001", "time": iso(t0), "value": 7}]},
         **{"Idempotency-Key": "batch-3"})
    other = post(client, writer, {"readings": [{"sensor": "sensor-001", "time": iso(t0 - timedelta(minutes=1)),
                                                "value": 8}]}, **{"Idempotency-Key": "batch-3"})
    assert other.status_code == 422
    assert "different request body" in other.json()["detail"]
    assert SensorReading.objects.count() == 1


def test_idempotency_keys_belong_to_one_api_key(client, sensor, writer):
    t0 = now_minute()
    post(client, writer, {"readings": [{"sensor": "sensor-001", "time": iso(t0), "value": 7}]},
         **{"Idempotency-Key": "shared-name"})
    other = post(client, make_api_key("readings:write"),
                 {"readings": [{"sensor": "sensor-001", "time": iso(t0 - timedelta(minutes=1)), "value": 8}]},
                 **{"Idempotency-Key": "shared-name"})
    assert other.status_code == 200 and other.json()["accepted"] == 1


def test_unknown_sensors_are_registered_when_the_key_and_setting_allow_it(client, writer, settings):
    payload = {"readings": [{"sensor": "new-gateway-7", "time": iso(now_minute()), "value": 3}]}
    registering = make_api_key("readings:write", may_register_sensors=True)
    assert post(client, registering, payload).json()["errors"][0]["code"] == "unknown_sensor"  # setting off
    settings.SENSORHUB_AUTO_REGISTER_SENSORS = True
    assert post(client, writer, payload).json()["errors"][0]["code"] == "unknown_sensor"  # key may not
    assert post(client, registering, payload).json()["accepted"] == 1
    assert SensorReading.objects.get().sensor.site.slug == "unassigned"
