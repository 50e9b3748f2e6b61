import logging

from celery import shared_task

from ingestion.services import idempotency_keys_expire, readings_enforce_retention
from sensorhub.celery import DB_RETRY
from sensorhub.storage import rollups_refresh

logger = logging.getLogger(__name__)


@shared_task(name="ingestion.enforce_retention", **DB_RETRY)
def enforce_retention() -> int:
    deleted = readings_enforce_retention()
    logger.info("retention: deleted %d expired readings", deleted, extra={"deleted": deleted})
    return deleted


@shared_task(name="ingestion.refresh_rollups", **DB_RETRY)
def refresh_rollups() -> int:
    return rollups_refresh()


@shared_task(name="ingestion.expire_idempotency_keys", **DB_RETRY)
def expire_idempotency_keys() -> int:
    return idempotency_keys_expire()
