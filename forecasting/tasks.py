import logging

from celery import shared_task

from forecasting.models import ForecastModel
from forecasting.services import forecast_model_train, forecast_refresh, forecasts_evaluate, forecasts_prune
from ingestion.models import Sensor
from sensorhub.celery import DB_RETRY

logger = logging.getLogger(__name__)


@shared_task(name="forecasting.train_model", **DB_RETRY)
def train_model(sensor_id: int) -> int | None:
    """Backtest, choose and store the sensor's forecaster; returns its version (None while warming up)."""
    sensor = Sensor.objects.filter(pk=sensor_id).first()
    model = forecast_model_train(sensor=sensor) if sensor else None
    return model.version if model else None


@shared_task(name="forecasting.train_models", ignore_result=True)
def train_models(only_missing: bool = False) -> int:
    """One training task per active sensor (beat, daily; and once at start-up with only_missing). Sensors whose
    history has not changed keep their model."""
    sensors = Sensor.objects.filter(active=True)
    if only_missing:
        sensors = sensors.filter(forecast_models__isnull=True)
    ids = list(sensors.values_list("pk", flat=True))
    for sensor_id in ids:
        train_model.delay(sensor_id)
    return len(ids)


@shared_task(name="forecasting.refresh_sensor", ignore_result=True, **DB_RETRY)
def refresh_sensor(sensor_id: int) -> None:
    sensor = Sensor.objects.filter(pk=sensor_id).first()
    if sensor is None:
        return
    forecasts_evaluate(sensor=sensor)
    forecast_refresh(sensor=sensor)


@shared_task(name="forecasting.refresh_forecasts", ignore_result=True)
def refresh_forecasts() -> int:
    """Beat: a new forecast for every sensor whose latest complete step moved, realised accuracy of past ones."""
    ids = list(ForecastModel.objects.filter(sensor__active=True).values_list("sensor_id", flat=True).distinct())
    for sensor_id in ids:
        refresh_sensor.delay(sensor_id)
    forecasts_prune()
    return len(ids)
