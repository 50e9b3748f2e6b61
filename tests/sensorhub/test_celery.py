from datetime import timedelta

import pytest
from django.utils import timezone

from ingestion.models import SensorReading
from ingestion.tasks import enforce_retention
from sensorhub.tasks import ping
from tests.factories import make_readings, make_sensor


def test_it_runs_a_task_through_the_broker_in_a_real_worker(celery_worker_process):
    result = ping.delay()
    assert result.get(timeout=30) == "pong"
    assert result.successful()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("settled_worker")
def test_the_worker_enforces_retention_on_committed_rows(celery_worker_process, settings):
    now = timezone.now()
    keeps_default = make_sensor()
    short = make_sensor(retention_days=2)
    make_readings(keeps_default, [1.0, 2.0], end=now - timedelta(days=3), step=timedelta(days=1))
    make_readings(short, [1.0, 2.0], end=now - timedelta(days=1), step=timedelta(days=2))  # 3 days and 1 day old
    make_readings(keeps_default, [9.0], end=now - timedelta(days=settings.SENSORHUB_RETENTION_DAYS + 1))

    deleted = enforce_retention.delay().get(timeout=30)

    assert deleted == 2
    assert SensorReading.objects.filter(sensor=keeps_default).count() == 2
    assert list(SensorReading.objects.filter(sensor=short).values_list("value", flat=True)) == [2.0]
