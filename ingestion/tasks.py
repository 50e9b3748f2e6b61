import logging

from celery import shared_task
from django.db import OperationalError

from ingestion.services import readings_enforce_retention

logger = logging.getLogger(__name__)


@shared_task(name="ingestion.enforce_retention", autoretry_for=(OperationalError,), retry_backoff=True,
             retry_jitter=True, max_retries=3)
def enforce_retention() -> int:
    deleted = readings_enforce_retention()
    logger.info("retention: deleted %d expired readings", deleted, extra={"deleted": deleted})
    return deleted
