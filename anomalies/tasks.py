import logging

from celery import shared_task

from ingestion.services import scoring_started

logger = logging.getLogger(__name__)


@shared_task(name="anomalies.score_new_readings", ignore_result=True)
def score_new_readings(sensor_id: int, start: str, end: str) -> None:
    """Enqueued by ingestion after each commit, once per touched sensor. Scoring arrives with the detector."""
    scoring_started(sensor_id=sensor_id)
    logger.info("new readings to score", extra={"sensor_id": sensor_id, "start": start, "end": end})
