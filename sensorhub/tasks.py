from celery import shared_task


@shared_task(name="sensorhub.ping")
def ping() -> str:
    """Round trip through the broker; used by tests and by operators checking a worker."""
    return "pong"
