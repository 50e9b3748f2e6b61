from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone


def readings_enforce_retention(*, now: datetime | None = None) -> int:
    """Delete raw readings older than each sensor's retention (its override, else SENSORHUB_RETENTION_DAYS).

    Returns the number of rows deleted. Safe to run any time and more than once: it only removes what is expired.
    """
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            DELETE FROM ingestion_sensorreading AS r
            USING ingestion_sensor AS s
            WHERE r.sensor_id = s.id
              AND r.time < %s - make_interval(days => COALESCE(s.retention_days, %s))
            """,
            [now, settings.SENSORHUB_RETENTION_DAYS],
        )
        return cursor.rowcount
