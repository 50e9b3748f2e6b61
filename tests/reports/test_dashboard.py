from datetime import timedelta

import pytest
from django.utils import timezone

from anomalies.models import Alert, AnomalyEvent
from tests.factories import make_readings, make_sensor, make_user

pytestmark = pytest.mark.django_db


def test_the_dashboard_shows_sensors_open_alerts_and_recent_anomalies(client, django_assert_max_num_queries):
    calm, noisy = make_sensor(slug="calm-one"), make_sensor(slug="noisy-one")
    make_readings(calm, [20.5])
    at = timezone.now() - timedelta(minutes=3)
    AnomalyEvent.objects.create(sensor=noisy, time=at, value=60, score=0.97, kind="spike",
                                explanation="spike: observed 60, usual range 18 to 22", expected_low=18,
                                expected_high=22)
    Alert.objects.create(sensor=noisy, kind="spike", first_event_at=at, last_event_at=at, trigger_value=60,
                         trigger_score=0.97, peak_score=0.97, explanation="spike: observed 60, usual range 18 to 22")
    client.force_login(make_user("alice"))
    with django_assert_max_num_queries(8):
        body = client.get("/").content.decode()
    assert "calm-one" in body and "20.50" in body
    assert body.count("spike: observed 60, usual range 18 to 22") == 2  # the alert and the event
    assert '<span class="badge off">alert</span>' in body
