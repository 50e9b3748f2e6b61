import pytest
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from ingestion.models import SensorReading
from tests.factories import make_readings, make_sensor

pytestmark = pytest.mark.django_db


def test_it_stores_one_value_per_sensor_and_instant():
    sensor = make_sensor()
    [reading] = make_readings(sensor, [21.5])
    with pytest.raises(IntegrityError), transaction.atomic():
        SensorReading.objects.create(sensor=sensor, time=reading.time, value=99.0)
    assert SensorReading.objects.get(sensor=sensor, time=reading.time).value == 21.5


def test_two_sensors_may_report_at_the_same_instant():
    first, second = make_sensor(), make_sensor()
    [reading] = make_readings(first, [1.0])
    SensorReading.objects.create(sensor=second, time=reading.time, value=2.0)
    assert SensorReading.objects.filter(time=reading.time).count() == 2


def test_it_rejects_a_valid_range_whose_minimum_is_not_below_its_maximum():
    with pytest.raises(IntegrityError, match="sensor_valid_range_ordered"), transaction.atomic():
        make_sensor(valid_min=50, valid_max=10)
    make_sensor(valid_min=None, valid_max=10)  # an open range is fine


def test_a_sensor_with_history_cannot_be_deleted_only_deactivated():
    sensor = make_sensor()
    make_readings(sensor, [1.0, 2.0])
    with pytest.raises(ProtectedError):
        sensor.delete()
