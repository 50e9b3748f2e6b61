"""POST /api/v1/predict and GET /api/v1/forecast_models/."""
from datetime import timedelta

import pytest
from django.test import override_settings

from forecasting.models import Forecast
from forecasting.services import forecast_model_train
from tests.factories import make_api_key, make_sensor
from tests.forecasting.helpers import daily_cycle, ingest, now_hour


@pytest.fixture
def trained(db):
    sensor = make_sensor(slug="oven", unit="°C")
    ingest("oven", *daily_cycle(8, end=now_hour() - timedelta(hours=3, minutes=5)))
    return forecast_model_train(sensor=sensor)


def post(client, key, **payload):
    return client.post("/api/v1/predict", payload, content_type="application/json", headers={"X-API-Key": key})


def test_predict_serves_the_stored_forecast_with_its_model_and_metrics(client, trained):
    response = post(client, make_api_key("ml:read"), sensor="oven", horizon=12)
    body = response.json()
    assert response.status_code == 200, body
    stored = Forecast.objects.get(model=trained)
    assert body["source"] == "stored" and body["points"] == stored.points[:12]
    assert body["model"]["name"] == trained.name and body["model"]["version"] == 1
    assert body["model"]["backtest"]["mase"] == pytest.approx(trained.mase)
    assert body["step_seconds"] == 3600 and body["interval"] == 0.9 and body["unit"] == "°C"
    assert set(body["points"][0]) == {"time", "yhat", "lower", "upper"}


def test_another_interval_is_computed_on_demand_and_is_wider_when_asked_for_more(client, trained):
    key = make_api_key("ml:read")
    narrow = post(client, key, sensor="oven", horizon=24, interval=0.5).json()
    wide = post(client, key, sensor="oven", horizon=24, interval=0.98).json()
    assert narrow["source"] == wide["source"] == "computed"
    assert [p["time"] for p in narrow["points"]] == [p["time"] for p in wide["points"]]
    width = lambda body: sum(p["upper"] - p["lower"] for p in body["points"])
    assert width(wide) > width(narrow) > 0


def test_a_stored_forecast_that_newer_readings_overtook_is_not_served(client, trained):
    key = make_api_key("ml:read")
    assert post(client, key, sensor="oven").json()["source"] == "stored"
    ingest("oven", *daily_cycle(3 / 24, end=now_hour() - timedelta(minutes=5), seed=5))
    body = post(client, key, sensor="oven").json()  # three more hours are complete: the stored one is stale
    assert body["source"] == "computed" and len(body["points"]) == 24
    assert body["origin"] > Forecast.objects.get().origin.isoformat().replace("+00:00", "Z")


@pytest.mark.django_db
def test_predict_errors_say_what_was_wrong(client):
    key = make_api_key("ml:read")
    assert post(client, key, sensor="ghost").status_code == 404
    make_sensor(slug="unborn")
    too_far = post(client, key, sensor="unborn", horizon=500)
    assert too_far.status_code == 400 and "maximum of 168" in str(too_far.json())
    with override_settings(SENSORHUB_FORECAST_MAX_HORIZON=48):
        assert "maximum of 48" in str(post(client, key, sensor="unborn", horizon=49).json())
    assert post(client, key, sensor="unborn", interval=1.5).status_code == 400
    assert post(client, key, sensor="unborn", horizon="soon").status_code == 400
    no_model = post(client, key, sensor="unborn")
    assert no_model.status_code == 409 and "no forecaster yet" in no_model.json()["detail"]
    assert "readings in 0 of the 48 1-hour steps" in no_model.json()["detail"]
    assert post(client, make_api_key("readings:read"), sensor="unborn").status_code == 403


def test_forecast_models_list_the_backtest_and_realised_accuracy(client, trained):
    response = client.get("/api/v1/forecast_models/?sensor=oven", headers={"X-API-Key": make_api_key("ml:read")})
    [row] = response.json()["results"]
    assert row["version"] == 1 and row["name"] == trained.name and "prophet" in row["backtest"]
    assert row["realised_points"] == 0 and row["realised_mae"] is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("settled_worker")
def test_the_worker_trains_on_request_and_predict_then_answers(live_server, celery_worker_process):
    import json
    import time
    import urllib.error
    import urllib.request

    from forecasting.models import ForecastModel

    make_sensor(slug="kiln", unit="°C")
    ingest("kiln", *daily_cycle(5, end=now_hour() - timedelta(minutes=5)))
    key = make_api_key("ml:read")

    def predict():
        request = urllib.request.Request(f"{live_server.url}/api/v1/predict", method="POST",
                                         data=json.dumps({"sensor": "kiln", "horizon": 6}).encode(),
                                         headers={"X-API-Key": key, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as err:
            return err.code, json.load(err)

    status, body = predict()
    assert status == 409 and "queued" in body["detail"]  # and the request queued the training
    deadline = time.monotonic() + 120
    while not ForecastModel.objects.filter(sensor__slug="kiln").exists():
        assert time.monotonic() < deadline, "the worker did not train a forecaster"
        time.sleep(0.5)
    status, body = predict()
    assert status == 200 and body["source"] == "stored" and len(body["points"]) == 6
