import logging

from celery import shared_task
from django.db import OperationalError

from ingestion.services import idempotency_keys_expire, readings_enforce_retention
from sensorhub.storage import rollups_refresh

logger = logging.getLogger(__name__)

# Only transient database errors are retried, with backoff and a cap.
RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": True, "retry_jitter": True, "max_retries": 3}


@shared_task(name="ingestion.enforce_retention", **RETRY)
def enforce_retention() -> int:
    deleted = readings_enforce_retention()
    logger.info("retention: deleted %d expired readings", deleted, extra={"deleted": deleted})
    return deleted


@shared_task(name="ingestion.refresh_rollups", **RETRY)
def refresh_rollups() -> int:
    return rollups_refresh()


@shared_task(name="ingestion.expire_idempotency_keys", **RETRY)
def expire_idempotency_keys() -> int:
    return idempotency_keys_expire()
