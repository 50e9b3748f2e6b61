"""Per-sensor training: backtest, choice, artifact, stored forecast, retraining only on new data."""
from datetime import timedelta

import pandas as pd
import pytest
from django.test import override_settings

from forecasting.models import Forecast, ForecastModel
from forecasting.services import forecast_model_train, forecast_refresh, forecasts_evaluate, sensor_series
from sensorhub.ml.store import artifact_load
from tests.factories import make_sensor
from tests.forecasting.helpers import daily_cycle, ingest, now_hour


@pytest.mark.django_db
def test_step_means_cover_every_step_with_gaps_as_missing():
    sensor = make_sensor(slug="stepper")
    end = now_hour()
    times, values = daily_cycle(1, end=end)
    keep = [(t, v) for t, v in zip(times, values) if not end - timedelta(hours=6) <= t < end - timedelta(hours=4)]
    ingest("stepper", [t for t, _ in keep], [v for _, v in keep])
    series = sensor_series(sensor=sensor, start=end - timedelta(days=1), end=end)
    assert len(series) == 24 and series.index.freq is not None and str(series.index.tz) == "UTC"
    assert series.isna().sum() == 2  # the two silent hours
    first_hour = [v for t, v in keep if t < end - timedelta(hours=23)]
    assert series.iloc[0] == pytest.approx(sum(first_hour) / len(first_hour))


@pytest.mark.django_db
def test_training_backtests_every_candidate_and_stores_the_best_with_a_forecast():
    sensor = make_sensor(slug="cyclic", unit="°C")
    end = now_hour() - timedelta(minutes=5)
    ingest("cyclic", *daily_cycle(12, end=end))
    model = forecast_model_train(sensor=sensor)
    assert model is not None and model.version == 1
    assert {"prophet", "naive", "seasonal_naive"} <= set(model.backtest)
    scores = {name: m["mase"] for name, m in model.backtest.items() if m["mase"] is not None}
    assert model.mase == pytest.approx(scores[model.name], rel=1e-4)
    assert model.mase <= min(scores.values()) * 1.05  # the best (ties go to the faster)
    assert model.mase < scores["naive"]  # a clean daily cycle: something beats "same as the last hour"
    forecaster = artifact_load(model.artifact, model.sha256)
    assert forecaster.name == model.name
    forecast = Forecast.objects.get(model=model)
    assert forecast.origin == pd.Timestamp(end).floor("h") - timedelta(hours=1)
    times = [pd.Timestamp(p["time"]) for p in forecast.points]
    assert len(times) == 168 and times[0] == forecast.origin + timedelta(hours=1)
    assert all(b - a == timedelta(hours=1) for a, b in zip(times, times[1:]))
    assert all(p["lower"] <= p["yhat"] <= p["upper"] for p in forecast.points)
    assert forecast_model_train(sensor=sensor) == model  # same history: no new version


@pytest.mark.django_db
def test_new_history_trains_a_new_version_and_a_new_forecast():
    sensor = make_sensor(slug="growing")
    end = now_hour() - timedelta(hours=3)
    ingest("growing", *daily_cycle(6, end=end))
    first = forecast_model_train(sensor=sensor)
    ingest("growing", *daily_cycle(3 / 24, end=end + timedelta(hours=3), seed=2))
    second = forecast_model_train(sensor=sensor)
    assert (first.version, second.version) == (1, 2)
    assert Forecast.objects.filter(sensor=sensor).count() == 2
    assert forecast_refresh(sensor=sensor) == Forecast.objects.get(model=second)  # once per origin and model


@pytest.mark.django_db
def test_a_sensor_with_too_little_history_is_warming_up():
    sensor = make_sensor(slug="newborn")
    ingest("newborn", *daily_cycle(0.5, end=now_hour()))
    assert forecast_model_train(sensor=sensor) is None
    assert not ForecastModel.objects.filter(sensor=sensor).exists()


@pytest.mark.django_db
@override_settings(SENSORHUB_FORECAST_HORIZON=6)
def test_realised_accuracy_is_measured_once_the_actual_readings_arrive():
    sensor = make_sensor(slug="judged")
    end = now_hour() - timedelta(hours=12)
    times, values = daily_cycle(8, end=end)
    ingest("judged", times, values)
    model = forecast_model_train(sensor=sensor)
    forecast = Forecast.objects.get(model=model)
    assert forecasts_evaluate(sensor=sensor) == 0  # nothing has happened yet
    later_times, later_values = daily_cycle(12 / 24, end=end + timedelta(hours=12), seed=9)
    ingest("judged", later_times, later_values)
    assert forecasts_evaluate(sensor=sensor) == 1
    forecast.refresh_from_db()
    actual = pd.Series(values + later_values, index=pd.DatetimeIndex(times + later_times)).resample("h").mean()
    errors, inside = [], 0
    for point in forecast.points[:6]:
        value = actual[pd.Timestamp(point["time"])]
        errors.append(abs(value - point["yhat"]))
        inside += point["lower"] <= value <= point["upper"]
    assert forecast.realised_points == 6
    assert forecast.realised_mae == pytest.approx(sum(errors) / 6)
    assert forecast.realised_coverage == pytest.approx(inside / 6)
    model.refresh_from_db()
    assert (model.realised_forecasts, model.realised_points) == (1, 6)
    assert model.realised_mae == pytest.approx(forecast.realised_mae)
    assert forecasts_evaluate(sensor=sensor) == 0  # each forecast is judged once


@pytest.mark.django_db
def test_the_refresh_task_judges_old_forecasts_stores_a_new_one_and_alerts_on_a_crossing():
    from anomalies.models import Alert, AlertRule
    from forecasting.tasks import refresh_sensor

    sensor = make_sensor(slug="heater", unit="°C")
    AlertRule.objects.create(sensor=sensor, forecast_above=30.0)
    end = now_hour() - timedelta(hours=30)
    ingest("heater", *daily_cycle(6, end=end, level=20.0, amplitude=3.0))
    model = forecast_model_train(sensor=sensor)
    first = Forecast.objects.get(model=model)
    # A day and more later the sensor runs hot: the stored model's next forecast rises past the rule's limit.
    times, values = daily_cycle(30 / 24, end=now_hour() - timedelta(minutes=5), seed=4, level=20.0, amplitude=3.0)
    values = [v + 25.0 * i / len(values) for i, v in enumerate(values)]
    ingest("heater", times, values)
    refresh_sensor(sensor.pk)  # the beat's per-sensor task, run inline
    first.refresh_from_db()
    assert first.evaluated_at is not None and first.realised_points == 24
    assert Forecast.objects.filter(sensor=sensor).count() == 2
    latest = Forecast.objects.filter(sensor=sensor).latest("origin")
    assert any(p["yhat"] > 30.0 for p in latest.points[:12])  # the new forecast crosses within the 12 h reach
    alert = Alert.objects.get(sensor=sensor, source="forecast")
    assert "will exceed 30 °C" in alert.explanation and alert.forecast_model == model
