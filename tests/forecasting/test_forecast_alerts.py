"""A forecast crossing a limit soon raises an alert through the anomaly alert machinery."""
from datetime import timedelta

import pytest
from django.utils import timezone

from anomalies.models import Alert, AlertRule, Delivery, NotificationChannel
from forecasting.models import Forecast, ForecastModel
from forecasting.services import forecast_alerts_check, forecast_crossing
from tests.factories import make_sensor


def forecast_for(sensor, values, *, start=None, spread=1.0):
    start = start or timezone.now().replace(minute=0, second=0, microsecond=0)
    model, _ = ForecastModel.objects.get_or_create(
        sensor=sensor, version=1, defaults=dict(name="ets", artifact="x", sha256="0" * 64, mase=0.5, mae=1.0,
                                               fit_seconds=0.1, data_start=start, data_end=start, points=100,
                                               data_hash="h"))
    points = [{"time": (start + timedelta(hours=i)).isoformat(), "yhat": v, "lower": v - spread,
               "upper": v + spread} for i, v in enumerate(values)]
    origin = start - timedelta(hours=1, seconds=Forecast.objects.count())  # one forecast per origin
    return Forecast.objects.create(sensor=sensor, model=model, origin=origin, step_seconds=3600,
                                   interval=0.9, points=points)


@pytest.mark.django_db
def test_the_first_crossing_within_reach_is_found_and_explained():
    oven = make_sensor(slug="oven", unit="°C", valid_max=80.0)
    now = timezone.now()
    forecast = forecast_for(oven, [70, 72, 74, 76, 78, 79.5, 81, 83, 85])
    crossing = forecast_crossing(sensor=oven, forecast=forecast, within=timedelta(hours=12), above=None, below=None,
                                 now=now)
    assert crossing.limit == 80.0 and crossing.value == 81 and crossing.direction == "above"
    assert "will exceed 80 °C in about" in crossing.explanation and "ets v1" in crossing.explanation
    assert 0.5 < crossing.probability < 1
    assert forecast_crossing(sensor=oven, forecast=forecast, within=timedelta(hours=3), above=None, below=None,
                             now=now) is None  # too far ahead to alert yet
    lower = forecast_crossing(sensor=oven, forecast=forecast, within=timedelta(hours=12), above=75.0, below=None,
                              now=now)
    assert lower.limit == 75.0 and lower.value == 76  # the user's threshold is stricter than the valid range
    below = forecast_crossing(sensor=oven, forecast=forecast, within=timedelta(hours=12), above=None, below=71.0,
                              now=now)
    assert below.direction == "below" and "fall below 71" in below.explanation


@pytest.mark.django_db
def test_a_forecast_alert_opens_once_notifies_and_resolves_when_the_forecast_recovers(django_capture_on_commit_callbacks):
    boiler = make_sensor(slug="boiler", unit="bar", valid_max=10.0)
    NotificationChannel.objects.create(name="ops", kind="email", target="ops@example.com")
    t0 = timezone.now()
    def check(values, hours):  # the forecast made `hours` after the first, starting half an hour later
        at = t0 + timedelta(hours=hours)
        forecast = forecast_for(boiler, values, start=at + timedelta(minutes=30))
        return forecast_alerts_check(sensor=boiler, forecast=forecast, now=at)

    with django_capture_on_commit_callbacks(execute=True):
        alert = check([8, 9, 10.5, 11], 0)
    assert alert.source == "forecast" and alert.kind == "forecast" and alert.status == "open"
    assert alert.trigger_value == 10.5 and "will exceed 10 bar" in alert.explanation
    assert alert.forecast_model.version == 1
    assert Delivery.objects.filter(alert=alert).count() == 1
    again = check([9, 10.2, 11, 12], 1)
    assert again.pk == alert.pk and Alert.objects.count() == 1  # still one alert, extended
    # Hovering at the limit: one clear forecast does not resolve it (and the next crossing does not notify again).
    assert check([8, 8, 8, 8], 2) is None
    alert.refresh_from_db()
    assert alert.status == "open"
    assert check([9, 10.2], 3).pk == alert.pk and Alert.objects.count() == 1
    assert check([8, 8, 8, 8], 4.1) is None  # refreshes drift by minutes
    alert.refresh_from_db()
    assert alert.status == "open"
    assert check([8, 8, 8, 8], 4.9) is None  # the second clear forecast
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.resolved_by is None
    # Within the cooldown a new crossing does not alert again.
    assert check([9, 11], 5.5) is None


@pytest.mark.django_db
def test_forecast_and_anomaly_alerts_coexist_and_rules_can_switch_forecast_alerts_off():
    pump = make_sensor(slug="pump", valid_max=5.0)
    Alert.objects.create(sensor=pump, kind="spike", first_event_at=timezone.now(), last_event_at=timezone.now(),
                         trigger_value=9, trigger_score=0.9, peak_score=0.9, explanation="spike")
    assert forecast_alerts_check(sensor=pump, forecast=forecast_for(pump, [4, 6])) is not None
    assert Alert.objects.filter(sensor=pump).exclude(status="resolved").count() == 2
    quiet = make_sensor(slug="quiet", valid_max=5.0)
    AlertRule.objects.create(sensor=quiet, forecast_enabled=False)
    assert forecast_alerts_check(sensor=quiet, forecast=forecast_for(quiet, [4, 6])) is None


@pytest.mark.django_db
def test_marking_a_forecast_alert_false_positive_leaves_the_anomaly_threshold_alone(client):
    from tests.factories import make_api_key

    tank = make_sensor(slug="tank", valid_max=5.0)
    alert = forecast_alerts_check(sensor=tank, forecast=forecast_for(tank, [4, 6]))
    response = client.post(f"/api/v1/alerts/{alert.pk}/false_positive/", headers={"X-API-Key": make_api_key("admin")})
    assert response.status_code == 200 and response.json()["false_positive"] is True
    assert response.json()["source"] == "forecast" and response.json()["model_version"] == 1
    assert AlertRule.objects.filter(sensor=tank).first() is None or AlertRule.objects.get(sensor=tank).threshold == 0.5
