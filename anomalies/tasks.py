import logging

from celery import shared_task

from anomalies.alerts import TransientDeliveryError, delivery_attempt, delivery_give_up
from anomalies.models import Delivery
from anomalies.services import anomaly_model_train, anomaly_models_retrain, readings_score
from ingestion.models import Sensor
from ingestion.services import scoring_started
from sensorhub.celery import DB_RETRY

logger = logging.getLogger(__name__)


@shared_task(name="anomalies.score_new_readings", ignore_result=True, **DB_RETRY)
def score_new_readings(sensor_id: int, start: str | None = None, end: str | None = None) -> None:
    """Enqueued by ingestion after each commit, once per touched sensor; scores everything not scored yet."""
    scoring_started(sensor_id=sensor_id)
    sensor = Sensor.objects.filter(pk=sensor_id).first()
    if sensor is None:
        return
    logger.info("new readings to score", extra={"sensor_id": sensor_id, "start": start, "end": end})
    events = readings_score(sensor=sensor)
    if events:
        logger.info("anomalies detected", extra={"sensor_id": sensor_id, "events": len(events)})


@shared_task(name="anomalies.train_model", **DB_RETRY)
def train_model(sensor_id: int) -> int | None:
    sensor = Sensor.objects.filter(pk=sensor_id).first()
    model = anomaly_model_train(sensor=sensor) if sensor else None
    return model.version if model else None


# Eight retries, waiting up to 30 s, 1, 2, 4, 8, 10, 10, 10 min (Celery's jitter picks a random part of each): up to
# 45 minutes in all, about half that on average, so a receiver down for a restart or a deploy still gets the alert.
@shared_task(name="anomalies.deliver", bind=True, autoretry_for=(TransientDeliveryError,), retry_backoff=30,
             retry_backoff_max=600, retry_jitter=True, max_retries=8, ignore_result=True)
def deliver(self, delivery_id: int) -> None:
    delivery = Delivery.objects.select_related("alert__sensor__site", "alert__model", "alert__forecast_model", "channel").filter(
        pk=delivery_id).first()
    if delivery is None or delivery.status != "pending":
        return
    try:
        delivery_attempt(delivery=delivery)
    except TransientDeliveryError:
        if self.request.retries >= self.max_retries:
            delivery_give_up(delivery_id=delivery_id)
        raise


@shared_task(name="anomalies.retrain_models", **DB_RETRY)
def retrain_models() -> int:
    return anomaly_models_retrain()
