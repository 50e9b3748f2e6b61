import pytest

from ingestion.models import Sensor
from tests.factories import make_api_key, make_readings, make_sensor, make_site

pytestmark = pytest.mark.django_db


def test_admin_keys_create_update_and_deactivate_sensors(client):
    site = make_site(slug="plant-a")
    admin = make_api_key("admin", "readings:read")
    created = client.post("/api/v1/sensors/", {"slug": "tank-level", "name": "Tank level", "type": "level",
                                               "unit": "m", "site": "plant-a", "valid_min": 0, "valid_max": 12},
                          content_type="application/json", headers={"X-API-Key": admin})
    assert created.status_code == 201, created.json()
    assert Sensor.objects.get(slug="tank-level").site == site

    patched = client.patch("/api/v1/sensors/tank-level/", {"valid_max": 15}, content_type="application/json",
                           headers={"X-API-Key": admin})
    assert patched.json()["valid_max"] == 15

    deactivated = client.delete("/api/v1/sensors/tank-level/", headers={"X-API-Key": admin})
    assert deactivated.status_code == 200
    assert Sensor.objects.get(slug="tank-level").active is False


def test_writing_sensors_needs_the_admin_scope(client):
    make_site(slug="plant-b")
    reader = make_api_key("readings:read")
    response = client.post("/api/v1/sensors/", {"slug": "x", "name": "x", "type": "flow", "unit": "l/s",
                                                "site": "plant-b"}, content_type="application/json",
                           headers={"X-API-Key": reader})
    assert response.status_code == 403 and "admin" in response.json()["detail"]


def test_an_inverted_valid_range_is_400(client):
    make_site(slug="plant-c")
    admin = make_api_key("admin")
    response = client.post("/api/v1/sensors/", {"slug": "y", "name": "y", "type": "flow", "unit": "l/s",
                                                "site": "plant-c", "valid_min": 5, "valid_max": 1},
                           content_type="application/json", headers={"X-API-Key": admin})
    assert response.status_code == 400 and "valid_max" in response.json()


def test_detail_shows_the_latest_value_and_24h_stats(client):
    sensor = make_sensor(slug="stats-me")
    make_readings(sensor, [1.0, 2.0, 6.0])
    body = client.get("/api/v1/sensors/stats-me/", headers={"X-API-Key": make_api_key("readings:read")}).json()
    assert body["latest_value"] == 6.0
    assert body["stats_24h"] == {"count": 3, "min": 1.0, "max": 6.0, "avg": 3.0}


def test_the_list_is_filtered_and_costs_a_fixed_number_of_queries(client, django_assert_max_num_queries):
    for i in range(12):
        make_readings(make_sensor(type="humidity" if i % 2 else "flow"), [float(i)])
    key = make_api_key("readings:read")
    client.get("/api/v1/sensors/", headers={"X-API-Key": key})  # first use also records last_used_at
    # the key, its site and sensor limits, the page: the same for 12 sensors as for 1000
    with django_assert_max_num_queries(4):
        body = client.get("/api/v1/sensors/", {"type": "humidity"}, headers={"X-API-Key": key}).json()
    assert len(body["results"]) == 6 and {s["type"] for s in body["results"]} == {"humidity"}
